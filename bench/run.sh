#!/usr/bin/env bash
# The side-by-side benchmark of issue 5: sioc against Node's socket.io 4.8, every scenario of
# `sioc bench`, one run.
#
#   bench/run.sh            full mode: the figures of docs/benchmarks.md and docs/benchmarks.png
#                           (about 25 minutes)
#   bench/run.sh --quick    seconds and small numbers: only checks that the harness works end to
#                           end (CI); writes its report under bench/results/quick/ instead
#   bench/run.sh --memory   only the memory scenarios at full size (idle WebSocket clients at
#                           10,000 and 19,000, polling, the chat channel with a JWT per client,
#                           the fan-out and chat scenarios for the memory under traffic, both
#                           servers): results in bench/results/memory/, and the memory section
#                           of docs/benchmarks.md rewritten in place (about 15 minutes)
#
# Each server runs alone on core 0 (taskset -c 0), started fresh for every scenario; the
# generator runs on core 1. Servers listen on 127.0.0.1 with a port of their choosing; every
# process is bounded in time and stopped by this script, whatever happens.
#
# Environment: SIOC=path of a built sioc binary (default: builds build/bench/sioc),
# BENCH_RESULTS=directory for the raw results (default bench/results/<mode>),
# BENCH_ONLY="sioc:echo node:connect ..." measures only those again, keeps the other results of
# the previous run of the same mode, and rewrites the report ("compression" in the list runs
# bench/compression.mjs again; any other BENCH_ONLY skips it; "sioc:idle" runs every memory
# scenario of that server; "sioc:idle_echo" only sioc-echo's WebSocket clients; "sioc:idle_chat" only /chat, with one JWT and a JWT per client, at
# BENCH_CHAT_SIZES or 10,000 and 19,000). SIOC_ECHO: the sioc-echo of the idle memory scenarios and of
# bench/compression.mjs (default: next to SIOC, else built in build/bench). BENCH_MALLOC_STATS=1:
# the idle rows also read the server's heap in use (glibc malloc_stats() through gdb).
set -euo pipefail

mode=full
case "${1:-}" in
--quick) mode=quick ;;
--memory) mode=memory ;;
"") ;;
*) echo "usage: bench/run.sh [--quick|--memory]" >&2; exit 2 ;;
esac

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
results="${BENCH_RESULTS:-$root/bench/results/$mode}"
work="$results/work"
secret="sioc-bench-secret-0123456789" # bench/sioc-bench.json's auth.jwt.secret
[[ -n "${BENCH_ONLY:-}" ]] || rm -rf "$results"
mkdir -p "$results" "$work"
commands="$results/commands.txt"
[[ -n "${BENCH_ONLY:-}" ]] || : >"$commands"

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---- tools ----------------------------------------------------------------------------------

