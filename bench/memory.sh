#!/usr/bin/env bash
# Issue 18 benchmark: memory and overload of password hashing. Starts the release binary,
# loads logins with wrk at 16 and then 128 connections (each run bounded in time), samples
# VmRSS from /proc/<pid>/status every 0.2 s during each run and 5 s after it, and reports
# the peak against the bound 64 MiB + workers × argon2 memory, the 503s, and the latency of
# GET /v1/me (no hashing) alone and during the overload.
# Usage: BACKEND=sqlite|postgres bench/memory.sh   (release build first)
source "$(dirname "$0")/lib.sh"
password="correct horse battery staple"
seconds=${SECONDS_PER_RUN:-10}
start_postier
token=$(token_for bench@example.com "$password")
workers=$(nproc)
memory_kib=19456
bound_kib=$((64 * 1024 + workers * memory_kib))

cat > "$work/login.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"login":"bench@example.com","password":"$password"}'
LUA
cat > "$work/me.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $token"
LUA

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
# Samples RSS every 0.2 s for $1 seconds; prints the peak in KiB.
sample_peak() {
  local until=$((SECONDS + $1)) peak=0 now
  while [ "$SECONDS" -lt "$until" ]; do
    now=$(rss_kib); [ "$now" -gt "$peak" ] && peak=$now; sleep 0.2
  done
  echo "$peak"
}
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }

echo "== $BACKEND: $workers hashing workers, argon2 m=$memory_kib KiB; bound $(mib $bound_kib)"
echo "idle: $(mib "$(rss_kib)")"
echo "GET /v1/me alone, 4 connections, 5 s:"
wrk -t1 -c4 -d5s --latency -s "$work/me.lua" "$base/v1/me" | grep -E "Requests/sec|  50%|  99%"

for connections in 16 128; do
  echo "== logins at $connections connections, ${seconds} s"
  sample_peak $((seconds + 1)) > "$work/peak" &
  sampler=$!
  if [ "$connections" = 128 ]; then
    # Non-hashing requests beside the overload (started together, same duration).
    wrk -t1 -c4 -d"${seconds}s" --latency -s "$work/me.lua" "$base/v1/me" > "$work/me-during" &
    me=$!
  fi
  wrk -t2 -c"$connections" -d"${seconds}s" --latency -s "$work/login.lua" "$base/v1/sessions" \
    | grep -E "Requests/sec|  50%|  99%|Non-2xx"
  [ "$connections" = 128 ] && wait "$me" && {
    echo "GET /v1/me meanwhile, 4 connections:"; grep -E "Requests/sec|  50%|  99%" "$work/me-during"; }
  wait "$sampler"
  peak=$(cat "$work/peak")
  verdict=ok; [ "$peak" -le "$bound_kib" ] || verdict="OVER THE BOUND"
  echo "peak RSS during: $(mib "$peak") ($verdict)"
  sleep 5
  echo "RSS 5 s after: $(mib "$(rss_kib)")"
done
