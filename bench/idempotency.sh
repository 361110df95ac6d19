#!/usr/bin/env bash
# Issue 15 benchmark: what an Idempotency-Key costs a creating POST. POST /v1/organizations
# (201, no password hashing, so the key's work is not hidden behind argon2) per second and
# p99 without a key, with a new key on every request (reserve + store the sealed answer), and
# with one key replayed (the answer read back and opened).
# Usage: BACKEND=sqlite|postgres bench/idempotency.sh   (release build first)
source "$(dirname "$0")/lib.sh"

start_postier
token=$(token_for bench@example.com "correct horse battery staple")
body='{"name":"Bench"}'
cat > "$work/plain.lua" <<LUA
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $token"
LUA
# A key per request: wrk's threads number themselves so that keys never repeat.
cat > "$work/keyed.lua" <<LUA
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer $token",
    ["Idempotency-Key"] = "bench-" .. tid .. "-" .. n,
  }, '$body')
end
LUA
cat > "$work/replayed.lua" <<LUA
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $token"
wrk.headers["Idempotency-Key"] = "bench-replayed"
LUA
curl -fs -o /dev/null -X POST "$base/v1/organizations" -H 'content-type: application/json' \
  -H "Authorization: Bearer $token" -H 'Idempotency-Key: bench-replayed' -d "$body"
for run in plain keyed replayed; do
  echo "== $BACKEND: POST /v1/organizations, $run"
  wrk -t2 -c16 -d10s --latency -s "$work/$run.lua" "$base/v1/organizations" | grep -E "Requests/sec|99%|Non-2xx"
done
