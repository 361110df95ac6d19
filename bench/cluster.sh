# Shared helpers of the several-instance scripts (bench/instances.sh, bench/faults.sh): N
# release instances on one fresh PostgreSQL database (optionally through PgBouncer in
# transaction pooling mode) behind haproxy, round-robin, everything on loopback.
# Usage (sourced): start_cluster [--pgbouncer]; …; kill -9 "${pids[1]}"; cleanup runs on exit.
# Needs: haproxy and pgbouncer (apt-get install -y haproxy pgbouncer), psql, python3.
# PGBOUNCER names another PgBouncer binary (bench/pgbouncer-build.sh builds 1.24 from Debian
# 13's source package, for transaction pooling on Debian 12).

set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${POSTIER_BIN:-$root/target/release/postier}
# Every POSTIER_* variable is configuration to Postier, which refuses unknown ones.
unset POSTIER_BIN
[ -x "$bin" ] || { echo "build first: cargo build --release (or set POSTIER_BIN)" >&2; exit 1; }
for tool in haproxy psql python3; do
  command -v "$tool" >/dev/null || { echo "$tool is needed (apt-get install -y haproxy postgresql-client python3)" >&2; exit 1; }
done
INSTANCES=${INSTANCES:-3}
port_base=${PORT_BASE:-18300}
lb="http://127.0.0.1:$port_base"
pg_admin="postgres://postgres@127.0.0.1:5432"
pgdb="postier_cluster_$$"
work=$(mktemp -d /tmp/postier-cluster.XXXXXX)
chmod 755 "$work"
pids=()
haproxy_pid=""
pgbouncer=${PGBOUNCER:-pgbouncer}
pgbouncer_pid=""
database_url="$pg_admin/$pgdb"

instance_port() { echo $((port_base + $1)); }
policy_port() { echo $((port_base + 10 + $1)); }

# Extra environment of every instance (a script may append before start_cluster).
instance_env=(POSTIER_LOG=warn POSTIER_LOG_FORMAT=json POSTIER_DOMAIN_OWNERSHIP=trust
  POSTIER_THROTTLE__FAILURES_PER_IP=100000000 POSTIER_THROTTLE__SIGNUPS_PER_IP=100000000
  POSTIER_DAILY_ADDRESS_CREATIONS=100000000 POSTIER_DATABASE_MAX_CONNECTIONS=8
  POSTIER_RATE_LIMIT__REQUESTS=${RATE_LIMIT_REQUESTS:-1000000000})

# PgBouncer's pooling mode: transaction pooling needs PgBouncer 1.21 or later, whose
# max_prepared_statements tracks the named prepared statements sqlx always uses (README
# "PostgreSQL behind PgBouncer"); Debian 12 ships 1.18, which gets session pooling unless
# PGBOUNCER_MODE=transaction asks for the failure (or PGBOUNCER names a newer build).
pgbouncer_mode() {
  local version
  version=$("$pgbouncer" --version | awk '/^PgBouncer/ {print $2}')
  if [ -n "${PGBOUNCER_MODE:-}" ]; then echo "$PGBOUNCER_MODE"
  elif printf '1.21\n%s\n' "$version" | sort -V -C; then echo transaction
  else echo session; fi
}

start_pgbouncer() {
  local port=$((port_base + 20)) dir="$work/pgbouncer" mode
  mode=$(pgbouncer_mode)
  # PgBouncer refuses to run as root: it runs as postgres, in a folder of its own.
  mkdir -p "$dir"
  echo '"postgres" ""' > "$dir/userlist.txt"
  cat > "$dir/pgbouncer.ini" <<INI
[databases]
$pgdb = host=127.0.0.1 port=5432 dbname=$pgdb user=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
admin_users = postgres
auth_file = $dir/userlist.txt
pool_mode = $mode
; 1.21 and later: PgBouncer prepares sqlx's named statements on whichever server it uses.
$(printf '1.21\n%s\n' "$("$pgbouncer" --version | awk '/^PgBouncer/ {print $2}')" | sort -V -C \
  && echo "max_prepared_statements = 200")
; Session pooling holds a server connection per client connection (3 instances × 8);
; transaction pooling shares a few among them all, which is what it is for.
default_pool_size = $([ "$mode" = transaction ] && echo "${PGBOUNCER_POOL_SIZE:-4}" || echo 25)
max_client_conn = 1000
; sqlx sends it at connection start; PgBouncer refuses unknown startup parameters.
ignore_startup_parameters = extra_float_digits
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
  chown -R postgres "$dir"
  runuser -u postgres -- "$pgbouncer" "$dir/pgbouncer.ini" >>"$dir/pgbouncer.out" 2>&1 &
  pgbouncer_pid=$!
  local ready=""
  for _ in $(seq 1 100); do
    psql -q -h 127.0.0.1 -p "$port" -U postgres -d "$pgdb" -c "SELECT 1" >/dev/null 2>&1 && { ready=1; break; }
    sleep 0.1
  done
  [ -n "$ready" ] || { echo "pgbouncer did not start" >&2; cat "$dir/pgbouncer.out" >&2; exit 1; }
  database_url="postgres://postgres@127.0.0.1:$port/$pgdb"
  echo "PgBouncer $("$pgbouncer" --version | awk '/^PgBouncer/ {print $2}'), pool_mode = $mode" >&2
}

