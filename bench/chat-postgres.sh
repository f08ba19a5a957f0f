#!/usr/bin/env bash
# The chat scenario of bench/run.sh with the stores side by side (issue 10): sioc on SQLite and
# on PostgreSQL, Node's socket.io 4.8 counterpart (bench/node/server.js) on SQLite and on the
# same PostgreSQL (pg from npm). One PostgreSQL 15 with its default durability (fsync on,
# synchronous_commit on; tests/lib/postgres.sh with PG_FSYNC=on), started and removed here.
# Servers on core 0, the generator on core 1, each run from a fresh database; ROUNDS rounds
# alternate the four servers so that a noisy machine hurts them alike. Prints the summary lines
# and the ratios of the medians.
#
#   bench/chat-postgres.sh                 USERS=2000 ROOMS=200 RATE=2000 DURATION=5 ROUNDS=2
#   SIOC=build/sioc USERS=10000 ROOMS=1000 bench/chat-postgres.sh
#   SERVERS="sioc-postgres" bench/chat-postgres.sh   only some of the four (no ratios then)
#   bench/chat-postgres.sh --quick         seconds and small numbers (100 users, 50 messages/s,
#                                          2 s, one round): checks the harness (bench/run.sh
#                                          --quick, which CI runs)
#   BENCH_RESULTS=dir                      also writes the summary to dir/summary.md
#   SERVERS="sioc-postgres-pool1 sioc-postgres-pool2 sioc-postgres-pool4" bench/chat-postgres.sh
#                                          sioc on PostgreSQL with store.poolSize 1, 2, 4 (plain
#                                          sioc-postgres: the daemon's default)
#   PROFILE=1 bench/chat-postgres.sh       after each sioc run, where the time went (docs/store.md,
#                                          "Where the time goes"): the store's own profile (its
#                                          close log) and, on PostgreSQL, pg_stat_statements,
#                                          pg_stat_wal and the backends' wait events sampled
#                                          every 10 ms during the measured window
#   PG_OPTIONS="-c commit_delay=..."       more PostgreSQL settings (tests/lib/postgres.sh)
#   SIOC_BASE=/tmp/base/build/sioc SERVERS="base-sioc-postgres-pool1 sioc-postgres-pool1" ...
#                                          a base-sioc-* server is that sioc-* server run from
#                                          SIOC_BASE: before and after a change, in one run
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
case "${1:-}" in
--quick) USERS=${USERS:-100} ROOMS=${ROOMS:-10} RATE=${RATE:-50} DURATION=${DURATION:-2}
    WARMUP=${WARMUP:-0.5} ROUNDS=${ROUNDS:-1} ;;
"") ;;
*) echo "usage: bench/chat-postgres.sh [--quick]" >&2; exit 2 ;;
esac
users=${USERS:-2000} rooms=${ROOMS:-200} rate=${RATE:-2000} duration=${DURATION:-5}
warmup=${WARMUP:-5} rounds=${ROUNDS:-2}
servers=${SERVERS:-sioc-sqlite sioc-postgres node-sqlite node-postgres}
secret="sioc-bench-secret-0123456789" # bench/sioc-bench.json's auth.jwt.secret
sioc="${SIOC:-$root/build/sioc}"
[[ -x "$sioc" ]] || { echo "chat-postgres.sh: build sioc first (scripts/build) or set SIOC" >&2; exit 2; }
sioc_base="${SIOC_BASE:-}"
if [[ " $servers " == *" base-sioc-"* && ! -x "$sioc_base" ]]; then
    echo "chat-postgres.sh: base-sioc-* servers run SIOC_BASE (another build of sioc): set it" >&2
    exit 2
fi
if [[ ! -d bench/node/node_modules/better-sqlite3 ]]; then
    [[ -d /usr/include/node ]] && export npm_config_nodedir=/usr
    (cd bench/node && npm_config_build_from_source=true npm ci --no-audit --no-fund >/dev/null)
fi
# pg comes from the integration tests' packages, as the redis adapter does (bench/node/server.js).
# A linked node_modules is a shared install: npm ci would empty the directory it points to.
if [[ ! -d tests/integration/node_modules/pg ]]; then
    if [[ -L tests/integration/node_modules ]]; then
        echo "chat-postgres.sh: tests/integration/node_modules (a link) has no pg: install it there" >&2
        exit 2
    fi
    (cd tests/integration && npm ci --no-audit --no-fund >/dev/null)
