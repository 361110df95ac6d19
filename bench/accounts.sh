#!/usr/bin/env bash
# Issues 3 and 18 benchmark, every ratio measured within one run: logins per second at 16
# connections against the argon2 bound (every core verifying at once, timed by the
# argon2_cost example just before and just after each login run; cores ÷ one verification
# once, first), in ROUNDS rounds (default 6), and authenticated GET /v1/me against GET /healthz,
# both at 32 connections. Each wrk run is bounded in time.
# Usage: BACKEND=sqlite|postgres [DB_CORE=n] bench/accounts.sh
#   (release build first: cargo build --release --bins --examples)
# DB_CORE=n (PostgreSQL): every PostgreSQL process runs on core n only, and Postier, wrk and
# the bound on the other cores, as with the database on a machine of its own: the bound is
# then the other cores verifying at once, and the server's CPU no longer comes out of it.
# The affinity of PostgreSQL's processes is given back to every core at the end.
source "$(dirname "$0")/lib.sh"
password="correct horse battery staple"
cost_bin=$(dirname "$bin")/examples/argon2_cost
[ -x "$cost_bin" ] || { echo "build the example first: cargo build --release --examples" >&2; exit 1; }
pin=()
if [ -n "${DB_CORE:-}" ]; then
  [ "$BACKEND" = postgres ] || { echo "DB_CORE is for BACKEND=postgres" >&2; exit 1; }
  command -v taskset >/dev/null || { echo "taskset is needed (util-linux)" >&2; exit 1; }
  last=$(($(nproc --all) - 1))
  [[ $DB_CORE =~ ^[0-9]+$ ]] && ((DB_CORE <= last)) || { echo "DB_CORE: a core from 0 to $last" >&2; exit 1; }
  others=$(seq 0 "$last" | { grep -vx "$DB_CORE" || true; } | paste -sd, -)
  [ -n "$others" ] || { echo "DB_CORE leaves no core for Postier" >&2; exit 1; }
  # Backends fork from the postmaster and keep its affinity: the ones started later too.
  # Prints how many processes took it.
  set_pg_cores() {
    local p n=0
    for p in $(pgrep -u postgres postgres || true); do
      taskset -a -p -c "$1" "$p" >/dev/null 2>&1 && n=$((n + 1))
    done
    echo "$n"
  }
  [ "$(set_pg_cores "$DB_CORE")" -gt 0 ] || { echo "no PostgreSQL process (user postgres) could be pinned" >&2; exit 1; }
  trap 'cleanup; set_pg_cores "0-$last" >/dev/null' EXIT
  pin=(taskset -c "$others")
  echo "== PostgreSQL on core $DB_CORE only; Postier, wrk and the bound on cores $others"
fi
start_postier "${pin[@]}"
token=$(token_for bench@example.com "$password")

cat > "$work/login.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"login":"bench@example.com","password":"$password"}'
LUA
cat > "$work/me.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $token"
LUA
rate() { awk '/Requests\/sec/ {print $2}' "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f %%", 100 * a / b }'; }

echo "== $BACKEND: one login at a time (≈ one argon2 verification + overhead)"
"${pin[@]}" wrk -t1 -c1 -d5s --latency -s "$work/login.lua" "$base/v1/sessions" | grep -E "Latency|Requests/sec|99%"
# The machine's speed drifts from one minute to the next, and even within one (a shared
# host): the login runs are short (6 s) and alternate with short measures of the bound (3 s
# of every core verifying at once), each round compared with the mean of the bounds just
# before and just after it. ROUNDS rounds (default 6); the median is the figure of the run.
rounds=${ROUNDS:-6}
bound() { ARGON2_COST_BOUND_ONLY=1 ARGON2_COST_BOUND_SECS=3 "${pin[@]}" "$cost_bin" | awk '/^bound:/ {print $(NF-3)}'; }
"${pin[@]}" "$cost_bin" > "$work/cost"
one=$(awk '/^one core:/ {print $(NF-3)}' "$work/cost")
echo "one verification: $(awk '/^verify:/ {print $3}' "$work/cost") ms; cores ÷ one verification $one/s"
: > "$work/ratios"
: > "$work/rates"
before=$(bound)
for round in $(seq 1 "$rounds"); do
  "${pin[@]}" wrk -t2 -c16 -d6s --latency -s "$work/login.lua" "$base/v1/sessions" > "$work/logins"
  after=$(bound)
  logins=$(rate "$work/logins")
  pct=$(awk -v l="$logins" -v b="$before" -v a="$after" 'BEGIN { printf "%.0f", 200 * l / (a + b) }')
  echo "$pct" >> "$work/ratios"
  echo "$logins $before $after" >> "$work/rates"
  echo "round $round: logins $logins/s (16 connections, 6 s); every core verifying at once" \
    "$before/s before, $after/s after: $pct % of their mean"
  grep -E "Non-2xx" "$work/logins" || true
  before=$after
done
echo "== $BACKEND: GET /healthz, 32 connections, 10 s"
"${pin[@]}" wrk -t2 -c32 -d10s --latency "$base/healthz" | tee "$work/healthz" | grep -E "Requests/sec|99%|Non-2xx"
echo "== $BACKEND: GET /v1/me, 32 connections, 10 s"
"${pin[@]}" wrk -t2 -c32 -d10s --latency -s "$work/me.lua" "$base/v1/me" | tee "$work/me" \
  | grep -E "Latency|Requests/sec|50%|99%|Non-2xx"
echo "== $BACKEND: ratios of this run"
echo "logins: $(sort -n "$work/ratios" | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}') % of every core verifying at once, median of $rounds rounds ($(paste -sd, "$work/ratios" | sed 's/,/ %, /g') %);" \
  "all rounds pooled: $(awk '{l += $1; b += ($2 + $3) / 2} END {printf "%.1f/s against %.1f/s = %.0f %%", l / NR, b / NR, 100 * l / b}' "$work/rates")"
echo "GET /v1/me: $(rate "$work/me")/s = $(ratio "$(rate "$work/me")" "$(rate "$work/healthz")") of GET /healthz ($(rate "$work/healthz")/s)"