install_tools() {
    local missing=()
    command -v gnuplot >/dev/null 2>&1 || missing+=(gnuplot-nox)
    command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
    command -v node >/dev/null 2>&1 || missing+=(nodejs npm)
    if ((${#missing[@]} > 0)); then
        log "installing ${missing[*]}"
        local sudo_cmd=()
        [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
        "${sudo_cmd[@]}" apt-get update -qq
        DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq \
            --no-install-recommends "${missing[@]}" >/dev/null
    fi
    # Not for a BENCH_ONLY of sioc's memory scenarios alone (nothing of them needs Node's packages).
    local only=" ${BENCH_ONLY:-} "
    if [[ -n "${BENCH_ONLY:-}" && $only != *" node:"* && $only != *" compression "* &&
        $only != *":chat "* && $only != *":chat_target "* ]]; then
        return 0
    fi
    if [[ ! -d bench/node/node_modules/socket.io || ! -d bench/node/node_modules/better-sqlite3 ]]; then
        log "installing the Node server's packages (better-sqlite3 builds from source: ~2 min)"
        # From source: nothing but the npm registry is reached (no prebuilt binary download).
        [[ -d /usr/include/node ]] && export npm_config_nodedir=/usr
        (cd bench/node && npm_config_build_from_source=true npm ci --no-audit --no-fund >/dev/null)
    fi
}

build_sioc() {
    if [[ -n "${SIOC:-}" ]]; then
        sioc="$SIOC"
        return
    fi
    log "building sioc (build/bench, RelWithDebInfo)"
    cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSIOC_TESTS=OFF >/dev/null
    cmake --build build/bench -j"$(nproc)" --target sioc >/dev/null
    sioc="$root/build/bench/sioc"
}

# The library's own server (examples/sioc_echo.c): the idle memory of libsioc without the
# daemon's drivers. SIOC_ECHO, else next to SIOC, else built in build/bench.
build_sioc_echo() {
    sioc_echo="${SIOC_ECHO:-$(dirname "$sioc")/sioc-echo}"
    if [[ ! -x "$sioc_echo" ]]; then
        cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSIOC_TESTS=OFF >/dev/null
        cmake --build build/bench -j"$(nproc)" --target sioc-echo >/dev/null
        sioc_echo="$root/build/bench/sioc-echo"
    fi
}

# ---- servers ---------------------------------------------------------------------------------

server_pid=""
server_port=""
other_pids=() # the cluster scenario's second node and its redis-server

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
stop_others() {
    local pid
    for pid in "${other_pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    other_pids=()
}
held_pids=() # hold_idle's generators, which hold their clients until a signal
stop_held() {
    local pid
    for pid in "${held_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    held_pids=()
}
trap 'stop_held; stop_server; stop_others' EXIT

# Starts server $1 (node or sioc) on core 0 with a fresh database; sets server_pid and
# server_port from its "listening on 127.0.0.1:PORT" line. $2: a redis-server port to join a
# cluster on (the cluster scenario), $3: a suffix for its work directory (the second node).
start_server() {
    local name=$1 redis_port=${2:-} dir="$work/$1${3:-}"
    rm -rf "$dir"
    mkdir -p "$dir"
    : >"$dir/server.log"
    if [[ $name == sioc-echo ]]; then
        (cd "$dir" && exec taskset -c 0 "$sioc_echo" --host 127.0.0.1 --port 0 \
            >"$dir/server.log" 2>&1) &
    elif [[ $name == node ]]; then
        local cluster=()
        [[ -z $redis_port ]] || cluster=(--redis "redis://127.0.0.1:$redis_port")
        (cd "$dir" && exec taskset -c 0 node "$root/bench/node/server.js" --port 0 \
            --secret "$secret" --db "$dir/node-bench.db" "${cluster[@]}" >"$dir/server.log" 2>&1) &
    else
        # The committed configuration, with port 0 so that a busy port 3000 does not matter.
        sed 's/"port": 3000/"port": 0/' bench/sioc-bench.json >"$dir/sioc-bench.json"
        if [[ -n $redis_port ]]; then
            sed -i "1a\\  \"cluster\": {\"redis\": {\"url\": \"redis://127.0.0.1:$redis_port\"}}," \
                "$dir/sioc-bench.json"
        fi
        (cd "$dir" && exec taskset -c 0 "$sioc" serve --config "$dir/sioc-bench.json" \
            >"$dir/server.log" 2>&1) &
    fi
    server_pid=$!
    for _ in $(seq 1 100); do
        server_port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/server.log" | head -1)
        [[ -n "$server_port" ]] && return 0
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    cat "$dir/server.log" >&2
    log "$name did not start"
    return 1
}

# ---- scenarios -------------------------------------------------------------------------------

# The chat comparison runs at chat_users: at 10,000 users, the seeds' presence notice to every
# other socket (socket.broadcast.emit('user:status')) makes 50 million deliveries while users
# connect, which Node did not get through in 5 minutes; sioc alone then runs the target's
# 10,000 users (chat-10k).
if [[ $mode == quick ]]; then
    duration=2 warmup=0.5 echo_clients=20 fanout_members=100 fanout_window=16
    connect_in_flight=20 chat_users=100 chat_rooms=10 chat_rate=50 chat_target_users=0
else
    duration=10 warmup=2 echo_clients=100 fanout_members=1000 fanout_window=64
    connect_in_flight=64 chat_users=2000 chat_rooms=200 chat_rate=2000 chat_target_users=10000
fi
# The memory scenarios (issue 12): idle WebSocket clients at two sizes, idle polling clients,
# and the chat channel with a JWT per client: at chat_users for both servers (each connection
# tells every other socket that its user is online: Node takes minutes past a few thousand),
# then sioc alone at the two sizes. Two generator processes side by side in every one of them
# (the machine allows 20,000 open files per process, so 19,000 clients need two), holding
# their clients until the server is idle (see hold_idle), at most settle_bound s.
# BENCH_CHAT_SIZES="10000" overrides the /chat sizes (the idle_chat scenario, issue 12 steps).
if [[ $mode == quick ]]; then
    idle_sizes=(200 400) polling_clients=200 chat_idle_sizes=() settle_bound=20 hold_seconds=0.5
else
    idle_sizes=(10000 19000) polling_clients=10000 chat_idle_sizes=(10000 19000)
    settle_bound=900 hold_seconds=3
fi
[[ -z "${BENCH_CHAT_SIZES:-}" ]] || read -r -a chat_idle_sizes <<<"$BENCH_CHAT_SIZES"
# Idle: at most settle_percent % of a core in each of settle_quiet seconds in a row. 20 % for
# 2 s fired while /chat's presence notices (a JWT per client) were still going out and the
# store's calls were in flight: RSS was read mid-drain. The polling scenario passes its own
# looser rule (its heartbeat is work).
settle_percent=3 settle_quiet=5
generators=2

# Runs `sioc bench` on core 1 against the current server; $1 = server, $2 = result name.
generate() {
    local server=$1 name=$2
    shift 2
    local args=(bench "$@" --port "$server_port" --server-pid "$server_pid" --label "$server"
        --json "$results/$server-$name.json")
    echo "taskset -c 1 sioc ${args[*]}" >>"$commands"
    taskset -c 1 "$sioc" "${args[@]}" | tee -a "$results/summary.txt" || {
        log "$server $name: the generator reported a failure (kept in the JSON)"
        return 0
    }
}

json_field() { node -e "const r=require(process.argv[1]);console.log(eval('r.'+process.argv[2]))" "$1" "$2"; }

token_for() {
    "$sioc" token --secret "$secret" --subject "$1" 2>/dev/null ||
        node -e "console.log(require('$root/bench/node/node_modules/jsonwebtoken').sign({sub:process.argv[1],id:process.argv[1]},process.argv[2],{expiresIn:3600}))" "$1" "$secret"
}

# Messages stored by the server that just stopped (its database), added to result $2.
record_stored() {
    local server=$1 name=$2 db
    db=$([[ $server == node ]] && echo "$work/node/node-bench.db" || echo "$work/sioc/sioc-bench.db")
    node -e "
      const Database = require('$root/bench/node/node_modules/better-sqlite3');
      const fs = require('fs'); const file = process.argv[1];
      const count = new Database(process.argv[2], {readonly: true})
        .prepare('SELECT count(*) AS n FROM messages').get().n;
      const result = JSON.parse(fs.readFileSync(file)); result.results.stored = count;
      fs.writeFileSync(file, JSON.stringify(result, null, 2));
      console.log('stored messages: ' + count);" "$results/$server-$name.json" "$db"
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo -1; }
# BENCH_MALLOC_STATS=1: glibc's malloc_stats() in server $1 (through gdb; it prints to the
# server's stderr, $2), and the bytes in use of its "Total" part; -1 without gdb. RSS holds the
# free chunks between live ones too: the two apart tell the ramp's leftovers from live state.
heap_in_use() {
    [[ ${BENCH_MALLOC_STATS:-0} == 1 ]] && command -v gdb >/dev/null 2>&1 || { echo -1; return; }
    timeout 60 gdb -p "$1" -batch -ex 'call (void) malloc_stats()' >/dev/null 2>&1 || true
    awk '/^Total \(incl. mmap\):/ {total = 1; next}
         total && /in use bytes/ {value = $NF; total = 0}
         END {print value == "" ? -1 : value}' "$2"
}
# utime + stime in ticks (the command names here have no spaces: field 14 and 15).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# Holds $3 idle clients on a fresh server $1 (node, sioc-echo or sioc) with $generators
# `sioc bench idle --hold` processes side by side, and writes $results/<label>-$2.json: the
# server's VmRSS before the first connection, its peak, and after every client is connected
# and the server is idle (settle_percent and settle_quiet, then hold_seconds more), per client.
# The other arguments go to every generator (--transport polling, --namespace /chat ...).
hold_idle() {
    local server=$1 name=$2 clients=$3 label
    shift 3
    label=$([[ $server == node ]] && echo node || echo sioc)
    log "$label ($server): $name: $clients idle clients from $generators generators"
    start_server "$server"
    sleep 0.5 # the server's own start-up allocations
    local before peak rss began ramped="" settled=0 per=$(((clients + generators - 1) / generators))
    before=$(rss_kib "$server_pid") peak=$before
    local heap_before heap_after
    heap_before=$(heap_in_use "$server_pid" "$work/$server/server.log")
    began=$(date +%s.%N)
    local pids=() g first count
    for ((g = 0; g < generators; g++)); do
        first=$((g * per)) count=$((clients - g * per < per ? clients - g * per : per))
        local args=(bench idle --hold --clients "$count" --first-index "$first" --duration 1800
            --timeout 900 --port "$server_port" --server-pid "$server_pid" --label "$label"
            --json "$work/$label-$name-$g.json" "$@")
        echo "taskset -c 1 sioc ${args[*]} &" >>"$commands"
        rm -f "$work/$label-$name-$g.json" # a generator that writes nothing is not read as held
        taskset -c 1 "$sioc" "${args[@]}" >"$work/$label-$name-$g.out" 2>&1 &
        pids+=($!)
    done
    held_pids=("${pids[@]}")
    # Every generator holding (or one gone), within the generators' own --timeout.
    for _ in $(seq 1 4500); do
        local holding=0 alive=0
        for ((g = 0; g < generators; g++)); do
            grep -q "holding" "$work/$label-$name-$g.out" 2>/dev/null && holding=$((holding + 1))
            kill -0 "${pids[g]}" 2>/dev/null && alive=$((alive + 1))
        done
        rss=$(rss_kib "$server_pid") && ((rss > peak)) && peak=$rss
        ((holding == generators || alive < generators)) && break
        sleep 0.2
    done
    ((holding == generators)) && ramped=$(date +%s.%N)
    # Settled: settle_quiet seconds in a row at most settle_percent ticks each (100 ticks a
    # second: a percent of a core), at most settle_bound seconds. The presence notices of
    # /chat keep a server at 100% until they are out, and its store calls after them.
    if [[ -n $ramped ]]; then
        local last now quiet=0 ticks_per_s
        ticks_per_s=$(getconf CLK_TCK)
        last=$(cpu_ticks "$server_pid")
        for _ in $(seq 1 "$settle_bound"); do
            sleep 1
            now=$(cpu_ticks "$server_pid")
            rss=$(rss_kib "$server_pid") && ((rss > peak)) && peak=$rss
            if (((now - last) * 100 <= settle_percent * ticks_per_s)); then
                quiet=$((quiet + 1))
            else
                quiet=0
            fi
            ((quiet >= settle_quiet)) && settled=1 && break
            last=$now
        done
        sleep "$hold_seconds"
    fi
    local after settled_at
    after=$(rss_kib "$server_pid") settled_at=$(date +%s.%N)
    ((after > peak)) && peak=$after
    heap_after=$(heap_in_use "$server_pid" "$work/$server/server.log")
    local rcs=()
    for ((g = 0; g < generators; g++)); do
        kill -TERM "${pids[g]}" 2>/dev/null || true
        local rc=0
        wait "${pids[g]}" || rc=$?
        rcs+=("$rc")
        sed 's/^/  /' "$work/$label-$name-$g.out" >>"$results/summary.txt"
    done
    held_pids=()
    stop_server
    # This run's generators only: a glob of "$name-*" also took the files of the scenarios
    # whose names start with this one's (idle-max, idle-chat-1 for idle) when a BENCH_ONLY run
    # found them in the work directory (a run of 10,000 read "49000 of 10000 clients held").
    local outputs=()
    for ((g = 0; g < generators; g++)); do outputs+=("$work/$label-$name-$g.json"); done
    node bench/hold-result.js --out "$results/$label-$name.json" --server "$server" \
        --label "$label" --clients "$clients" --before "$before" --peak "$peak" --after "$after" \
        --began "$began" --ramped "${ramped:-0}" --settled-at "$settled_at" --settled "$settled" \
        --heap-before "$heap_before" --heap-after "$heap_after" \
        --exit-codes "${rcs[*]}" --args "$*" "${outputs[@]}" | tee -a "$results/summary.txt"
}

measure_idle() {
    local server=$1 size
    [[ $server == sioc ]] && server=sioc-echo
    hold_idle "$server" idle "${idle_sizes[0]}"
    hold_idle "$server" idle-max "${idle_sizes[1]}"
    # Not idle: the heartbeat of 10,000 polling clients (a pong POST and a new GET every 25 s
    # each) keeps Node at about 13%.
    settle_percent=20 settle_quiet=2 hold_idle "$server" idle-polling "$polling_clients" \
        --transport polling
    # 50 connection attempts in flight per generator on /chat, not 200: each connection makes
    # a notice to every other socket, and at 19,000 clients 400 handshakes queued behind that
    # work outlived the server's own timeouts (it reset them) on this shared machine.
    local chat=(--namespace /chat --jwt-secret "$secret" --concurrency 50)
    hold_idle "$1" idle-chat "$chat_users" "${chat[@]}"
    if [[ $1 == sioc ]]; then
        local i=0
        for size in "${chat_idle_sizes[@]}"; do
            hold_idle sioc "idle-chat-$((++i))" "$size" "${chat[@]}"
        done
    fi
}

# sioc-echo's idle WebSocket clients alone at both sizes (BENCH_ONLY="sioc:idle_echo"; issue
# 12's library steps).
measure_idle_echo() {
    hold_idle sioc-echo idle "${idle_sizes[0]}"
    hold_idle sioc-echo idle-max "${idle_sizes[1]}"
}

# /chat alone (BENCH_ONLY="sioc:idle_chat"; issue 12's daemon steps): one JWT for every client
# (idle-chat-token-N: one user, one room, one presence entry) and a JWT per client
# (idle-chat-N, the rows of the report) at each of chat_idle_sizes.
measure_idle_chat() {
    local size i=0 token
    token=$(token_for bench-idle-chat)
    local chat=(--namespace /chat --concurrency 50)
    for size in "${chat_idle_sizes[@]}"; do
        hold_idle "$1" "idle-chat-token-$((++i))" "$size" "${chat[@]}" --token "$token"
        hold_idle "$1" "idle-chat-$i" "$size" "${chat[@]}" --jwt-secret "$secret"
    done
}

measure_echo() {
    local max
    start_server "$1"
    generate "$1" echo echo --clients "$echo_clients" --duration "$duration" --warmup "$warmup"
    max=$(json_field "$results/$1-echo.json" results.round_trips_per_second 2>/dev/null || echo 0)
    generate "$1" echo-half echo --clients "$echo_clients" --duration "$duration" \
        --warmup "$warmup" --rate "$(node -e "console.log(Math.max(1, Math.round($max / 2)))")"
    stop_server
}

measure_fanout() {
    start_server "$1"
    generate "$1" fanout fanout --rooms 1 --members "$fanout_members" --size 100 \
        --window "$fanout_window" --duration "$duration" --warmup "$warmup"
    stop_server
}

# A redis-server on a free loopback port for the cluster scenario (no persistence); sets
# redis_port and adds it to other_pids.
start_redis() {
    redis_port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
    redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
        >"$work/redis.log" 2>&1 &
    other_pids+=($!)
    for _ in $(seq 1 50); do
        redis-cli -p "$redis_port" ping >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    log "redis-server did not start"
    return 1
}

# Two nodes of server $1 on one redis-server; the room's odd members on the second node, the
# publisher on the first: half of the deliveries cross Redis.
measure_cluster() {
    local first_pid first_port
    start_redis
    start_server "$1" "$redis_port" -a
    first_pid=$server_pid first_port=$server_port
    start_server "$1" "$redis_port" -b
    other_pids+=("$server_pid")
    local second_port=$server_port
    server_pid=$first_pid server_port=$first_port
    sleep 0.5 # both nodes subscribed
    generate "$1" cluster cluster --rooms 1 --members "$fanout_members" --size 100 \
        --window "$fanout_window" --duration "$duration" --warmup "$warmup" \
        --second-port "$second_port"
    stop_server
    stop_others
}

measure_connect() {
    local token
    token=$(token_for bench-connect)
    start_server "$1"
    generate "$1" connect connect --namespace /auth --token "$token" \
        --clients "$connect_in_flight" --duration "$duration" --warmup "$warmup"
    generate "$1" connect-polling connect --namespace /auth --token "$token" \
        --transport polling --clients "$connect_in_flight" --duration "$duration" --warmup "$warmup"
    stop_server
}

measure_chat() {
    run_chat "$1" chat "$chat_users" "$((chat_users / 10))"
}

measure_chat_target() {
    run_chat "$1" chat-10k "$chat_target_users" "$((chat_target_users / 10))"
}

# The largest hypervisor steal (percent of a core) during the windows of results $2... of $1.
steal_of() {
    local server=$1
    shift
    node -e "
      let most = 0;
      for (const name of process.argv.slice(2)) {
        try { most = Math.max(most, require(process.argv[1] + '-' + name + '.json').steal_percent || 0); }
        catch { }
      }
      console.log(Math.round(most));" "$results/$server" "$@"
}

# Measures $2 (idle, echo, ...) on server $1. In full mode, a measurement during which the
# hypervisor took more than 10% of a core is thrown away and taken again once the machine is
# quiet, at most twice: steal stops a core for milliseconds, which shows in every latency tail.
measure() {
    local server=$1 what=$2 steal note=""
    shift 2
    for attempt in 1 2 3; do
        ((attempt == 1)) || note=" (attempt $attempt)"
        log "$server: $what$note"
        "measure_${what//-/_}" "$server"
        [[ $mode == full ]] || return 0
        steal=$(steal_of "$server" "$@")
        ((steal <= 10)) && return 0
        log "$server: $what: hypervisor steal $steal% during the measurement"
        ((attempt < 3)) && wait_quiet 120
    done
    log "$server: $what: kept with steal (see the load table of the report)"
}

# The echo profile (issue 12): perf of the server's samples by object (kernel, the server's
# binary, libc, jansson, libuv...) during closed-loop echo, in a run of its own so that perf
# does not touch the echo figures; perf record as bench/profile.sh echo does, without call
# graphs. Full mode only, and only where perf may record (perf_event_paranoid, a container).
measure_profile() {
    local server=$1 recorder
    if ! perf record -e cpu-clock -o /dev/null -- true >/dev/null 2>&1; then
        log "$server: profile: perf cannot record here: no echo profile"
        return 0
    fi
    start_server "$server"
    (sleep 2 && exec perf record -e cpu-clock -p "$server_pid" -o "$work/$server-echo.perf" \
        -- sleep 5 >/dev/null 2>&1) &
    recorder=$!
    echo "perf record -e cpu-clock -p SERVER_PID -- sleep 5 (2 s into the run below); perf report --no-children --sort dso" >>"$commands"
    generate "$server" profile echo --clients "$echo_clients" --duration 8 --warmup 1
    wait "$recorder" || log "$server: profile: perf record failed"
    perf report -i "$work/$server-echo.perf" --no-children --sort dso --stdio -q 2>/dev/null \
        >"$results/$server-profile-dso.txt" || true
    stop_server
}

run_scenarios() {
    local server=$1
    measure "$server" idle idle idle-max idle-polling idle-chat idle-chat-1 idle-chat-2
    measure "$server" echo echo echo-half
    [[ $mode != full ]] || measure "$server" profile profile
    measure "$server" fanout fanout
    measure "$server" cluster cluster
    measure "$server" connect connect connect-polling
    measure "$server" chat chat
    if [[ $server == sioc && $chat_target_users -gt 0 ]]; then
        measure "$server" chat_target chat-10k
    fi
}

# $1 server, $2 result name, $3 users, $4 rooms (10 users each, as the target has).
run_chat() {
    log "$1: $2: $3 users, $4 rooms, $chat_rate messages/s"
    start_server "$1"
    generate "$1" "$2" chat --namespace /chat --jwt-secret "$secret" --users "$3" --rooms "$4" \
        --rate "$chat_rate" --duration "$duration" --warmup "$warmup" --timeout 300
    stop_server
    record_stored "$1" "$2" || log "$1: cannot count the stored messages"
}

# Other processes on this machine skew every figure: in full mode, wait (at most $1 seconds)
# until the machine is quiet. The report shows what other processes took during each run.
wait_quiet() {
    local busy
    for _ in $(seq 1 $(($1 / 10))); do
        # user, nice, system, irq, softirq and steal (the hypervisor running someone else).
        busy=$(awk 'NR==1{print $2+$3+$4+$7+$8+$9}' /proc/stat)
        sleep 2
        busy=$(($(awk 'NR==1{print $2+$3+$4+$7+$8+$9}' /proc/stat) - busy))
        # ticks over 2 s: 100 ticks per second per core; quiet is under 20% of one core.
        if ((busy < 40)); then
            return 0
        fi
        log "the machine is busy ($((busy / 2))% of a core taken by other processes or the hypervisor): waiting"
        sleep 8
    done
    log "the machine stayed busy: measuring anyway (see the load table of the report)"
}

# ---- the run ----------------------------------------------------------------------------------

install_tools
build_sioc
build_sioc_echo
log "results in $results"
[[ $mode == quick ]] || wait_quiet "$([[ $mode == full ]] && echo 300 || echo 60)"
started=$(date +%s)
if [[ $mode == memory && -z "${BENCH_ONLY:-}" ]]; then
    for server in node sioc; do
        measure "$server" idle idle idle-max idle-polling idle-chat idle-chat-1 idle-chat-2
        measure "$server" fanout fanout # the memory under traffic
        measure "$server" chat chat
    done
elif [[ -n "${BENCH_ONLY:-}" ]]; then
    for item in $BENCH_ONLY; do
        [[ $item != compression ]] || continue
        server=${item%%:*} what=${item#*:}
        case $what in
        echo) measure "$server" echo echo echo-half ;;
        connect) measure "$server" connect connect connect-polling ;;
        chat_target) measure "$server" chat_target chat-10k ;;
        idle) measure "$server" idle idle idle-max idle-polling idle-chat idle-chat-1 idle-chat-2 ;;
        idle_chat) measure "$server" idle_chat idle-chat-token-1 idle-chat-1 idle-chat-token-2 idle-chat-2 ;;
        idle_echo) measure "$server" idle_echo idle idle-max ;;
        *) measure "$server" "$what" "$what" ;;
        esac
    done
