#!/usr/bin/env bash
# Issue 15 benchmark: authenticated GET /v1/me with an access token (JWT, session cache)
# against the same with a personal API token (SHA-256 lookup, same cache bound), beside
# GET /healthz, all at 32 connections in one run. The rate limiter runs in every
# authenticated one (lib.sh gives it a budget wrk never reaches).
# Usage: BACKEND=sqlite|postgres bench/tokens.sh   (release build first: cargo build --release)
source "$(dirname "$0")/lib.sh"
password="correct horse battery staple"
start_postier
token=$(token_for bench@example.com "$password")
# A fresh login is a recent password proof, which creating a token needs.
api_token=$(post /v1/me/tokens '{"name":"bench","scopes":["read"]}' "$token" | json '["token"]')

cat > "$work/jwt.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $token"
LUA
cat > "$work/pat.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $api_token"
LUA
rate() { awk '/Requests\/sec/ {print $2}' "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f %%", 100 * a / b }'; }

echo "== $BACKEND: GET /healthz, 32 connections, 10 s"
wrk -t2 -c32 -d10s --latency "$base/healthz" | tee "$work/healthz" | grep -E "Requests/sec|99%|Non-2xx"
echo "== $BACKEND: GET /v1/me with an access token, 32 connections, 10 s"
wrk -t2 -c32 -d10s --latency -s "$work/jwt.lua" "$base/v1/me" | tee "$work/jwt" \
  | grep -E "Latency|Requests/sec|50%|99%|Non-2xx"
echo "== $BACKEND: GET /v1/me with an API token, 32 connections, 10 s"
wrk -t2 -c32 -d10s --latency -s "$work/pat.lua" "$base/v1/me" | tee "$work/pat" \
  | grep -E "Latency|Requests/sec|50%|99%|Non-2xx"
echo "== $BACKEND: ratios of this run"
echo "access token: $(rate "$work/jwt")/s = $(ratio "$(rate "$work/jwt")" "$(rate "$work/healthz")") of GET /healthz ($(rate "$work/healthz")/s)"
echo "API token: $(rate "$work/pat")/s = $(ratio "$(rate "$work/pat")" "$(rate "$work/jwt")") of the access token"
echo "last_used_at after the run: $(curl -fs "$base/v1/me/tokens" -H "Authorization: Bearer $token" | json '["items"][0]["last_used_at"]')"
