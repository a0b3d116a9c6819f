# shellcheck shell=bash
# Starts a throwaway PostgreSQL and a moto S3 server (SigV4 enforced) on free loopback ports, and exports the
# TEST_* settings the test suite reads. stop_test_servers stops both; the caller traps it on EXIT.
# Expects install-deps.sh to be sourced.

TEST_SERVERS_DIR=""
MOTO_PID=""
PG_BIN=""

start_test_servers() {
    TEST_SERVERS_DIR=$(mktemp -d /tmp/personal-backup-test.XXXXXX)
    chmod 755 "$TEST_SERVERS_DIR"
    start_test_postgres
    start_test_moto
}

run_as_postgres_user() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# TEST_PG_FSYNC=on gives a durable server (benchmarks); tests run with fsync off for speed.
start_test_postgres() {
    PG_BIN=$(postgres_bin_dir)
    local port password pgdata
    port=$(free_port)
    password=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
    pgdata="$TEST_SERVERS_DIR/pg"
    mkdir -p "$pgdata" "$TEST_SERVERS_DIR/pgsock"
    printf '%s\n' "$password" > "$TEST_SERVERS_DIR/pgpass"
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres "$pgdata" "$TEST_SERVERS_DIR/pgsock" "$TEST_SERVERS_DIR/pgpass"
    fi
    run_as_postgres_user "$PG_BIN/initdb" -D "$pgdata" -U backup_test --pwfile="$TEST_SERVERS_DIR/pgpass" \
        --auth=scram-sha-256 --encoding=UTF8 --locale=C >"$TEST_SERVERS_DIR/initdb.log" 2>&1 \
        || { cat "$TEST_SERVERS_DIR/initdb.log" >&2; return 1; }
    run_as_postgres_user "$PG_BIN/pg_ctl" -D "$pgdata" -l "$TEST_SERVERS_DIR/pgsock/postgres.log" -w -t 60 -s \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $TEST_SERVERS_DIR/pgsock -c max_connections=300 -c fsync=${TEST_PG_FSYNC:-off}" start \
        || { tail -20 "$TEST_SERVERS_DIR/pgsock/postgres.log" >&2; return 1; }
    export TEST_DATABASE_URL="postgres://backup_test:$password@127.0.0.1:$port/postgres?sslmode=disable"
    export TEST_POSTGRES_BIN_DIR="$PG_BIN"
    echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$port" >&2
}

start_test_moto() {
    local port waited=0
    port=$(free_port)
    # Every request counts towards the free ones, so readiness is a plain TCP connect, not an HTTP probe.
    INITIAL_NO_AUTH_ACTION_COUNT=4 python3 "$(dirname "${BASH_SOURCE[0]}")/../../docker/local/moto_server.py" -H 127.0.0.1 -p "$port" >"$TEST_SERVERS_DIR/moto.log" 2>&1 &
    MOTO_PID=$!
    until python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 0.5)" 2>/dev/null; do
        sleep 0.2
        waited=$((waited + 1))
        if [ $waited -gt 150 ] || ! kill -0 "$MOTO_PID" 2>/dev/null; then
            echo "moto server did not start; its log:" >&2
            tail -20 "$TEST_SERVERS_DIR/moto.log" >&2
            return 1
        fi
    done
    eval "$(python3 "$(dirname "${BASH_SOURCE[0]}")/moto-bootstrap.py" "http://127.0.0.1:$port")"
    export TEST_S3_ENDPOINT="http://127.0.0.1:$port"
    export TEST_S3_REGION="us-east-1"
    echo "moto S3 on 127.0.0.1:$port (SigV4 enforced)" >&2
}

stop_test_servers() {
    if [ -n "$MOTO_PID" ]; then
        kill "$MOTO_PID" 2>/dev/null
        wait "$MOTO_PID" 2>/dev/null
        MOTO_PID=""
    fi
    if [ -n "$TEST_SERVERS_DIR" ] && [ -f "$TEST_SERVERS_DIR/pg/postmaster.pid" ]; then
        run_as_postgres_user "$PG_BIN/pg_ctl" -D "$TEST_SERVERS_DIR/pg" -m immediate -w -s stop >/dev/null 2>&1
    fi
    if [ -n "$TEST_SERVERS_DIR" ]; then
        rm -rf "$TEST_SERVERS_DIR"
        TEST_SERVERS_DIR=""
    fi
}
