#!/usr/bin/env bash
# The chat scenario of bench/run.sh with the stores side by side (issue 10): sioc on SQLite and
# on PostgreSQL, Node's socket.io 4.8 counterpart (bench/node/server.js) on SQLite and on the
# same PostgreSQL (pg from npm). One PostgreSQL 15 with its default durability (fsync on,
# synchronous_commit on; tests/lib/postgres.sh with PG_FSYNC=on), started and removed here.
# Servers on core 0, the generator on core 1, each run from a fresh database and recycled WAL
# files (a CHECKPOINT before it); ROUNDS rounds alternate the four servers so that a noisy
# machine hurts them alike. Prints the summary lines and the ratios of the medians.
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
#   SERVERS="sioc-postgres sioc-postgres-loop" bench/chat-postgres.sh
#                                          a -loop suffix (sioc-postgres-loop,
#                                          sioc-postgres-pool2-loop) sets store.dispatch "loop":
#                                          the chat's batches sent and read by the loop thread
#   PROFILE=1 bench/chat-postgres.sh       after each sioc run, where the time went (docs/store.md,
#                                          "Where the time goes"): the store's own profile (its
#                                          close log) and, on PostgreSQL, pg_stat_statements,
#                                          pg_stat_wal and the backends' wait events sampled
#                                          every 10 ms during the measured window
#                                          and, per second of the window, what the store, the
#                                          backends (autovacuum, checkpointer included), the WAL,
#                                          the disk (an fdatasync every 100 ms) and the scheduler
#                                          did: which seconds carry the tail
#   WARMUP_ROUND=0                         no discarded warm-up run (default 1: one run of the
#                                          first PostgreSQL server of SERVERS, or the first
#                                          server, before the rounds, reported as discarded;
#                                          a new cluster is slower in its first minutes,
#                                          docs/store.md "The first run on a new cluster")
#   PG_OPTIONS="-c commit_delay=..."       more PostgreSQL settings (tests/lib/postgres.sh)
#   SERVER_CPUS=0 GENERATOR_CPUS=1         the cores (taskset lists) of the server and of the
#   DATABASE_CPUS=                         generator, and of PostgreSQL (every process of the
#                                          cluster; empty: wherever the kernel puts them).
#                                          DATABASE_CPUS=1 SERVER_CPUS=0 GENERATOR_CPUS=0 gives
#                                          the database a core of its own, as a database host
#                                          of its own would (docs/store.md)
#   SIOC_BASE=/tmp/base/build/sioc SERVERS="base-sioc-postgres-pool1 sioc-postgres-pool1" ...
#                                          a base-sioc-* server is that sioc-* server run from
#                                          SIOC_BASE: before and after a change, in one run
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
case "${1:-}" in
--quick) USERS=${USERS:-100} ROOMS=${ROOMS:-10} RATE=${RATE:-50} DURATION=${DURATION:-2}
    WARMUP=${WARMUP:-0.5} ROUNDS=${ROUNDS:-1} WARMUP_ROUND=${WARMUP_ROUND:-0} ;;
"") ;;
*) echo "usage: bench/chat-postgres.sh [--quick]" >&2; exit 2 ;;
esac
users=${USERS:-2000} rooms=${ROOMS:-200} rate=${RATE:-2000} duration=${DURATION:-5}
warmup=${WARMUP:-5} rounds=${ROUNDS:-2} warmup_round=${WARMUP_ROUND:-1}
servers=${SERVERS:-sioc-sqlite sioc-postgres node-sqlite node-postgres}
server_cpus=${SERVER_CPUS:-0} generator_cpus=${GENERATOR_CPUS:-1} database_cpus=${DATABASE_CPUS:-}
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
    PG_OPTIONS="-c shared_preload_libraries=pg_stat_statements -c track_wal_io_timing=on -c log_autovacuum_min_duration=0 -c log_checkpoints=on ${PG_OPTIONS:-}"
    export PG_OPTIONS
