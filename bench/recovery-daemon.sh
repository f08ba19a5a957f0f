#!/usr/bin/env bash
# The cost of connection state recovery on fan-out (issue 9): deliveries/s of `sioc bench
# fanout` (one room, M members, 100-byte messages, W publishes in flight) against `sioc serve`
# with recovery off, with the in-memory store and with the embedded store (SQLite, WAL,
# synchronous=NORMAL, appends batched per transaction on a worker thread), and against Node's
# socket.io 4.8 without and with its (in-memory) recovery, in the same run.
#
#   bench/recovery-daemon.sh           full: 1000 members, 10 s per variant (about 2 minutes)
#   bench/recovery-daemon.sh --quick   seconds and small numbers: checks the harness (CI)
#
# Each server runs alone on core 0 (taskset -c 0), the generator on core 1; servers listen on
# 127.0.0.1 on a port of their choosing and are stopped by this script whatever happens.
# Environment: SIOC=a built sioc (default build/sioc, built if missing), BENCH_RESULTS=directory
# (default bench/results/recovery-<mode>). Writes summary.md there and prints it.
set -euo pipefail

mode=full
case "${1:-}" in
--quick) mode=quick ;;
"") ;;
*) echo "usage: bench/recovery-daemon.sh [--quick]" >&2; exit 2 ;;
esac
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
results="${BENCH_RESULTS:-$root/bench/results/recovery-$mode}"
rm -rf "$results"
mkdir -p "$results"
if [[ $mode == quick ]]; then
    members=100 window=16 duration=1 warmup=0.3
else
    members=1000 window=64 duration=10 warmup=2
fi
sioc="${SIOC:-$root/build/sioc}"
[[ -x $sioc ]] || scripts/build >/dev/null
have_node=0
[[ -d tests/integration/node_modules/socket.io ]] && command -v node >/dev/null && have_node=1

log() { printf '[recovery-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

server_pid=""
stop_server() {
    [[ -n $server_pid ]] || return 0
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}
trap stop_server EXIT

# $1 variant: sioc-off | sioc-memory | sioc-embedded | node-off | node-memory
start_server() {
    local variant=$1 dir="$results/$1"
    mkdir -p "$dir"
    case $variant in
    node-*)
        local flags=()
        [[ $variant == node-memory ]] && flags=(--recovery)
        taskset -c 0 node bench/recovery-node.mjs "${flags[@]}" >"$dir/server.log" 2>&1 &
        ;;
    sioc-*)
        local recovery=false
        [[ $variant == sioc-memory ]] && recovery='{"store": "memory"}'
        [[ $variant == sioc-embedded ]] && recovery='{"store": "embedded"}'
        cat >"$dir/sioc.json" <<JSON
{
  "listen": {"host": "127.0.0.1", "port": 0},
  "store": {"driver": "sqlite", "path": "$dir/sioc-bench.db"},
  "recovery": $recovery,
  "log": {"level": "warn"},
  "channels": {"/": {"driver": "bench", "auth": "none"}}
}
JSON
        (cd "$dir" && exec taskset -c 0 "$sioc" serve --config "$dir/sioc.json" >"$dir/server.log" 2>&1) &
        ;;
    esac
    server_pid=$!
    for _ in $(seq 1 100); do
        port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/server.log" | head -1)
        [[ -n $port ]] && return 0
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    cat "$dir/server.log" >&2
    log "$variant did not start"
    return 1
}

declare -A rate
measure() {
    local variant=$1
    log "$variant: fanout, $members members, window $window, ${duration}s"
    start_server "$variant"
    local args=(bench fanout --rooms 1 --members "$members" --size 100 --window "$window"
        --duration "$duration" --warmup "$warmup" --port "$port" --server-pid "$server_pid"
        --label "$variant" --json "$results/$variant.json")
    echo "taskset -c 1 sioc ${args[*]}" >>"$results/commands.txt"
    timeout 120 taskset -c 1 "$sioc" "${args[@]}" >"$results/$variant.txt" 2>&1 || log "$variant: the generator failed"
    stop_server
    rate[$variant]=$(node -e "try{const r=require(process.argv[1]).results;console.log(Math.round(r.deliveries_per_second??0))}catch{console.log(0)}" \
        "$results/$variant.json" 2>/dev/null || echo 0)
}

variants=(sioc-off sioc-memory sioc-embedded)
((have_node)) && variants+=(node-off node-memory)
for variant in "${variants[@]}"; do measure "$variant"; done

ratio() { node -e "const [a,b]=process.argv.slice(1).map(Number);console.log(b>0?(a/b).toFixed(2):'n/a')" "$1" "$2"; }
{
    echo "## Fan-out with connection state recovery ($mode: $members members, window $window, ${duration}s, $(date -u +%Y-%m-%dT%H:%MZ))"
    echo
    echo "| server | recovery | deliveries/s | vs. its recovery off |"
    echo "| --- | --- | ---: | ---: |"
    for variant in "${variants[@]}"; do
        base="${variant%%-*}-off"
        echo "| ${variant%%-*} | ${variant#*-} | ${rate[$variant]} | $(ratio "${rate[$variant]}" "${rate[$base]}") |"
    done
    if ((have_node)); then
        echo
        echo "sioc embedded / Node in-memory: $(ratio "${rate[sioc-embedded]}" "${rate[node-memory]}");" \
            "sioc memory / Node in-memory: $(ratio "${rate[sioc-memory]}" "${rate[node-memory]}")"
    fi
} | tee "$results/summary.md"
for variant in "${variants[@]}"; do
    [[ ${rate[$variant]} -gt 0 ]] || { log "$variant measured nothing"; exit 1; }
done