else
    run_scenarios node
    run_scenarios sioc
fi
log "measured in $(($(date +%s) - started)) s; writing the report"

if [[ $mode == memory ]]; then
    # Only the memory section of docs/benchmarks.md, rewritten where it stands.
    node bench/report.js --results "$results" --mode "$mode" --sioc "$sioc" \
        --section memory --report "$results/memory.md" --splice "$root/docs/benchmarks.md"
    log "wrote $results/memory.md and its section of docs/benchmarks.md"
    exit 0
fi
if [[ $mode == quick ]]; then
    report="$results/benchmarks.md" plot="$results/benchmarks.png"
else
    report="$root/docs/benchmarks.md" plot="$root/docs/benchmarks.png"
fi
node bench/report.js --results "$results" --mode "$mode" --sioc "$sioc" --report "$report" \
    --plot "$plot"
log "wrote $report and $plot"

# permessage-deflate (bench/compression.mjs): memory per compressed connection and fan-out with
# compression on and off, sioc-echo against Node; its own small report next to the results.
if [[ -z "${BENCH_ONLY:-}" || " $BENCH_ONLY " == *" compression "* ]]; then
    log "permessage-deflate: bench/compression.mjs"
    echo "taskset -c 1 node bench/compression.mjs --sioc-echo $sioc_echo $([[ $mode == quick ]] && echo --quick) --out $results" >>"$commands"
    taskset -c 1 node bench/compression.mjs --sioc-echo "$sioc_echo" $([[ $mode == quick ]] && echo --quick) \
        --out "$results" >/dev/null
    if [[ $mode == full ]]; then
        cp "$results/compression.md" "$root/docs/benchmarks-compression.md"
        log "wrote docs/benchmarks-compression.md"
    fi
