#!/usr/bin/env bash
# Issue 17 benchmark: webhook deliveries per second and the time from a change's commit to
# the receiver's 2xx (p50/p99), and the rate a backlog drains at, with one and with two
# instances on one PostgreSQL (and one instance on SQLite). The receiver is
# bench/webhooks.py's, on 127.0.0.1.
# Usage: bench/webhooks.sh   (release build first; EVENTS=… CLIENTS=… to change the load)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${POSTIER_BIN:-$root/target/release/postier}
# Every POSTIER_* variable is configuration to Postier, which refuses unknown ones.
unset POSTIER_BIN
[ -x "$bin" ] || { echo "build first: cargo build --release (or set POSTIER_BIN)" >&2; exit 1; }
EVENTS=${EVENTS:-2000}
CLIENTS=${CLIENTS:-8}
work=$(mktemp -d /tmp/postier-bench-webhooks.XXXXXX)
pids=()
pgdb=""

start() { # name port [env…]
  local name=$1 port=$2; shift 2
  mkdir -p "$work/$name"
  (cd "$work/$name" && exec env POSTIER_LISTEN="127.0.0.1:$port" POSTIER_LOG=warn \
    POSTIER_LOG_FORMAT=json POSTIER_WEBHOOK_ALLOW_HOSTS=127.0.0.1 POSTIER_WEBHOOK_TIMEOUT_SECS=30 \
    POSTIER_DATABASE_MAX_CONNECTIONS=16 "$@" "$bin" serve >"$work/$name.log" 2>&1) &
  pids+=($!)
  for _ in $(seq 1 200); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "postier did not start" >&2; cat "$work/$name.log" >&2; exit 1
}

stop() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; done
  pids=()
  if [ -n "$pgdb" ]; then
    psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $pgdb WITH (FORCE)" >/dev/null || true
    pgdb=""
  fi
}
trap 'stop; rm -rf "$work"' EXIT

fresh_pg() { # sets pgdb and url
  pgdb="postier_bench_webhooks_$$_$1"
  psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $pgdb" >/dev/null
  url="postgres://postgres@127.0.0.1:5432/$pgdb"
}

echo "== SQLite, one instance"
start a 18281
python3 "$root/bench/webhooks.py" "$EVENTS" "$CLIENTS" http://127.0.0.1:18281
stop

echo "== PostgreSQL, one instance"
fresh_pg 1
start a 18281 POSTIER_DATABASE_URL="$url"
python3 "$root/bench/webhooks.py" "$EVENTS" "$CLIENTS" http://127.0.0.1:18281
stop

echo "== PostgreSQL, two instances (clients alternate between them)"
fresh_pg 2
start a 18281 POSTIER_DATABASE_URL="$url"
start b 18282 POSTIER_DATABASE_URL="$url"
python3 "$root/bench/webhooks.py" "$EVENTS" "$CLIENTS" http://127.0.0.1:18281 http://127.0.0.1:18282
stop
