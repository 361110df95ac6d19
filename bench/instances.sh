#!/usr/bin/env bash
# Issue 18: several instances behave as one. Starts 3 release instances on one PostgreSQL
# database behind haproxy (round-robin, one request per connection) and runs the main flows
# of bench/cluster.py through it and against each instance; then again with the instances
# connected through PgBouncer in transaction pooling mode.
# Usage: bench/instances.sh [--pgbouncer] [flow…]   (release build first; haproxy, pgbouncer)
here=$(dirname "$0")
source "$here/cluster.sh"
mode=""
[ "${1:-}" = --pgbouncer ] && { mode=--pgbouncer; shift; }
# The webhooks flow's receiver listens on loopback.
instance_env+=(POSTIER_THROTTLE__FAILURES_PER_LOGIN=5 POSTIER_REFRESH_REUSE_GRACE_SECS=2
  POSTIER_WEBHOOK_ALLOW_HOSTS=127.0.0.1)
start_cluster $mode
echo "== $INSTANCES instances behind haproxy on PostgreSQL${mode:+ through PgBouncer}"
# shellcheck disable=SC2046
status=0
python3 "$here/cluster.py" $(cluster_args) "$@" || status=$?
if [ -n "$mode" ]; then pgbouncer_report || status=1; fi
if grep -h '"level":"ERROR"' "$work"/postier*.log >/dev/null 2>&1; then
  echo "errors logged by the instances:"; grep -h '"level":"ERROR"' "$work"/postier*.log | head -20
  status=1
fi
exit $status