fi
[[ -n "${BENCH_ONLY:-}" ]] || SIOC="$sioc" BENCH_RESULTS="$results/recovery" bench/recovery-daemon.sh "${1:-}" # issue 9: the fan-out cost of recovery

# Issue 9 in the library: sioc-echo's fan-out with recovery off / in memory / in Redis (streams)
# and the jitter delivery ratio, beside Node socket.io 4.8 with in-memory recovery
# (bench/recovery.mjs; its own report next to the results).
if [[ -z "${BENCH_ONLY:-}" ]]; then
    if [[ ! -d tests/integration/node_modules/socket.io-client ]]; then
        log "recovery: installing tests/integration's packages (npm ci)"
        (cd tests/integration && npm ci --no-audit --no-fund >/dev/null)
    fi
    quick_flag=()
    [[ $mode == quick ]] && quick_flag=(--quick)
    log "recovery: bench/recovery.mjs (fan-out cost, jitter ratio)"
    echo "node bench/recovery.mjs --sioc $sioc --sioc-echo $sioc_echo ${quick_flag[*]} --out $results/recovery-echo" >>"$commands"
    timeout 1200 node bench/recovery.mjs --sioc "$sioc" --sioc-echo "$sioc_echo" "${quick_flag[@]}" \
        --out "$results/recovery-echo"
