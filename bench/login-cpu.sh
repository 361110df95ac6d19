#!/usr/bin/env bash
# Where the CPU of a login goes: loads logins at 16 connections for 10 s and prints the
# rate and the CPU time (ticks of 10 ms, from /proc) used meanwhile by Postier, by every
# PostgreSQL process and by the whole machine, per login. With cheap argon2
# (CHEAP=1: m=64 KiB, t=1) it shows the cost of everything but the hash.
# Usage: BACKEND=sqlite|postgres [CHEAP=1] bench/login-cpu.sh   (release build first)
source "$(dirname "$0")/lib.sh"
password="correct horse battery staple"
if [ -n "${CHEAP:-}" ]; then
  start_postier env POSTIER_ARGON2__MEMORY_KIB=64 POSTIER_ARGON2__ITERATIONS=1
else
  start_postier
fi
token_for bench@example.com "$password" >/dev/null
cat > "$work/login.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"login":"bench@example.com","password":"$password"}'
LUA
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
pg_ticks() {
  local t=0 p
  for p in $(pgrep -u postgres postgres || true); do
    t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$t"
}
machine_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $6 + $7 + $8}' /proc/stat; }
p0=$(ticks "$pid"); g0=$(pg_ticks); m0=$(machine_ticks)
wrk -t2 -c16 -d10s -s "$work/login.lua" "$base/v1/sessions" > "$work/wrk"
p1=$(ticks "$pid"); g1=$(pg_ticks); m1=$(machine_ticks)
rate=$(awk '/Requests\/sec/ {print $2}' "$work/wrk")
awk -v r="$rate" -v p=$((p1 - p0)) -v g=$((g1 - g0)) -v m=$((m1 - m0)) -v b="$BACKEND" 'BEGIN {
  n = r * 10
  printf "%s%s: %.0f logins/s; CPU per login: Postier %.2f ms, PostgreSQL %.2f ms, machine %.2f ms (busy %.0f %% of 2 cores)\n",
    b, ENVIRON["CHEAP"] ? " (cheap argon2)" : "", r, 10 * p / n, 10 * g / n, 10 * m / n, m / 20 }'
