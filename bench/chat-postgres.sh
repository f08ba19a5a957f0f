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
if [[ ! -d bench/node/node_modules/better-sqlite3 ]]; then
    [[ -d /usr/include/node ]] && export npm_config_nodedir=/usr
    (cd bench/node && npm_config_build_from_source=true npm ci --no-audit --no-fund >/dev/null)
fi
# pg comes from the integration tests' packages, as the redis adapter does (bench/node/server.js).
[[ -d tests/integration/node_modules/pg ]] || (cd tests/integration && npm ci --no-audit --no-fund >/dev/null)

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
url="$(PG_FSYNC=on tests/lib/postgres.sh start "$work/pg")"
psql -q "$url" -c "CREATE DATABASE node_bench"
node_url="${url%/*}/node_bench"

# Starts $1 (sioc-sqlite, sioc-postgres, node-sqlite, node-postgres) on a fresh database.
start_server() {
    local name=$1 log="$work/$1.log"
    rm -f "$work"/*.db*
    psql -q "$url" -c "DROP SCHEMA IF EXISTS sioc CASCADE" 2>/dev/null
    psql -q "$node_url" -c "DROP TABLE IF EXISTS users, presence, rooms, room_members, messages" 2>/dev/null
    case $name in
    sioc-*)
        local store="{\"driver\": \"sqlite\", \"path\": \"$work/sioc.db\"}"
        [[ $name == sioc-postgres* ]] && store="{\"driver\": \"postgres\", \"url\": \"$url\"}"
        [[ $name == sioc-postgres-pool* ]] && store="${store%\}}, \"poolSize\": ${name#sioc-postgres-pool}}"
        sed "s|\"store\": {[^}]*}|\"store\": $store|; s/\"port\": 3000/\"port\": 0/; s/\"level\": \"warn\"/\"level\": \"${LOG_LEVEL:-warn}\"/" \
            bench/sioc-bench.json >"$work/sioc.json"
        (exec taskset -c 0 "$sioc" serve --config "$work/sioc.json" >"$log" 2>&1) &
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
        port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -1)
        [[ -n "$port" ]] && return 0
        sleep 0.1
    done
    cat "$log" >&2
    return 1
}

for round in $(seq 1 "$rounds"); do
    for name in $servers; do
        start_server "$name"
        taskset -c 1 "$sioc" bench chat --port "$port" --namespace /chat --jwt-secret "$secret" \
            --users "$users" --rooms "$rooms" --rate "$rate" --duration "$duration" \
            --warmup "$warmup" --timeout 300 --server-pid "$server_pid" --label "$name" \
            --json "$work/$name-$round.json" | tail -1 | tee "$work/last.txt"
        if grep -q FAILED "$work/last.txt"; then
            kill -0 "$server_pid" 2>/dev/null || echo "$name: the server is gone" >&2
            grep -v " debug " "$work/$name.log" | tail -20 >&2
        fi
        stop_server
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
