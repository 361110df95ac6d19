#!/usr/bin/env bash
# Issue 5 benchmark: 1,000 addresses created one by one and a 1,000-row CSV import with
# production argon2 (time per address against one hash), then GET …/addresses?limit=50
# per second and p99 with 100,000 addresses in the service versus 1,000.
# Usage: BACKEND=sqlite|postgres bench/addresses.sh   (release build first)
source "$(dirname "$0")/lib.sh"
client="python3 $(dirname "$0")/client.py"

start_postier
read -r token service < <($client setup "$base" bench@example.com bench.example)
$client login-time "$base" bench@example.com 15
$client one-by-one "$base" "$token" "$service" 1000
read -r _ service2 < <($client setup "$base" bench2@example.com bench2.example)
token2=$(post /v1/sessions '{"login":"bench2@example.com","password":"correct horse battery staple"}' | json '["access_token"]')
$client import "$base" "$token2" "$service2" 1000 imported
stop_postier

# Listing does not depend on password cost: seed 100,000 addresses with cheap hashing.
start_postier POSTIER_ARGON2__MEMORY_KIB=64 POSTIER_ARGON2__ITERATIONS=1
read -r token big < <($client setup "$base" big@example.com big.example)
read -r token_small small < <($client setup "$base" small@example.com small.example)
for chunk in $(seq 0 19); do $client import "$base" "$token" "$big" 5000 "c${chunk}u" >/dev/null; done
$client import "$base" "$token_small" "$small" 1000 u >/dev/null
# Measure the steady state, not autovacuum catching up with 101,000 fresh rows.
[ "$BACKEND" = postgres ] && psql -q -h 127.0.0.1 -U postgres -d "$pgdb" -c "VACUUM ANALYZE" >/dev/null
cat > "$work/auth.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $token"
LUA
cat > "$work/auth_small.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $token_small"
LUA
deep=$($client cursor "$base" "$token" "$big" 90000)
echo "== $BACKEND: 1,000 addresses, first page"
wrk -t2 -c32 -d10s --latency -s "$work/auth_small.lua" "$base/v1/mail-services/$small/addresses?limit=50" | grep -E "Requests/sec|99%|Non-2xx"
echo "== $BACKEND: 100,000 addresses, first page"
wrk -t2 -c32 -d10s --latency -s "$work/auth.lua" "$base/v1/mail-services/$big/addresses?limit=50" | grep -E "Requests/sec|99%|Non-2xx"
echo "== $BACKEND: 100,000 addresses, a page after 90,000 (cursor)"
wrk -t2 -c32 -d10s --latency -s "$work/auth.lua" "$base/v1/mail-services/$big/addresses?limit=50&cursor=$deep" | grep -E "Requests/sec|99%|Non-2xx"
