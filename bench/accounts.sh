#!/usr/bin/env bash
# Issue 3 benchmark: logins per second with production argon2 against the bound
# (cores ÷ one verification), and authenticated GET /v1/me per second and p99 at 32
# connections. Usage: BACKEND=sqlite|postgres bench/accounts.sh   (release build first)
source "$(dirname "$0")/lib.sh"
password="correct horse battery staple"
start_postier
token=$(token_for bench@example.com "$password")

cat > "$work/login.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"login":"bench@example.com","password":"$password"}'
LUA
cat > "$work/me.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $token"
LUA

echo "== $BACKEND: one login at a time (≈ one argon2 verification + overhead)"
wrk -t1 -c1 -d10s --latency -s "$work/login.lua" "$base/v1/sessions" | grep -E "Latency|Requests/sec|99%"
echo "== $BACKEND: logins, 16 connections (bounded by the argon2 pool: $(nproc) at once)"
wrk -t2 -c16 -d15s --latency -s "$work/login.lua" "$base/v1/sessions" | grep -E "Latency|Requests/sec|99%|Non-2xx"
echo "== $BACKEND: GET /v1/me, 32 connections"
wrk -t2 -c32 -d15s --latency -s "$work/me.lua" "$base/v1/me" | grep -E "Latency|Requests/sec|50%|99%|Non-2xx"