fi
# The chat scenario on PostgreSQL as well as SQLite, sioc and the Node counterpart on the same
# PostgreSQL (issue 10): bench/chat-postgres.sh (its --quick: 100 users, 2 s per server), when
# PostgreSQL is installed (scripts/install-deps --test installs it); its summary ends the report.
if [[ -z "${BENCH_ONLY:-}" ]] && compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    log "chat on PostgreSQL: bench/chat-postgres.sh"
    echo "SIOC=$sioc bench/chat-postgres.sh ${1:-}" >>"$commands"
    SIOC="$sioc" BENCH_RESULTS="$results/chat-postgres" bench/chat-postgres.sh "${1:-}" >/dev/null
    {
        printf '\n## Chat on PostgreSQL and SQLite (bench/chat-postgres.sh)\n\n'
        printf 'sioc and the Node counterpart (pg from npm) on the same PostgreSQL 15 (fsync on); '
        printf 'details and the full-run figures: [store.md](store.md#benchmark-chat-on-postgresql).\n\n```\n'
        cat "$results/chat-postgres/summary.md"
        printf '```\n'
    } >>"$report"
fi
# The PostgreSQL driver's two dispatch designs (bench/pg-dispatch.sh; docs/store.md "Loop or
# threads: measured"): --quick checks its harness (a few seconds); the measurement is run alone.
if [[ -z "${BENCH_ONLY:-}" && "${1:-}" == "--quick" ]] && compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    log "PostgreSQL dispatch: bench/pg-dispatch.sh --quick"
    echo "bench/pg-dispatch.sh --quick" >>"$commands"
    bench/pg-dispatch.sh --quick >/dev/null
fi