fi
url="$(PG_FSYNC=on tests/lib/postgres.sh start "$work/pg")"
psql -q "$url" -c "CREATE DATABASE node_bench"
[[ $profile == 1 ]] && psql -q "$url" -c "CREATE EXTENSION pg_stat_statements"
node_url="${url%/*}/node_bench"
if [[ -n $database_cpus ]]; then
    # Backends fork from the postmaster and inherit its affinity; -a moves the processes
    # already running (checkpointer, WAL writer, autovacuum launcher) as well.
    postmaster=$(head -1 "$work/pg/data/postmaster.pid")
    for pid in "$postmaster" $(pgrep -P "$postmaster"); do
        taskset -a -p -c "$database_cpus" "$pid" >/dev/null
    done
fi

# Starts $1 (sioc-sqlite, sioc-postgres, node-sqlite, node-postgres) on a fresh database.
start_server() {
    local name=$1 log="$work/$1.log"
    rm -f "$work"/*.db*
    psql -q "$url" -c "DROP SCHEMA IF EXISTS sioc CASCADE" 2>/dev/null
    psql -q "$node_url" -c "DROP TABLE IF EXISTS users, presence, rooms, room_members, messages" 2>/dev/null
    # The run's WAL goes into recycled segment files, as on a server that has been up through
    # checkpoints, not into new ones, whose zero-fill stalls commits for 100 ms or more
    # (IO:WALInitWrite: docs/store.md, "The first run on a new cluster").
    psql -X -q "$url" -c "SELECT pg_switch_wal()" -c "CHECKPOINT" >/dev/null 2>&1
    local binary=$sioc
    if [[ $name == base-sioc-* ]]; then
        binary=$sioc_base
        name=${name#base-}
    fi
    case $name in
    sioc-*)
        local store="{\"driver\": \"sqlite\", \"path\": \"$work/sioc.db\"}"
        [[ $name == sioc-postgres* ]] && store="{\"driver\": \"postgres\", \"url\": \"$url\"}"
        if [[ $name == sioc-postgres-pool* ]]; then
            local size=${name#sioc-postgres-pool}
            store="${store%\}}, \"poolSize\": ${size%-loop}}"
        fi
        [[ $name == sioc-postgres*-loop ]] && store="${store%\}}, \"dispatch\": \"loop\"}"
        local api=""
        if [[ $profile == 1 ]]; then
            api_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
            api="\"api\": {\"listen\": {\"host\": \"127.0.0.1\", \"port\": $api_port}, \"key\": \"bench-api-key-0123456789\"}, "
        fi
        sed "s|\"log\": {|$api\"log\": {|; s|\"store\": {[^}]*}|\"store\": $store|; s/\"port\": 3000/\"port\": 0/; s/\"level\": \"warn\"/\"level\": \"${LOG_LEVEL:-$log_level}\"/" \
            bench/sioc-bench.json >"$work/sioc.json"
        (exec taskset -c "$server_cpus" env ${profile_env:+"$profile_env"} "$binary" serve --config "$work/sioc.json" >"$log" 2>&1) &
        ;;
    node-*)
        local db=(--db "$work/node.db")
        [[ $name == node-postgres ]] && db=(--pg "$node_url")
        (exec taskset -c "$server_cpus" node bench/node/server.js --port 0 --secret "$secret" "${db[@]}" \
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
# database and the server's own processes wait on, so that the window the generator measured
# can be picked out afterwards, and every 10 samples the WAL and checkpoint counters.
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
# PROFILE=1, during a run: every 100 ms an 8 kB write and fdatasync next to the WAL (the disk's
# flush time then) and the CPU time and run-queue delay (/proc/PID/task/*/schedstat) of the
# PostgreSQL processes and of the server, and the host's steal; one line per sample into
# $work/host.csv, bounded to 10 minutes.
host_sampler() {
    python3 - "$work/pg" "$server_pid" "$work/host.csv" <<'PY' &
import os, sys, time
pgdir, server, out = sys.argv[1], sys.argv[2], sys.argv[3]
postmaster = open(os.path.join(pgdir, "data", "postmaster.pid")).readline().strip()
def schedstat(pids):
    cpu = delay = 0
    for pid in pids:
        try:
            for task in os.listdir("/proc/%s/task" % pid):
                with open("/proc/%s/task/%s/schedstat" % (pid, task)) as f:
                    fields = f.read().split()
                cpu += int(fields[0]); delay += int(fields[1])
        except (OSError, ValueError, IndexError):
            pass
    return cpu / 1e6, delay / 1e6
def postgres_pids():
    try:
        with open("/proc/%s/task/%s/children" % (postmaster, postmaster)) as f:
            return [postmaster] + f.read().split()
    except OSError:
        return [postmaster]
def steal():
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return fields[7], sum(fields)
probe = os.path.join(pgdir, "probe-host")
fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
block = b"\0" * 8192
with open(out, "w") as log:
    log.write("at,flush_us,pg_cpu_ms,pg_delay_ms,server_cpu_ms,server_delay_ms,steal,ticks\n")
    try:
        for _ in range(6000):
            started = time.perf_counter_ns()
            os.pwrite(fd, block, 0)
            os.fdatasync(fd)
            flush = (time.perf_counter_ns() - started) / 1000
            pg = schedstat(postgres_pids())
            srv = schedstat([server])
            st = steal()
            log.write("%.3f,%.0f,%.1f,%.1f,%.1f,%.1f,%d,%d\n" % ((time.time(), flush) + pg + srv + st))
            log.flush()
            time.sleep(0.1)
    finally:
        os.close(fd)
        os.unlink(probe)
PY
    host_pid=$!
}
host_pid=""
profile_start() {
    [[ $profile == 1 ]] || return 0
    disk_probe
    psql -X -q "$url" -c "SELECT pg_stat_statements_reset(), pg_stat_reset_shared('wal'), pg_stat_reset_shared('bgwriter')" >/dev/null
    # What every backend of the database (and the server's own processes: checkpointer, WAL
    # writer, autovacuum) waits on every 10 ms, and the WAL and checkpoint counters every 10
    # samples. Unlogged tables: the sampler adds no WAL of its own.
    psql -X -q "$url" -c "
        SET client_min_messages = warning; DROP TABLE IF EXISTS bench_waits, bench_stats;
        CREATE UNLOGGED TABLE bench_waits (at timestamptz, btype text, state text, wait text, query text);
        CREATE UNLOGGED TABLE bench_stats AS SELECT clock_timestamp() AS at, w.wal_records, w.wal_fpi,
            w.wal_bytes, w.wal_buffers_full, w.wal_write, w.wal_sync, w.wal_sync_time, b.checkpoints_timed,
            b.checkpoints_req, b.buffers_checkpoint, b.buffers_clean, b.buffers_backend
          FROM pg_stat_wal w, pg_stat_bgwriter b WITH NO DATA"
    psql -X -q "$url" -c "
        DO \$\$ BEGIN FOR i IN 1..60000 LOOP
            PERFORM pg_stat_clear_snapshot();
            INSERT INTO bench_waits SELECT clock_timestamp(), backend_type, state,
                coalesce(wait_event_type || ':' || wait_event, 'CPU'),
                CASE WHEN backend_type <> 'client backend' THEN left(query, 60) END
              FROM pg_stat_activity WHERE pid <> pg_backend_pid()
                AND (datname = current_database() OR backend_type <> 'client backend');
            IF i % 10 = 0 THEN
                INSERT INTO bench_stats SELECT clock_timestamp(), w.wal_records, w.wal_fpi, w.wal_bytes,
                    w.wal_buffers_full, w.wal_write, w.wal_sync, w.wal_sync_time, b.checkpoints_timed,
                    b.checkpoints_req, b.buffers_checkpoint, b.buffers_clean, b.buffers_backend
                  FROM pg_stat_wal w, pg_stat_bgwriter b;
            END IF;
            COMMIT;
            PERFORM pg_sleep(0.01);
        END LOOP; END \$\$" >/dev/null 2>&1 &
    sampler_pid=$!
    host_sampler
    wal_files_before=$(ls "$work/pg/data/pg_wal" 2>/dev/null | grep -c '^[0-9A-F]\{24\}$' || true)
    run_started_at=$(date +%s.%N)
}
profile_report() {
    local name=$1 ended_at=$2
    [[ $profile == 1 ]] || return 0
    [[ -n "$host_pid" ]] && { kill "$host_pid" 2>/dev/null || true; wait "$host_pid" 2>/dev/null || true; host_pid=""; }
    if [[ -n "$sampler_pid" ]]; then
        psql -X -q "$url" -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE '%bench_waits%' AND pid <> pg_backend_pid()" >/dev/null
        wait "$sampler_pid" 2>/dev/null || true
        sampler_pid=""
        local window="at BETWEEN to_timestamp($ended_at) - interval '$duration seconds' - interval '1 second'
                            AND to_timestamp($ended_at) - interval '1 second'"
        echo "$name: active backends' wait events in the measured window (samples every 10 ms):"
        psql -X -At -F ' ' "$url" -c "
            SELECT count(*), wait FROM bench_waits
             WHERE btype = 'client backend' AND state = 'active' AND $window
             GROUP BY wait ORDER BY 1 DESC LIMIT 8" | sed 's/^/  /'
        echo "$name: statements (calls, mean ms, total ms); WAL records, writes, syncs, sync ms, ms per sync:"
        psql -X -At -F ' ' "$url" -c "
            SELECT calls, round(mean_exec_time::numeric, 3), round(total_exec_time::numeric, 1),
                   left(regexp_replace(query, '\s+', ' ', 'g'), 60)
              FROM pg_stat_statements WHERE query NOT LIKE '%bench_waits%' AND calls > 100
             ORDER BY total_exec_time DESC LIMIT 6" | sed 's/^/  /'
        psql -X -At -F ' ' "$url" -c "SELECT wal_records, wal_write, wal_sync, round(wal_sync_time::numeric, 1), round((wal_sync_time / nullif(wal_sync, 0))::numeric, 3) FROM pg_stat_wal" | sed 's/^/  wal /'
        local wal_files_after
        wal_files_after=$(ls "$work/pg/data/pg_wal" 2>/dev/null | grep -c '^[0-9A-F]\{24\}$' || true)
        echo "$name: the whole run (connecting included): WAL segment files $wal_files_before -> $wal_files_after; WAL MB, full-page images, checkpoints, buffers written by checkpoints / backends:"
        psql -X -At -F ' ' "$url" -c "SELECT round(w.wal_bytes / 1e6, 1), w.wal_fpi, b.checkpoints_timed + b.checkpoints_req,
                                             b.buffers_checkpoint, b.buffers_backend FROM pg_stat_wal w, pg_stat_bgwriter b" | sed 's/^/  /'
        echo "$name: PostgreSQL's log during the run (checkpoints, autovacuum):"
        local from_pg
        from_pg=$(date -u -d "@$run_started_at" '+%F %T')
        awk -v from="$from_pg" '/^[0-9]{4}-/ && ($1 " " substr($2, 1, 8)) >= from && /LOG: +(checkpoint|automatic (vacuum|analyze))/' "$work/pg/log" |
            cut -c1-200 | sed 's/^/  /' || true
        psql -X -At -F ',' "$url" -c "
            SELECT extract(epoch FROM date_trunc('second', at))::bigint, btype, state, wait,
                   coalesce(query, ''), count(*)
              FROM bench_waits GROUP BY 1, 2, 3, 4, 5" >"$work/waits.csv"
        psql -X -At -F ',' "$url" -c "
            SELECT extract(epoch FROM at), wal_records, wal_fpi, wal_bytes, wal_sync, wal_sync_time,
                   checkpoints_timed + checkpoints_req, buffers_checkpoint, buffers_backend
              FROM bench_stats ORDER BY at" >"$work/stats.csv"
    fi
}
# PROFILE=1, after a sioc run: one line per second from 6 s before the measured window to its
# end: the store's worst connection that second (its `total` and `trip` p99 and max, ms), the
# client backends' wait events and what the other server processes were doing, the WAL
# (records, full-page images, syncs and ms per sync), checkpoint writes, the disk's flush time
# (the 100 ms probe's worst), the CPU run-queue delay of PostgreSQL's processes and of the
# server (ms per second: time runnable but not running) and the host's steal.
seconds_report() {
    local name=$1 log=$2 ended_at=$3
    echo "$name: per second (the measured window marked *): store worst total p99/max, trip p99/max ms; client waits (10 ms samples); other processes; WAL recs/fpi/syncs/ms per sync; ckpt bufs; disk flush max ms; run delay pg/server ms; steal %"
    python3 - "$log" "$ended_at" "$duration" "$work/waits.csv" "$work/stats.csv" "$work/host.csv" <<'PY' || true
import calendar, collections, sys, time
log, ended, duration = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
first, last = int(ended - duration - 7), int(ended)
in_window = lambda s: ended - duration - 1 <= s + 0.5 <= ended - 1
store = collections.defaultdict(lambda: [0, 0, 0, 0])
for line in open(log, errors="replace"):
    if "store: profile of" not in line:
        continue
    try:
        sec = calendar.timegm(time.strptime(line[:19], "%Y-%m-%dT%H:%M:%S")) - 1  # logged at the end of its second
    except ValueError:
        continue
    words = line.split()
    for i, w in enumerate(words[:-1]):
        if w in ("total", "trip"):
            v = [int(x) for x in words[i + 1].split("/")]
            k = 0 if w == "total" else 2
            store[sec][k] = max(store[sec][k], v[2]); store[sec][k + 1] = max(store[sec][k + 1], v[3])
waits = collections.defaultdict(collections.Counter)
others = collections.defaultdict(collections.Counter)
for line in open(sys.argv[4]):
    f = line.rstrip("\n").split(",")
    if len(f) < 6:
        continue
    sec, btype, state, wait, query, n = int(f[0]), f[1], f[2], f[3], ",".join(f[4:-1]), int(f[-1])
    if btype == "client backend":
        if state == "active":
            waits[sec][wait] += n
    elif not wait.startswith("Activity:") or btype.startswith("autovacuum worker"):
        who = btype.replace("autovacuum worker", "autovac").replace("background writer", "bgwriter")
        others[sec][who + " " + wait + (" " + query.split("autovacuum: ")[-1] if "autovacuum:" in query else "")] += n
stats = {}
for line in open(sys.argv[5]):
    f = line.strip().split(",")
    if len(f) == 9:
        stats.setdefault(int(float(f[0])), [float(x) for x in f[1:]])
host = collections.defaultdict(list)
for line in list(open(sys.argv[6]))[1:]:
    f = [float(x) for x in line.split(",")]
    host[int(f[0])].append(f)
prev_stats = prev_host = None
for sec in range(first - 1, last + 1):
    st, hs = stats.get(sec), host.get(sec)
    if sec < first:
        prev_stats, prev_host = st, hs[-1] if hs else None
        continue
    out = ["*" if in_window(sec) else " ", time.strftime("%H:%M:%S", time.gmtime(sec))]
    t = store.get(sec)
    out.append("store %.1f/%.1f trip %.1f/%.1f" % tuple(x / 1000 for x in t) if t else "store -")
    out.append("waits " + " ".join("%s %d" % kv for kv in waits[sec].most_common(3)) if waits[sec] else "waits -")
    if others[sec]:
        out.append("others " + "; ".join("%s %d" % kv for kv in others[sec].most_common(2)))
    if st and prev_stats:
        d = [a - b for a, b in zip(st, prev_stats)]
        out.append("wal %d/%d/%d/%.2f ckpt %d" % (d[0], d[1], d[3], d[4] / d[3] if d[3] else 0, d[6]))
    if hs and prev_host:
        h = hs[-1]
        ticks = h[7] - prev_host[7]
        out.append("disk %.1f delay %.0f/%.0f steal %.1f" % (max(x[1] for x in hs) / 1000, h[3] - prev_host[3],
                   h[5] - prev_host[5], 100 * (h[6] - prev_host[6]) / ticks if ticks else 0))
    prev_stats, prev_host = st or prev_stats, (hs[-1] if hs else prev_host)
    print("  " + " | ".join(out))
PY
}

