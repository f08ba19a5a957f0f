#!/usr/bin/env bash
# Memory per idle client of the daemon on seed 000's VMT set-up (examples/config/vmt.json: the
# notifications driver on "/", auth "optional" with an express-session cookie in Redis), which
# `bench/run.sh --memory` has no scenario for: `sioc bench idle` sends no cookie.
#
#   bench/session-idle.sh SIOC_BIN [CLIENTS]       (CLIENTS: 2,000 at most, default 2,000)
#
# Starts a redis-server (loopback, no persistence) holding one passport session per client,
# the daemon, and bench/session-idle.mjs's clients (a signed connect.sid each, over WebSocket);
# prints the daemon's VmRSS and glibc heap in use (malloc_stats() through gdb; -1 without gdb)
# before the first client and once every client is connected and idle, and the difference per
# client. Everything it starts is stopped by its pid when it ends, whatever happens.
set -euo pipefail

bin=$(realpath "${1:?usage: bench/session-idle.sh SIOC_BIN [CLIENTS]}")
clients=${2:-2000}
((clients <= 2000)) || { echo "at most 2,000 clients" >&2; exit 2; }
here="$(cd "$(dirname "$0")" && pwd)"
work=$(mktemp -d)
secret="bench-session-secret"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# The "in use bytes" of malloc_stats()'s Total part, which it prints to the daemon's stderr.
heap_in_use() {
    command -v gdb >/dev/null 2>&1 || { echo -1; return; }
    timeout 60 gdb -p "$1" -batch -ex 'call (void) malloc_stats()' >/dev/null 2>&1 || true
    awk '/^Total \(incl. mmap\):/ {total = 1; next}
         total && /in use bytes/ {value = $NF; total = 0}
         END {print value == "" ? -1 : value}' "$work/daemon.log"
}

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no >"$work/redis.log" &
pids+=($!)
for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
# What passport.serializeUser((user, done) => done(null, user.id)) leaves, as express-session
# stores it (connect-redis: the session's JSON under prefix + sid).
for ((i = 0; i < clients; i++)); do
    printf "SET sess:bench-session-%d '{\"cookie\":{\"path\":\"/\",\"httpOnly\":true},\"passport\":{\"user\":\"user-%d\"}}'\n" "$i" "$i"
done | redis-cli -p "$redis_port" >/dev/null

cat >"$work/sioc.json" <<EOF
{
  "listen": {"host": "127.0.0.1", "port": 0},
  "store": {"driver": "sqlite", "path": "$work/sioc.db"},
  "auth": {"session": {"cookieName": "connect.sid", "secrets": ["$secret"],
                       "redis": {"host": "127.0.0.1", "port": $redis_port, "prefix": "sess:"}}},
  "limits": {"pingIntervalMs": 25000, "pingTimeoutMs": 20000},
  "log": {"level": "warn"},
  "channels": {"/": {"driver": "notifications", "auth": "optional"}}
}
EOF
"$bin" serve --config "$work/sioc.json" >"$work/daemon.out" 2>"$work/daemon.log" &
daemon=$!
pids+=("$daemon")
port=""
for _ in $(seq 100); do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/daemon.out" "$work/daemon.log" | head -1)
    [[ -n $port ]] && break
    sleep 0.1
done
[[ -n $port ]] || { echo "the daemon did not start:" >&2; cat "$work/daemon.log" >&2; exit 1; }
sleep 0.5 # its own start-up allocations
rss_before=$(rss_kib "$daemon")
heap_before=$(heap_in_use "$daemon")

node "$here/session-idle.mjs" --port "$port" --clients "$clients" --secret "$secret" \
    --duration 300 >"$work/clients.out" 2>&1 &
pids+=($!)
for _ in $(seq 1200); do grep -q '^holding' "$work/clients.out" && break; sleep 0.1; done
grep '^holding' "$work/clients.out" || { echo "clients did not connect" >&2; cat "$work/clients.out" >&2; exit 1; }
grep -q '(0 failed)' "$work/clients.out" || { cat "$work/clients.out" >&2; exit 1; }
sleep 5 # the last CONNECTs answered, the session lookups done
rss_after=$(rss_kib "$daemon")
heap_after=$(heap_in_use "$daemon")
echo "VmRSS $rss_before -> $rss_after KiB: $(((rss_after - rss_before) * 1024 / clients)) B per client"
if ((heap_before >= 0 && heap_after >= 0)); then
    echo "heap in use $heap_before -> $heap_after B: $(((heap_after - heap_before) / clients)) B per client"
fi
