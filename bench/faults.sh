#!/usr/bin/env bash
# Issue 18: faults under a mixed write load (bench/faults.py: bounded in time and count,
# loopback only), then a check that every acknowledged write is in the database and no
# import is half-written; prints acknowledged, found, lost and exits non-zero on any loss.
#   bench/faults.sh kill        3 instances behind haproxy on PostgreSQL; kill -9 of one
#   bench/faults.sh pg-restart  the same; PostgreSQL stopped for 3 s, then started again.
#                               This restarts the machine's PostgreSQL for everyone on it:
#                               run it rarely. PostgreSQL is started again whatever happens.
#   bench/faults.sh sqlite      one instance on SQLite, 16 concurrent writers
# Password hashing is cheap here: the load is about writes, not argon2.
here=$(dirname "$0")
mode=${1:?usage: bench/faults.sh kill|pg-restart|sqlite}
source "$here/cluster.sh"
instance_env+=(POSTIER_ARGON2__MEMORY_KIB=64 POSTIER_ARGON2__ITERATIONS=1)
load=(python3 "$here/faults.py" --seconds "${LOAD_SECONDS:-20}" --max-writes "${MAX_WRITES:-4000}")

case "$mode" in
  kill)
    start_cluster
    echo "== kill -9 of one of $INSTANCES instances behind haproxy, under load"
    "${load[@]}" --base "$lb" --database "$pg_admin/$pgdb" --fault-at 7 --fault "kill -9 ${pids[2]}"
    ;;
  pg-restart)
    trap 'pg_ctlcluster 15 main start 2>/dev/null || true; cluster_cleanup' EXIT
    start_cluster
    echo "== PostgreSQL stopped for 3 s and started again, under load through haproxy"
    "${load[@]}" --base "$lb" --database "$pg_admin/$pgdb" --fault-at 6 \
      --fault "pg_ctlcluster 15 main stop -m fast; sleep 3; pg_ctlcluster 15 main start"
    ;;
  sqlite)
    port=$(instance_port 1)
    (cd "$work" && exec env "${instance_env[@]}" POSTIER_LISTEN="127.0.0.1:$port" \
      POSTIER_DATA_DIR="$work/sqlite" "$bin" serve >>"$work/postier1.log" 2>&1) &
    pids[1]=$!
    for _ in $(seq 1 200); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.05; done
    echo "== one instance on SQLite, 16 concurrent writers"
    status=0
    "${load[@]}" --base "http://127.0.0.1:$port" --database "sqlite:$work/sqlite/postier.db" \
      --workers 16 || status=$?
    locked=$(grep -c "database is locked" "$work/postier1.log" || true)
    echo "\"database is locked\" in the log: $locked"
    [ "$locked" = 0 ] || status=1
    exit $status
    ;;
  *) echo "unknown mode $mode" >&2; exit 2 ;;
esac
