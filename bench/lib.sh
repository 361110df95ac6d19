# Shared helpers of the benchmark scripts: start a release Postier on SQLite or PostgreSQL.
# Usage (sourced): BACKEND=sqlite|postgres; start_postier [extra env…]; … ; stop_postier

set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${POSTIER_BIN:-$root/target/release/postier}
# Every POSTIER_* variable is configuration to Postier, which refuses unknown ones.
unset POSTIER_BIN
[ -x "$bin" ] || { echo "build first: cargo build --release (or set POSTIER_BIN)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk" >&2; exit 1; }
BACKEND=${BACKEND:-sqlite}
port=${PORT:-18181}
base="http://127.0.0.1:$port"
work=$(mktemp -d /tmp/postier-bench.XXXXXX)
pgdb=""

start_postier() {
  local env=(POSTIER_LISTEN="127.0.0.1:$port" POSTIER_LOG=warn POSTIER_LOG_FORMAT=json
    POSTIER_THROTTLE__FAILURES_PER_LOGIN=100000000 POSTIER_THROTTLE__FAILURES_PER_IP=100000000
    POSTIER_THROTTLE__SIGNUPS_PER_IP=100000000 POSTIER_DAILY_ADDRESS_CREATIONS=100000000
    POSTIER_IMPORT_MAX_ROWS=100000 POSTIER_IMPORT_MAX_BYTES=20000000
    POSTIER_DATABASE_MAX_CONNECTIONS=${POOL:-16}
    # The rate limiter runs (its cost is measured) with a budget no benchmark reaches.
    POSTIER_RATE_LIMIT__REQUESTS=${RATE_LIMIT_REQUESTS:-1000000000})
  if [ "$BACKEND" = postgres ]; then
    pgdb="postier_bench_$$"
    psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $pgdb" >/dev/null
    env+=(POSTIER_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$pgdb")
  fi
  (cd "$work" && exec env "${env[@]}" "$@" "$bin" serve >"$work/postier.log" 2>&1) &
  pid=$!
  for _ in $(seq 1 200); do curl -fs "$base/readyz" >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "postier did not start" >&2; cat "$work/postier.log" >&2; exit 1
}

stop_postier() {
  [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  pid=""
  if [ -n "$pgdb" ]; then
    psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $pgdb WITH (FORCE)" >/dev/null || true
    pgdb=""
  fi
}

cleanup() { stop_postier; rm -rf "$work"; }
trap cleanup EXIT

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
post() { curl -fs -X POST "$base$1" -H 'content-type: application/json' ${3:+-H "Authorization: Bearer $3"} -d "$2"; }

# Signs up LOGIN with PASSWORD and prints an access token.
token_for() {
  post /v1/accounts "{\"login\":\"$1\",\"password\":\"$2\"}" >/dev/null
  post /v1/sessions "{\"login\":\"$1\",\"password\":\"$2\"}" | json '["access_token"]'
}

# wrk's summary as "requests/s p99": runs URL with METHOD/BODY/TOKEN.
wrk_run() { # connections duration url [lua script]
  local c=$1 d=$2 url=$3 script=${4:-}
  wrk -t2 -c"$c" -d"$d" --latency ${script:+-s "$script"} "$url"
}
