#!/usr/bin/env bash
# PostgreSQL on the loop or on threads (issue 10): build/pg-dispatch's two designs against one
# throwaway PostgreSQL 15 with its default durability (tests/lib/postgres.sh, PG_FSYNC=on, as
# bench/chat-postgres.sh), in alternating rounds, with and without the deliveries' fan-out.
# Every run starts from an empty messages table and recycled WAL files (pg_switch_wal and a
# CHECKPOINT before it: docs/store.md, "The first run on a new cluster"); one warm-up run per
# connection count and fan-out comes first and is discarded. Prints one row per run (with the
# host's load average and steal during it), the medians per design and the ratios loop/threads.
# Loopback only; every run is bounded (timeout), and everything started here is stopped at the end.
#
#   bench/pg-dispatch.sh                 ROUNDS=3 DURATION=10 WARMUP=3 RATE=2000 CONNECTIONS=4
#                                        FANOUTS="0 10" ROOMS=1000 USERS=10000
#   CONNECTIONS="4 2" bench/pg-dispatch.sh   both pool sizes, one after the other
#   bench/pg-dispatch.sh --quick         a few seconds: checks the harness (1 round, 1 s, 200/s)
#   BENCH_CPUS=0 READER_CPU=1            the cores of the program (taskset list: its loop and its
#   DATABASE_CPUS=                       workers) and of the fan-out's reader process, as
#                                        chat-postgres.sh places the daemon and the generator;
#                                        PostgreSQL's processes on DATABASE_CPUS (empty: anywhere).
#                                        BENCH_CPUS=0,1 READER_CPU=-1 leaves the kernel free.
#   SPIN_CPUS=0                          during every run, a busy loop on each listed core (a
#                                        comma list): the other work of a shared machine, which
#                                        takes half of that core from whatever runs there
#   BENCH_RESULTS=dir                    also writes the table and the summary to dir/summary.md
#   PG_DISPATCH=build/pg-dispatch        the program (scripts/build makes it)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
case "${1:-}" in
--quick) ROUNDS=${ROUNDS:-1} DURATION=${DURATION:-1} WARMUP=${WARMUP:-0.5} RATE=${RATE:-200}
    WARMUP_ROUND=${WARMUP_ROUND:-0} ;;
"") ;;
*) echo "usage: bench/pg-dispatch.sh [--quick]" >&2; exit 2 ;;
esac
rounds=${ROUNDS:-3} duration=${DURATION:-10} warmup=${WARMUP:-3} rate=${RATE:-2000}
rooms=${ROOMS:-1000} users=${USERS:-10000} connections_list=${CONNECTIONS:-4}
fanouts=${FANOUTS:-0 10} warmup_round=${WARMUP_ROUND:-1}
bench_cpus=${BENCH_CPUS:-0} reader_cpu=${READER_CPU:-1} database_cpus=${DATABASE_CPUS:-}
spin_cpus=${SPIN_CPUS:-}
program="${PG_DISPATCH:-$root/build/pg-dispatch}"
[[ -x "$program" ]] || { echo "pg-dispatch.sh: build it first (scripts/build) or set PG_DISPATCH" >&2; exit 2; }

work="$(mktemp -d /tmp/sioc-pg-dispatch-XXXXXX)"
chmod 755 "$work" # the server runs as nobody when this runs as root
spinners=()
spin_stop() {
    for pid in "${spinners[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${spinners[@]}"; do wait "$pid" 2>/dev/null || true; done
    spinners=()
}
cleanup() {
    spin_stop
    tests/lib/postgres.sh stop "$work/pg" || true
    rm -rf "$work"
}
trap cleanup EXIT
url="$(PG_FSYNC=on tests/lib/postgres.sh start "$work/pg")"
if [[ -n $database_cpus ]]; then
    # Backends fork from the postmaster and inherit its affinity; -a moves the processes
    # already running (checkpointer, WAL writer, autovacuum launcher) as well.
    postmaster=$(head -1 "$work/pg/data/postmaster.pid")
    for pid in "$postmaster" $(pgrep -P "$postmaster"); do
        taskset -a -p -c "$database_cpus" "$pid" >/dev/null
    done
fi

# The host's steal and all ticks so far (the first line of /proc/stat).
ticks() { awk 'NR == 1 { total = 0; for (i = 2; i <= NF; i++) total += $i; print $9, total }' /proc/stat; }

