#!/usr/bin/env bash
# The profiles behind the analysis in docs/benchmarks.md (bench/analysis.md), for the targets
# the benchmark did not reach. Each starts `sioc serve --config bench/sioc-bench.json` (port
# 3900, or PROFILE_PORT) on core 0, loads it from core 1 with `sioc bench`, and writes under bench/results/profile/:
#   echo.txt    perf (cpu-clock, call graphs) of the server during closed-loop echo
#   idle.txt    valgrind massif of the server's heap with 2,000 idle clients, by allocation site
#   chat.txt    fsync durations of the store (strace) during the 10,000-user chat
#   instr.txt   user-space instructions per echo round trip (valgrind callgrind), by object and
#               function: unlike the shares of echo.txt they do not move with the host's load,
#               so they compare two binaries on a shared machine (not run by default)
# usage: bench/profile.sh [echo|idle|chat|instr]...   (the first three by default; about 2 minutes)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
sioc="${SIOC:-$root/build/bench/sioc}"
out="$root/bench/results/profile"
work="$out/work"
mkdir -p "$out" "$work"
secret="sioc-bench-secret-0123456789"
port="${PROFILE_PORT:-3900}"
server_pid=""

stop_server() {
    [[ -n "$server_pid" ]] || return 0
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

# Starts the server (optionally under a wrapper command: $@) in a fresh directory.
start_server() {
    rm -rf "$work" && mkdir -p "$work"
    sed "s/\"port\": 3000/\"port\": $port/" bench/sioc-bench.json >"$work/config.json"
    (cd "$work" && exec taskset -c 0 "$@" "$sioc" serve --config "$work/config.json" \
        >"$work/server.log" 2>&1) &
    server_pid=$!
    for _ in $(seq 1 100); do
        grep -q "listening on" "$work/server.log" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "the server did not start" >&2
    return 1
}

bench() { taskset -c 1 "$sioc" bench "$@" --port "$port" --server-pid "$server_pid"; }

profile_echo() {
    start_server
    (sleep 3 && perf record -e cpu-clock -g -p "$server_pid" -o "$work/echo.perf" -- sleep 5 \
        >/dev/null 2>&1) &
    local recorder=$!
    bench echo --clients 100 --duration 8 --warmup 1 | tee "$out/echo.txt"
    wait "$recorder"
    {
        echo "== by object"
        perf report -i "$work/echo.perf" --no-children --sort dso --stdio -g none 2>/dev/null |
            grep -E '^ +[0-9]'
        echo "== call chains over 5% (children included)"
        perf report -i "$work/echo.perf" --children --percent-limit 5 --stdio -g none 2>/dev/null |
            grep -E '^ +[0-9]'
        echo "== functions over 0.8% (self)"
        perf report -i "$work/echo.perf" --no-children --percent-limit 0.8 --stdio -g none \
            2>/dev/null | grep -E '^ +[0-9]'
    } >>"$out/echo.txt"
    stop_server
}

# Paced (the server under callgrind is some 50 times slower): 4 s of steady echo, counted from
# a zeroed counter to a dump; sioc__sio_decoder_add_text runs once per round trip.
profile_instr() {
    start_server valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out"
    (sleep 5 && callgrind_control -z "$server_pid" && sleep 4 &&
        callgrind_control -d window "$server_pid") >/dev/null 2>&1 &
    local counter=$!
    bench echo --clients 100 --duration 10 --warmup 2 --rate 1000 --timeout 60 | tee "$out/instr.txt"
    wait "$counter"
    stop_server
    python3 bench/callgrind_rt.py "$(ls "$work"/callgrind.out.[0-9]* | head -1)" \
        sioc__sio_decoder_add_text >>"$out/instr.txt"
}

# IDLE_ARGS: more options for the generator, e.g. "--namespace /chat --jwt-secret $secret" (the
# daemon's chat channel with a JWT per client). The peak of a /chat run is its presence ramp,
# not its idle state: with IDLE_SNAPSHOT=1 the clients are held and, once the server has been
# idle for 5 s (at most 600 s), a detailed snapshot of that moment is taken as well (vgdb).
profile_idle() {
    local args=()
    read -r -a args <<<"${IDLE_ARGS:-}"
    start_server valgrind --tool=massif --depth=12 --threshold=0.5 \
        --massif-out-file="$work/massif.out"
    if [[ ${IDLE_SNAPSHOT:-0} == 1 ]]; then
        idle_snapshot "${args[@]}"
    else
        bench idle --clients 2000 --duration 3 --concurrency 50 --timeout 120 "${args[@]}" |
            tee "$out/idle.txt"
    fi
    stop_server
    ms_print "$work/massif.out" >"$work/massif.txt"
    python3 bench/massif_sites.py "$work/massif.txt" 2000 >>"$out/idle.txt"
    if [[ -f $work/massif-idle.out ]]; then
        ms_print "$work/massif-idle.out" >"$work/massif-idle.txt"
        echo "== once idle (vgdb detailed_snapshot)" >>"$out/idle.txt"
        python3 bench/massif_sites.py "$work/massif-idle.txt" 2000 >>"$out/idle.txt"
    fi
}

# 2,000 clients held; the snapshot once the server used no more than 3 ticks in each of 5
# seconds in a row.
idle_snapshot() {
    bench idle --hold --clients 2000 --duration 1800 --concurrency 50 --timeout 600 "$@" \
        >"$work/hold.txt" 2>&1 &
    local generator=$! quiet=0 last now
    for _ in $(seq 1 1200); do
        grep -q holding "$work/hold.txt" && break
        kill -0 "$generator" 2>/dev/null || break
        sleep 0.5
    done
    last=$(awk '{print $14 + $15}' "/proc/$server_pid/stat")
    for _ in $(seq 1 600); do
        sleep 1
        now=$(awk '{print $14 + $15}' "/proc/$server_pid/stat")
        if ((now - last <= 3)); then quiet=$((quiet + 1)); else quiet=0; fi
        last=$now
        ((quiet >= 5)) && break
    done
    vgdb --pid="$server_pid" detailed_snapshot "$work/massif-idle.out" >/dev/null
    kill -TERM "$generator" 2>/dev/null || true
    wait "$generator" || true
    tee "$out/idle.txt" <"$work/hold.txt"
}

profile_chat() {
    start_server
    (sleep 16 && timeout 12 strace -f -T -e trace=fsync,fdatasync -p "$server_pid" \
        -o "$work/fsync.txt" 2>/dev/null || true) &
    local tracer=$!
    bench chat --namespace /chat --jwt-secret "$secret" --users 10000 --rooms 1000 --rate 2000 \
        --duration 10 --warmup 2 --timeout 300 | tee "$out/chat.txt"
    wait "$tracer"
    awk -F'<' '/fsync|fdatasync/ {gsub(">", "", $2); print $2 * 1000}' "$work/fsync.txt" |
        sort -n | awk '{v[NR] = $1} END {printf "fsync ms (under strace): n=%d p50=%.3f p90=%.3f p99=%.3f max=%.3f\n", NR, v[int(NR*.5)], v[int(NR*.9)], v[int(NR*.99)], v[NR]}' \
        >>"$out/chat.txt"
    stop_server
}

for what in "${@:-echo idle chat}"; do
    for each in $what; do "profile_$each"; done
done
echo "profiles in $out"