fi

work="$(mktemp -d /tmp/sioc-chat-pg-XXXXXX)"
chmod 755 "$work" # the server runs as nobody when this runs as root
server_pid=""
stop_server() {
    [[ -n "$server_pid" ]] || return 0
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}
cleanup() {
    stop_server
    tests/lib/postgres.sh stop "$work/pg" || true
    rm -rf "$work"
}
trap cleanup EXIT
profile=${PROFILE:-0}
log_level=warn profile_env=""
if [[ $profile == 1 ]]; then
    log_level=info # the store logs its profile at info, every second here
    profile_env=SIOC_STORE_PROFILE_MS=1000
fi
if [[ $profile == 1 ]]; then
    PG_OPTIONS="-c shared_preload_libraries=pg_stat_statements -c track_wal_io_timing=on ${PG_OPTIONS:-}"
    export PG_OPTIONS
fi
url="$(PG_FSYNC=on tests/lib/postgres.sh start "$work/pg")"
psql -q "$url" -c "CREATE DATABASE node_bench"
[[ $profile == 1 ]] && psql -q "$url" -c "CREATE EXTENSION pg_stat_statements"
node_url="${url%/*}/node_bench"

# Starts $1 (sioc-sqlite, sioc-postgres, node-sqlite, node-postgres) on a fresh database.
start_server() {
    local name=$1 log="$work/$1.log"
    rm -f "$work"/*.db*
    psql -q "$url" -c "DROP SCHEMA IF EXISTS sioc CASCADE" 2>/dev/null
    psql -q "$node_url" -c "DROP TABLE IF EXISTS users, presence, rooms, room_members, messages" 2>/dev/null
    local binary=$sioc
    if [[ $name == base-sioc-* ]]; then
        binary=$sioc_base
        name=${name#base-}
    fi
    case $name in
    sioc-*)
        local store="{\"driver\": \"sqlite\", \"path\": \"$work/sioc.db\"}"
        [[ $name == sioc-postgres* ]] && store="{\"driver\": \"postgres\", \"url\": \"$url\"}"
        [[ $name == sioc-postgres-pool* ]] && store="${store%\}}, \"poolSize\": ${name#sioc-postgres-pool}}"
        local api=""
        if [[ $profile == 1 ]]; then
            api_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
            api="\"api\": {\"listen\": {\"host\": \"127.0.0.1\", \"port\": $api_port}, \"key\": \"bench-api-key-0123456789\"}, "
        fi
        sed "s|\"log\": {|$api\"log\": {|; s|\"store\": {[^}]*}|\"store\": $store|; s/\"port\": 3000/\"port\": 0/; s/\"level\": \"warn\"/\"level\": \"${LOG_LEVEL:-$log_level}\"/" \
            bench/sioc-bench.json >"$work/sioc.json"
        (exec taskset -c 0 env ${profile_env:+"$profile_env"} "$binary" serve --config "$work/sioc.json" >"$log" 2>&1) &
        ;;
    node-*)
        local db=(--db "$work/node.db")
        [[ $name == node-postgres ]] && db=(--pg "$node_url")
        (exec taskset -c 0 node bench/node/server.js --port 0 --secret "$secret" "${db[@]}" \
            >"$log" 2>&1) &
        ;;
    esac
    server_pid=$!
    for _ in $(seq 1 100); do
        port=$({ grep -v "http api" "$log" || true; } | sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' | head -1)
        [[ -n "$port" ]] && return 0
        sleep 0.1
    done
    cat "$log" >&2
    return 1
}

# PROFILE=1: the database's side of one run. Counters are reset before the run; a sampler
# (one backend, bounded to 10 minutes) records every 10 ms what the other backends of the
# database wait on, so that the window the generator measured can be picked out afterwards.
sampler_pid=""
# The disk's flush latency right now (other work on the machine changes it tenfold): 500
# 8 kB writes into the server's own directory, each followed by fdatasync as the WAL's are, and
# their distribution: a commit waits for one, so its tail is the floor of the store's.
disk_probe() {
    python3 - "$work/pg/probe" <<'PY'
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
block, took = b"\0" * 8192, []
try:
    for _ in range(500):
        started = time.perf_counter_ns()
        os.write(fd, block)
        os.fdatasync(fd)
        took.append((time.perf_counter_ns() - started) / 1000)
finally:
    os.close(fd)
    os.unlink(sys.argv[1])
took.sort()
q = lambda f: took[min(len(took) - 1, int(f * len(took)))]
print("disk: an 8 kB write and fdatasync takes mean %.0f, p50 %.0f, p99 %.0f, max %.0f us (500 writes)"
      % (sum(took) / len(took), q(0.5), q(0.99), took[-1]))
PY
}
profile_start() {
    [[ $profile == 1 ]] || return 0
    disk_probe
    psql -X -q "$url" -c "SELECT pg_stat_statements_reset(), pg_stat_reset_shared('wal')" >/dev/null
    psql -X -q "$url" -c "DROP TABLE IF EXISTS bench_waits; CREATE UNLOGGED TABLE bench_waits (at timestamptz, state text, wait text)"
    psql -X -q "$url" -c "
        DO \$\$ BEGIN FOR i IN 1..60000 LOOP
            PERFORM pg_stat_clear_snapshot();
            INSERT INTO bench_waits SELECT clock_timestamp(), state,
                coalesce(wait_event_type || ':' || wait_event, 'CPU')
              FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
                AND backend_type = 'client backend';
            COMMIT;
            PERFORM pg_sleep(0.01);
        END LOOP; END \$\$" >/dev/null 2>&1 &
    sampler_pid=$!
}
profile_report() {
    local name=$1 ended_at=$2
    [[ $profile == 1 ]] || return 0
    if [[ -n "$sampler_pid" ]]; then
        psql -X -q "$url" -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE '%bench_waits%' AND pid <> pg_backend_pid()" >/dev/null
        wait "$sampler_pid" 2>/dev/null || true
        sampler_pid=""
        echo "$name: active backends' wait events in the measured window (samples every 10 ms):"
        psql -X -At -F ' ' "$url" -c "
            SELECT count(*), wait FROM bench_waits
             WHERE state = 'active' AND at BETWEEN to_timestamp($ended_at) - interval '$duration seconds' - interval '1 second'
                                             AND to_timestamp($ended_at) - interval '1 second'
             GROUP BY wait ORDER BY 1 DESC LIMIT 8" | sed 's/^/  /'
        echo "$name: statements (calls, mean ms, total ms); WAL records, writes, syncs, sync ms, ms per sync:"
        psql -X -At -F ' ' "$url" -c "
            SELECT calls, round(mean_exec_time::numeric, 3), round(total_exec_time::numeric, 1),
                   left(regexp_replace(query, '\s+', ' ', 'g'), 60)
              FROM pg_stat_statements WHERE query NOT LIKE '%bench_waits%' AND calls > 100
             ORDER BY total_exec_time DESC LIMIT 6" | sed 's/^/  /'
        psql -X -At -F ' ' "$url" -c "SELECT wal_records, wal_write, wal_sync, round(wal_sync_time::numeric, 1), round((wal_sync_time / nullif(wal_sync, 0))::numeric, 3) FROM pg_stat_wal" | sed 's/^/  wal /'
    fi
}

for round in $(seq 1 "$rounds"); do
    for name in $servers; do
        start_server "$name"
        [[ $name == *sioc-postgres* ]] && profile_start
        SIOC_BENCH_LOOP_PROFILE=$profile taskset -c 1 "$sioc" bench chat --port "$port" --namespace /chat --jwt-secret "$secret" \
            --users "$users" --rooms "$rooms" --rate "$rate" --duration "$duration" \
            --warmup "$warmup" --timeout 300 --server-pid "$server_pid" --label "$name" \
            --json "$work/$name-$round.json" | tail -1 | tee "$work/last.txt"
        ended_at=$(date +%s.%N)
        [[ $name == *sioc-postgres* ]] && profile_report "$name" "$ended_at"
        if [[ $profile == 1 && $name == *sioc-* ]]; then
            python3 -c 'import json, sys; r = json.load(open(sys.argv[1]))["results"]; print("%s: connecting and joining took %.1f s" % (sys.argv[2], r.get("setup_seconds", 0)))' \
                "$work/$name-$round.json" "$name" 2>/dev/null || true
            echo "$name: the server's connection counters (GET /metrics):"
            curl -s "http://127.0.0.1:$api_port/metrics" |
                grep -E '^sioc_(engineio_(connections_(opened|closed)|requests_refused|slow_reader)|socketio_(sockets_(connected|disconnected)|connects_refused))' |
                sed 's/^/  /' || true
        fi
        if grep -q FAILED "$work/last.txt"; then
            kill -0 "$server_pid" 2>/dev/null || echo "$name: the server is gone" >&2
            grep -v " debug " "$work/$name.log" | tail -20 >&2
        fi
        stop_server
        if [[ $profile == 1 && $name == *sioc-* ]]; then
            # The seconds the generator measured: the last $duration before it ended, and up to
            # 5 more (its drain and its report of 10,000 clients take seconds).
            from=$(date -u -d "@$(echo "$ended_at - $duration - 6" | bc)" +%FT%T)
            to=$(date -u -d "@$ended_at" +%FT%T)
            echo "$name: the store's profile, per connection and second of the measured window and a few after:"
            awk -v from="$from" -v to="$to" '$1 >= from && $1 <= to && /store: profile of/' "$work/$name.log" |
                sed 's/.*store: profile of /  /; s/; mean\/p50\/p99\/max in us:/:/'
            echo "$name: the server's loop, held between two polls (daemon/loop_profile.h), per second:"
            awk -v from="$from" -v to="$to" '$1 >= from && $1 <= to && /loop: held/' "$work/$name.log" |
                sed 's/.*loop: held /  /; s/ times between polls; mean\/p50\/p99\/max in us:/ iterations: held/'
            # The whole run, connecting included: how long the loop was held up at once.
            awk '/store: profile of/ { for (i = 1; i < NF; i++) if ($i == "callbacks" || $i == "handback") {
                     split($(i + 1), v, "/"); if (v[4] + 0 > most[$i]) most[$i] = v[4] + 0 } }
                 END { printf "  whole run: longest hand-back %.1f ms, longest run of done callbacks %.1f ms\n",
                       most["handback"] / 1000, most["callbacks"] / 1000 }' "$work/$name.log"
        fi
    done
done

# Median p50/p99 of each server over the rounds, and the ratios node / sioc on each store.
node -e '
  const fs = require("fs"), path = require("path");
  const dir = process.argv[1], rounds = Number(process.argv[2]);
  const median = (xs) => {
    const sorted = [...xs].sort((a, b) => a - b), middle = Math.floor(sorted.length / 2);
    return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
  };
  const stat = {};
  for (const name of process.argv[3].split(/\s+/).filter(Boolean)) {
    const runs = [...Array(rounds).keys()].map((i) => JSON.parse(fs.readFileSync(path.join(dir, `${name}-${i + 1}.json`))));
    const pick = (key) => median(runs.map((r) => r.results.latency[key] / 1000));
    const lost = runs.reduce((sum, r) => sum + r.results.lost + (r.results.sent - r.results.acknowledged), 0);
    stat[name] = { p50: pick("p50_us"), p99: pick("p99_us") };
    console.log(`${name}: median p50 ${stat[name].p50.toFixed(1)} ms, p99 ${stat[name].p99.toFixed(1)} ms, lost or unacknowledged ${lost}`);
  }
  for (const store of ["sqlite", "postgres"]) {
    const s = stat[`sioc-${store}`], n = stat[`node-${store}`];
    if (!s || !n) continue;
    console.log(`${store}: node/sioc p50 ${(n.p50 / s.p50).toFixed(2)}x, p99 ${(n.p99 / s.p99).toFixed(2)}x`);
  }
' "$work" "$rounds" "$servers" | tee "$work/summary.txt"
if [[ -n "${BENCH_RESULTS:-}" ]]; then
    mkdir -p "$BENCH_RESULTS"
    {
        echo "USERS=$users ROOMS=$rooms RATE=$rate DURATION=$duration WARMUP=$warmup ROUNDS=$rounds SERVERS=\"$servers\" bench/chat-postgres.sh"
        echo
        cat "$work/summary.txt"
    } >"$BENCH_RESULTS/summary.md"
    cp "$work"/*.json "$BENCH_RESULTS/"
fi
