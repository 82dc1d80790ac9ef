#!/usr/bin/env bash
# Start the Redis and PostgreSQL servers (and a PgBouncer) that the lease tests run against.
#
# Installs the Debian packages when they are missing, then starts one
# redis-server and one fresh PostgreSQL cluster on 127.0.0.1 (trust auth,
# data under $LEASES_SERVERS_DIR, default /tmp/supervised-loops-leases).
# Prints the environment the tests read, ready for `eval`:
#
#   eval "$(bash tests/leases_servers.sh)"
#
# Running it again while the servers are up only prints the environment;
# a PostgreSQL cluster that is not running is made anew.
set -euo pipefail

base=${LEASES_SERVERS_DIR:-/tmp/supervised-loops-leases}
redis_port=${LEASES_REDIS_PORT:-6391}
pg_port=${LEASES_PG_PORT:-5439}
bouncer_port=${LEASES_PGBOUNCER_PORT:-6439}

log() { echo "$@" >&2; }

pg_bin() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$dir" ] && [ -x "$dir/initdb" ] && echo "$dir"
}

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v pgbouncer >/dev/null || missing+=(pgbouncer)
pg_bin >/dev/null || missing+=(postgresql)
if [ "${#missing[@]}" -gt 0 ]; then
    log "== installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq "${missing[@]}" >&2
fi
bin=$(pg_bin)

mkdir -p "$base"
chmod 755 "$base"

# Redis: no persistence (the tests restart it on purpose and expect a clean
# state to be survivable, not a saved one).
if ! redis-cli -h 127.0.0.1 -p "$redis_port" ping >/dev/null 2>&1; then
    log "== starting redis-server on 127.0.0.1:$redis_port"
    redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
        --daemonize yes --dir "$base" --logfile "$base/redis.log" \
        --pidfile "$base/redis.pid" >&2
    for _ in $(seq 1 100); do
        redis-cli -h 127.0.0.1 -p "$redis_port" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
fi

# PostgreSQL: a cluster of our own, owned by the postgres user.
pg_data="$base/pg"
as_postgres() { su postgres -s /bin/sh -c "$*"; }
if ! "$bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port"; then
    # Not running: start from a fresh cluster (a stale one may hold the
    # lock file of a server killed with the previous session).
    rm -rf "$pg_data"
    log "== initdb $pg_data"
    mkdir -p "$pg_data"
    chown postgres:postgres "$pg_data"
    as_postgres "'$bin/initdb' -D '$pg_data' -U postgres --auth=trust -E UTF8 >/dev/null"
    log "== starting PostgreSQL on 127.0.0.1:$pg_port"
    as_postgres "'$bin/pg_ctl' -D '$pg_data' -l '$pg_data/server.log' -w -o \"-h 127.0.0.1 -p $pg_port -k /tmp\" start >/dev/null"
fi

# PgBouncer in transaction pooling mode in front of that cluster: the
# PostgreSQL backend must work through it.
bouncer="$base/pgbouncer"
if ! "$bin/pg_isready" -q -h 127.0.0.1 -p "$bouncer_port"; then
    log "== starting pgbouncer (transaction pooling) on 127.0.0.1:$bouncer_port"
    mkdir -p "$bouncer"
    cat > "$bouncer/pgbouncer.ini" <<INI
[databases]
postgres = host=127.0.0.1 port=$pg_port dbname=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bouncer_port
unix_socket_dir =
auth_type = trust
auth_file = $bouncer/users.txt
pool_mode = transaction
max_client_conn = 200
default_pool_size = 4
logfile = $bouncer/pgbouncer.log
pidfile = $bouncer/pgbouncer.pid
INI
    echo '"postgres" ""' > "$bouncer/users.txt"
    rm -f "$bouncer/pgbouncer.pid"  # left by one killed with a previous session
    chown -R postgres:postgres "$bouncer"
    as_postgres "pgbouncer -d '$bouncer/pgbouncer.ini' >/dev/null"
    for _ in $(seq 1 100); do
        "$bin/pg_isready" -q -h 127.0.0.1 -p "$bouncer_port" && break
        sleep 0.1
    done
fi

echo "export SUPERVISED_LOOPS_TEST_REDIS_URL=redis://127.0.0.1:$redis_port/0"
echo "export SUPERVISED_LOOPS_TEST_POSTGRES_DSN=postgresql://postgres@127.0.0.1:$pg_port/postgres"
echo "export SUPERVISED_LOOPS_TEST_PGBOUNCER_DSN=postgresql://postgres@127.0.0.1:$bouncer_port/postgres"