failed=0
# One run: $1 design, $2 connections, $3 fan-out, $4 the round ("warmup" for the discarded one).
run_one() {
    local design=$1 connections=$2 fanout=$3 round=$4 line status
    "$program" --url "$url" --setup --rooms "$rooms" --users "$users"
    psql -X -q "$url" -c "SELECT pg_switch_wal()" -c "CHECKPOINT" >/dev/null
    local before after bound=$((${duration%.*} + ${warmup%.*} + 30)) cpu
    for cpu in ${spin_cpus//,/ }; do
        timeout "$bound" taskset -c "$cpu" sh -c 'while :; do :; done' &
        spinners+=($!)
    done
    before=$(ticks)
    set +e
    line=$(timeout "$bound" taskset -c "$bench_cpus" "$program" \
        --url "$url" --design "$design" --connections "$connections" --rate "$rate" \
        --rooms "$rooms" --users "$users" --duration "$duration" --warmup "$warmup" \
        --fanout "$fanout" --reader-cpu "$reader_cpu" 2>"$work/stderr")
    status=$?
    set -e
    after=$(ticks)
    spin_stop
    local load steal
    load=$(cut -d' ' -f1 /proc/loadavg)
    steal=$(echo "$before $after" | awk '{ d = $4 - $2; printf("%.1f", (d > 0) ? 100 * ($3 - $1) / d : 0) }')
    if [[ $status -ne 0 || -z $line ]]; then
        echo "round=$round design=$design connections=$connections fanout=$fanout FAILED (status $status): $(tr '\n' ' ' <"$work/stderr")" |
            tee -a "$work/runs.txt"
        failed=$((failed + 1))
        return 0
    fi
    echo "round=$round $line load=$load steal_pct=$steal" | tee -a "$work/runs.txt"
}

settings="ROUNDS=$rounds DURATION=$duration WARMUP=$warmup RATE=$rate CONNECTIONS=\"$connections_list\" FANOUTS=\"$fanouts\" BENCH_CPUS=$bench_cpus READER_CPU=$reader_cpu DATABASE_CPUS=$database_cpus SPIN_CPUS=$spin_cpus bench/pg-dispatch.sh"
echo "$settings"
started=$(date -u +%FT%TZ)
for connections in $connections_list; do
    for fanout in $fanouts; do
        [[ $warmup_round == 1 ]] && run_one loop "$connections" "$fanout" warmup
        for round in $(seq 1 "$rounds"); do
            # The order alternates too, so that neither design always runs first.
            if ((round % 2)); then order="loop threads"; else order="threads loop"; fi
            for design in $order; do
                run_one "$design" "$connections" "$fanout" "$round"
            done
        done
    done
done
ended=$(date -u +%FT%TZ)

echo
python3 - "$work/runs.txt" "$started" "$ended" "$settings" <<'PY' | tee "$work/summary.txt"
import statistics, sys
runs = []
for line in open(sys.argv[1]):
    if "FAILED" in line:
        continue
    runs.append(dict(field.split("=", 1) for field in line.split()))
print(sys.argv[4])
print("%s to %s, latency in ms; CPU of the program (loop and workers, not the reader) per request"
      % (sys.argv[2], sys.argv[3]))
print()
print("| K | fan-out | round | design | p50 | p90 | p99 | p99.9 | max | lost | CPU us/req (user+sys; of it the loop thread) | vol. / invol. switches per req | backend CPU us/req | batch | load | steal % |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
ms = lambda r, k: "%.2f" % (float(r[k]) / 1000)
for r in runs:
    print("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.0f (%.0f) | %s / %s | %s | %s | %s | %s |" % (
        r["connections"], r["fanout"], r["round"], r["design"], ms(r, "p50_us"), ms(r, "p90_us"),
        ms(r, "p99_us"), ms(r, "p999_us"), ms(r, "max_us"), r["lost"],
        float(r["user_us_per_req"]) + float(r["sys_us_per_req"]), float(r.get("loop_us_per_req", "nan")), r["vcsw_per_req"],
        r["ivcsw_per_req"], r["backend_cpu_us_per_req"], r["batch_mean"], r["load"], r["steal_pct"]))
print()
groups = {}
for r in runs:
    if r["round"] != "warmup":
        groups.setdefault((r["connections"], r["fanout"]), {}).setdefault(r["design"], []).append(r)
keys = [("p50_us", "p50"), ("p99_us", "p99"), ("p999_us", "p99.9")]
for (k, fanout), designs in groups.items():
    med = {}
    for design, rs in designs.items():
        med[design] = {key: statistics.median(float(r[key]) for r in rs) for key, _ in keys}
        med[design]["cpu"] = statistics.median(float(r["user_us_per_req"]) + float(r["sys_us_per_req"]) for r in rs)
        med[design]["loop"] = statistics.median(float(r.get("loop_us_per_req", "nan")) for r in rs)
        med[design]["vcsw"] = statistics.median(float(r["vcsw_per_req"]) for r in rs)
        lost = sum(int(r["lost"]) for r in rs)
        print("K=%s fan-out %s, %s, %d rounds: median p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, CPU %.0f us/req (the loop thread %.0f), %.2f voluntary switches/req, lost %d"
              % (k, fanout, design, len(rs), med[design]["p50_us"] / 1000, med[design]["p99_us"] / 1000,
                 med[design]["p999_us"] / 1000, med[design]["cpu"], med[design]["loop"], med[design]["vcsw"], lost))
    if "loop" in med and "threads" in med:
        l, t = med["loop"], med["threads"]
        ratio = lambda key: l[key] / t[key] if t[key] else float("nan")
        print("K=%s fan-out %s, loop/threads: p50 %.2fx, p99 %.2fx, p99.9 %.2fx, CPU %.2fx, voluntary switches %.2fx"
              % (k, fanout, ratio("p50_us"), ratio("p99_us"), ratio("p999_us"), ratio("cpu"), ratio("vcsw")))
        # Pairs of one round: the designs ran back to back there, on the same machine state.
        pairs = []
        for lr in designs["loop"]:
            for tr in designs["threads"]:
                if lr["round"] == tr["round"]:
                    pairs.append(float(lr["p99_us"]) / float(tr["p99_us"]))
        print("K=%s fan-out %s, p99 loop/threads per round: %s" % (k, fanout, ", ".join("%.2f" % p for p in pairs)))
PY
if [[ -n "${BENCH_RESULTS:-}" ]]; then
    mkdir -p "$BENCH_RESULTS"
    {
        cat "$work/summary.txt"
        echo
        cat "$work/runs.txt"
    } >"$BENCH_RESULTS/summary.md"
fi
[[ $failed -eq 0 ]] || { echo "pg-dispatch.sh: $failed runs FAILED" >&2; exit 1; }
