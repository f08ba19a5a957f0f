#!/usr/bin/env bash
# A throwaway PostgreSQL 15 for tests: initdb in a temporary directory, the server on a free
# loopback port (and a Unix socket in the same directory), stopped and removed at the end.
#   tests/lib/postgres.sh run CMD ARGS...   start, run CMD with SIOC_TEST_PG_URL set, stop;
#                                           exits with CMD's status
#   tests/lib/postgres.sh start DIR         start in DIR (created), print the URL
#   tests/lib/postgres.sh restart DIR       fast shutdown and start again, same port
#   tests/lib/postgres.sh down DIR          fast shutdown, DIR kept (the server is down)
#   tests/lib/postgres.sh up DIR            start again what down stopped, same port
#   tests/lib/postgres.sh stop DIR          stop (immediate) and remove DIR
# As root, the server runs as `nobody` (PostgreSQL refuses to run as root). Exits 77 with a
# message when PostgreSQL is not installed (scripts/install-deps --test installs it).
# Durability settings (fsync off) are for speed: the tests kill the daemon, never the server
# unannounced. PG_FSYNC=on keeps PostgreSQL's defaults (benchmarks).
# PG_OPTIONS="-c name=value ..." (start): more server settings (benchmarks: pg_stat_statements).
# PG_SSL_CERT=FILE PG_SSL_KEY=FILE (start): TLS on (ssl=on) with that certificate and key,
# copied into DIR for the server's user (PostgreSQL wants the key owned by it, mode 0600).
set -euo pipefail

bindir="$(pg_config --bindir 2>/dev/null || true)"
if [[ ! -x "$bindir/initdb" ]]; then
    bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
fi
if [[ ! -x "$bindir/initdb" || ! -x "$bindir/pg_ctl" ]]; then
    echo "postgres.sh: PostgreSQL server binaries not found (apt-get install postgresql)" >&2
    exit 77
fi

as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u nobody -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

server_start() {
    local dir="$1" port durability="-c fsync=off -c full_page_writes=off" tls=""
    [[ "${PG_FSYNC:-off}" == on ]] && durability=""
    [[ -f "$dir/server.key" ]] && tls="-c ssl=on -c ssl_cert_file=$dir/server.crt -c ssl_key_file=$dir/server.key"
    port="$(cat "$dir/port")"
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 30 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir $durability $tls -c max_connections=50 ${PG_OPTIONS:-}" \
        start >/dev/null
}

# PG_SSL_CERT / PG_SSL_KEY into dir, readable by the server's user only.
tls_files() {
    local dir="$1"
    [[ -n "${PG_SSL_CERT:-}" && -n "${PG_SSL_KEY:-}" ]] || return 0
    cp "$PG_SSL_CERT" "$dir/server.crt"
    cp "$PG_SSL_KEY" "$dir/server.key"
    chmod 600 "$dir/server.key"
    [[ $(id -u) -eq 0 ]] && chown nobody "$dir/server.crt" "$dir/server.key"
    return 0
}

start() {
    local dir="$1"
    mkdir -p "$dir"
    chmod 755 "$dir"
    [[ $(id -u) -eq 0 ]] && chown nobody "$dir"
    as_owner "$bindir/initdb" -D "$dir/data" -U sioc --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; exit 1; }
    free_port >"$dir/port"
    tls_files "$dir"
    server_start "$dir" || { cat "$dir/log" >&2; exit 1; }
    as_owner "$bindir/createdb" -h 127.0.0.1 -p "$(cat "$dir/port")" -U sioc sioc_test
    echo "postgresql://sioc@127.0.0.1:$(cat "$dir/port")/sioc_test"
}

stop() {
    local dir="$1"
    if [[ -f "$dir/data/postmaster.pid" ]]; then
        as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
}

case "${1:-}" in
start) start "$2" ;;
stop) stop "$2" ;;
restart)
    as_owner "$bindir/pg_ctl" -D "$2/data" -m fast -w stop >/dev/null
    server_start "$2"
    ;;
down) as_owner "$bindir/pg_ctl" -D "$2/data" -m fast -w stop >/dev/null ;;
up) server_start "$2" ;;
run)
    shift
    dir="$(mktemp -d /tmp/sioc-pg-XXXXXX)"
    trap 'stop "$dir"' EXIT
    SIOC_TEST_PG_URL="$(start "$dir")"
    export SIOC_TEST_PG_URL SIOC_TEST_PG_DIR="$dir"
    set +e
    "$@"
    status=$?
    exit $status
    ;;
*)
    echo "usage: tests/lib/postgres.sh run CMD... | start DIR | restart DIR | stop DIR" >&2
    exit 2
    ;;
esac