# What PgBouncer did: client and server connections of the pool, transactions and queries
# it passed, and any error it logged (each instance holds up to 8 client connections).
pgbouncer_report() {
  local port=$((port_base + 20))
  # SHOW output as "column=value" pairs of this database's row, by header name.
  show() {
    psql -A -F ' ' -h 127.0.0.1 -p "$port" -U postgres -d pgbouncer -c "SHOW $1" | awk -v db="$pgdb" -v want="$2" '
      NR == 1 { for (i = 1; i <= NF; i++) name[i] = $i; next }
      $1 == db { n = split(want, w, ","); line = ""
        for (k = 1; k <= n; k++) for (i = 1; i <= NF; i++) if (name[i] == w[k]) line = line " " w[k] "=" $i
        print "  " line }'
  }
  echo "PgBouncer pool of $pgdb:"
  show POOLS cl_active,cl_waiting,sv_active,sv_idle,sv_used,maxwait,pool_mode
  show STATS total_xact_count,total_query_count,total_server_assignment_count,total_client_parse_count,total_server_parse_count,total_bind_count
  if grep -E ' (ERROR|FATAL|WARNING) ' "$work/pgbouncer/pgbouncer.log" >/dev/null 2>&1; then
    echo "PgBouncer logged:"; grep -E ' (ERROR|FATAL|WARNING) ' "$work/pgbouncer/pgbouncer.log" | head -10
    return 1
  fi
}

start_instance() { # index (1-based)
  local i=$1 env=("${instance_env[@]}" POSTIER_LISTEN="127.0.0.1:$(instance_port "$1")"
    POSTIER_DATABASE_URL="$database_url" POSTIER_DATA_DIR="$work/data$1"
    POSTIER_POLICY_LISTEN="127.0.0.1:$(policy_port "$1")")
  (cd "$work" && exec env "${env[@]}" "$bin" serve >>"$work/postier$i.log" 2>&1) &
  pids[$i]=$!
  for _ in $(seq 1 200); do
    curl -fs "http://127.0.0.1:$(instance_port "$i")/readyz" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "instance $i did not start" >&2; cat "$work/postier$i.log" >&2; exit 1
}

start_haproxy() {
  {
    cat <<CFG
global
  maxconn 4096
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  # A request cut off by a dying instance is not retried: the client sees it failed, as
  # it would in production, and counts it as not acknowledged.
  retries 0
frontend api
  bind 127.0.0.1:$port_base
  default_backend postier
backend postier
  balance roundrobin
  option httpchk GET /healthz
  http-response set-header X-Postier-Instance %s
CFG
    for i in $(seq 1 "$INSTANCES"); do
      echo "  server p$i 127.0.0.1:$(instance_port "$i") check inter 300ms fall 2 rise 2"
    done
  } > "$work/haproxy.cfg"
  haproxy -f "$work/haproxy.cfg" -db >"$work/haproxy.log" 2>&1 &
  haproxy_pid=$!
  for _ in $(seq 1 100); do curl -fs "$lb/healthz" >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "haproxy did not start" >&2; cat "$work/haproxy.log" >&2; exit 1
}

start_cluster() { # [--pgbouncer]
  psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $pgdb" >/dev/null
  # Migrations run once, directly on PostgreSQL (DDL is not for a transaction pooler).
  env POSTIER_DATABASE_URL="$pg_admin/$pgdb" POSTIER_DATA_DIR="$work/migrate" POSTIER_LOG=warn \
    "$bin" migrate >"$work/migrate.log" 2>&1
  [ "${1:-}" = --pgbouncer ] && start_pgbouncer
  for i in $(seq 1 "$INSTANCES"); do start_instance "$i"; done
  start_haproxy
}

cluster_cleanup() {
  local pid
  for pid in "${pids[@]}" $haproxy_pid $pgbouncer_pid \
    $(cat "$work/pgbouncer/pgbouncer.pid" 2>/dev/null); do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}" $haproxy_pid $pgbouncer_pid; do
    wait "$pid" 2>/dev/null || true
  done
  psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $pgdb WITH (FORCE)" >/dev/null 2>&1 || true
  if [ -n "${KEEP_LOGS:-}" ]; then echo "logs kept in $work" >&2; else rm -rf "$work"; fi
}
trap cluster_cleanup EXIT

# The arguments bench/cluster.py takes to reach this cluster.
cluster_args() {
  local ports="" policy="" i
  for i in $(seq 1 "$INSTANCES"); do
    ports+="${ports:+,}$(instance_port "$i")"; policy+="${policy:+,}$(policy_port "$i")"
  done
  echo --lb "$lb" --instances "$ports" --policy "$policy" --database "$pg_admin/$pgdb"
}