# One run of server $1; $2 names its results ($work/$1-$2.json): the round, or "warmup".
run_one() {
    local name=$1 round=$2
    start_server "$name"
    [[ $name == *sioc-postgres* ]] && profile_start
    SIOC_BENCH_LOOP_PROFILE=$profile taskset -c "$generator_cpus" "$sioc" bench chat --port "$port" --namespace /chat --jwt-secret "$secret" \
        --users "$users" --rooms "$rooms" --rate "$rate" --duration "$duration" \
        --warmup "$warmup" --timeout 300 --server-pid "$server_pid" --label "$name" \
        --json "$work/$name-$round.json" | tail -1 |
        { if [[ $round == warmup ]]; then sed 's/^/warm-up, discarded: /'; else cat; fi; } | tee "$work/last.txt" ||
        true # a failed run (FAILED, status 1) is reported below and counted in the summary
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
        [[ $name == *sioc-postgres* ]] && seconds_report "$name" "$work/$name.log" "$ended_at"
    fi
    return 0
}

# The warm-up: a new cluster is slower in its first minutes (docs/store.md, "The first run on a
# new cluster"), so one run before the rounds is left out of the figures, on PostgreSQL when
# SERVERS has a server on it.
if [[ $warmup_round == 1 ]]; then
    warmup_server=""
    for name in $servers; do
        if [[ -z "$warmup_server" && $name == *postgres* ]]; then warmup_server=$name; fi
    done
    warmup_server=${warmup_server:-${servers%% *}}
    echo "warm-up: one run of $warmup_server, discarded (WARMUP_ROUND=0: none)"
    run_one "$warmup_server" warmup
fi
for round in $(seq 1 "$rounds"); do
    for name in $servers; do
        run_one "$name" "$round"
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
    const read = (i) => {
      try { return JSON.parse(fs.readFileSync(path.join(dir, `${name}-${i + 1}.json`))); } catch { return null; }
    };
    const all = [...Array(rounds).keys()].map(read);
    const runs = all.filter((r) => r && r.results && r.results.latency && !r.error);
    const failed = rounds - runs.length ? `, ${rounds - runs.length} of ${rounds} runs FAILED (left out)` : "";
    if (runs.length === 0) { console.log(`${name}: every run FAILED`); continue; }
    const pick = (key) => median(runs.map((r) => r.results.latency[key] / 1000));
    const lost = runs.reduce((sum, r) => sum + r.results.lost + (r.results.sent - r.results.acknowledged), 0);
    stat[name] = { p50: pick("p50_us"), p99: pick("p99_us") };
    console.log(`${name}: median p50 ${stat[name].p50.toFixed(1)} ms, p99 ${stat[name].p99.toFixed(1)} ms, lost or unacknowledged ${lost}${failed}`);
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
