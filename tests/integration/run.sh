#!/usr/bin/env bash
# Integration suites, each run with node --test and then with the python
# clients. Exits non-zero if anything fails.
#   Engine.IO: eio/*.test.js + python/test_eio_python.py  (server: EIO_ECHO)
#   Socket.IO: sio/*.test.js + python/test_sio_python.py  (server: SIOC_ECHO)
#   cluster: cluster/*.test.js, two SIOC_ECHO nodes and one Node node on a redis-server
#                                                          (server: SIOC_ECHO)
#   recovery: recovery/*.test.js, connection state recovery kept in Redis (streams mode):
#             SIOC_ECHO nodes and a Node node, node loss, bad input (server: SIOC_ECHO)
#   chat example: chat/*.test.js                          (server: SIOC_CHAT)
#   daemon: daemon/*.test.js + python/test_daemon_python.py, `sioc serve` end to end (SIOC_BIN)
#   web: web/*.test.js, examples/web in Debian's Chromium  (binary: SIOC_BIN; /usr/bin/chromium)
#
#   tests/integration/run.sh                      # against the Node references
#   EIO_ECHO=build/examples/eio-echo tests/integration/run.sh
#   SIOC_ECHO=build/examples/sioc-echo tests/integration/run.sh
#   SUITES=sio tests/integration/run.sh           # only the Socket.IO suites
#
# EIO_ECHO / SIOC_ECHO are the servers' command lines (relative paths are
# taken from the directory run.sh is called from); unset → the Node
# reference (ref/eio-echo.js, ref/sioc-echo.js). When SIOC_ECHO is unset and
# EIO_ECHO is a build's .../eio-echo, SIOC_ECHO defaults to the sioc-echo
# next to it if that exists. EIO_ECHO_IS_REFERENCE / SIOC_ECHO_IS_REFERENCE
# =1/0 override the guess of whether a server is the Node reference (which
# skips the few tests where sioc deliberately differs). The chat example and
# the daemon have no Node reference: they run only when their binary is known
# (SIOC_CHAT / SIOC_BIN, or the chat / sioc next to a build's eio-echo).
# SUITES: "eio sio cluster recovery chat daemon web" (default), or any of them. Extra arguments go to `node --test`
# (e.g. --test-name-pattern=CORS).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# Make a relative server path absolute before changing directory
# (prints the command line back).
absolutize() {
  local line="$1" first rest
  read -r first rest <<<"$line"
  if [[ "$first" != /* && "$first" == */* && -e "$first" ]]; then
    line="$PWD/$first${rest:+ $rest}"
  fi
  printf '%s' "$line"
}

if [[ -n "${EIO_ECHO:-}" ]]; then
  EIO_ECHO="$(absolutize "$EIO_ECHO")"
  export EIO_ECHO
fi

if [[ -n "${SIOC_ECHO:-}" ]]; then
  SIOC_ECHO="$(absolutize "$SIOC_ECHO")"
  export SIOC_ECHO
elif [[ -n "${EIO_ECHO:-}" ]]; then
  read -r eio_first _ <<<"$EIO_ECHO"
  if [[ "$(basename -- "$eio_first")" == eio-echo ]]; then
    sibling="$(dirname -- "$eio_first")/sioc-echo"
    if [[ -x "$sibling" && -f "$sibling" ]]; then
      SIOC_ECHO="$sibling"
      export SIOC_ECHO
    fi
  fi
fi

# The chat example has no Node reference: it runs only when its binary is known (SIOC_CHAT, or
# the chat next to a build's eio-echo).
if [[ -n "${SIOC_CHAT:-}" ]]; then
  SIOC_CHAT="$(absolutize "$SIOC_CHAT")"
  export SIOC_CHAT
elif [[ -n "${EIO_ECHO:-}" ]]; then
  read -r eio_first _ <<<"$EIO_ECHO"
  chat="$(dirname -- "$eio_first")/chat"
  if [[ "$(basename -- "$eio_first")" == eio-echo && -x "$chat" && -f "$chat" ]]; then
    SIOC_CHAT="$chat"
    export SIOC_CHAT
  fi
fi

# The daemon (`sioc serve`, daemon/*.test.js): SIOC_BIN, or the sioc next to a build's eio-echo.
if [[ -n "${SIOC_BIN:-}" ]]; then
  SIOC_BIN="$(absolutize "$SIOC_BIN")"
  export SIOC_BIN
elif [[ -n "${EIO_ECHO:-}" ]]; then
  read -r eio_first _ <<<"$EIO_ECHO"
  sioc_bin="$(dirname -- "$eio_first")/sioc"
  if [[ "$(basename -- "$eio_first")" == eio-echo && -x "$sioc_bin" && -f "$sioc_bin" ]]; then
    SIOC_BIN="$sioc_bin"
    export SIOC_BIN
  fi
fi

SUITES="${SUITES:-eio sio cluster recovery chat daemon web}"
want() { [[ " $SUITES " == *" $1 "* ]]; }

cd "$here" || exit 1

# npm ci only when node_modules is missing or older than the lock file.
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "run.sh: installing node modules (npm ci)"
  npm ci --no-audit --no-fund || exit 1
fi

PYTHON=/usr/bin/python3
# Debian packages for the python clients (installed when missing and root).
python_deps() {
  local import="$1"; shift
  if ! "$PYTHON" -c "import $import" 2>/dev/null; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
      echo "run.sh: installing $* (apt-get)"
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/dev/null ||
        { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            "$@" >/dev/null; }
    fi
  fi
  if ! "$PYTHON" -c "import $import" 2>/dev/null; then
    echo "run.sh: FAIL: $PYTHON cannot import $import (Debian: $*)" >&2
    return 1
  fi
}

status=0

if want eio; then
  echo "run.sh: Engine.IO server under test: ${EIO_ECHO:-node $here/ref/eio-echo.js (reference)}"
  # Files are mostly waiting on sockets and timers: run several at once.
  node --test --test-concurrency=4 "$@" eio/*.test.js || status=1
  if python_deps 'engineio, requests, websocket' python3-engineio python3-requests python3-websocket; then
    "$PYTHON" python/test_eio_python.py -v || status=1
  else
    status=1
  fi
fi

if want sio; then
  echo "run.sh: Socket.IO server under test: ${SIOC_ECHO:-node $here/ref/sioc-echo.js (reference)}"
  node --test --test-concurrency=4 "$@" sio/*.test.js || status=1
  if python_deps 'socketio, engineio, requests, websocket' python3-socketio python3-engineio python3-requests python3-websocket; then
    "$PYTHON" python/test_sio_python.py -v || status=1
  else
    status=1
  fi
fi

if want cluster; then
  echo "run.sh: cluster nodes under test: ${SIOC_ECHO:-node $here/ref/sioc-echo.js (reference)} (x2) + ref/sioc-echo.js"
  # One redis-server and three nodes per run: classic, then sharded in two subscription modes.
  node --test "$@" cluster/*.test.js || status=1
  CLUSTER_MODE=sharded node --test "$@" cluster/*.test.js || status=1
  CLUSTER_MODE=sharded CLUSTER_SUBSCRIPTION=static node --test "$@" cluster/*.test.js || status=1
  CLUSTER_MODE=streams node --test "$@" cluster/*.test.js || status=1
fi

if want recovery; then
  echo "run.sh: recovery nodes under test: ${SIOC_ECHO:-node $here/ref/sioc-echo.js (reference)} + ref/sioc-echo.js"
  node --test "$@" recovery/*.test.js || status=1
fi

if want chat && [[ -n "${SIOC_CHAT:-}" ]]; then
  echo "run.sh: chat example under test: $SIOC_CHAT"
  node --test "$@" chat/*.test.js || status=1
fi

if want daemon; then
  if [[ -n "${SIOC_BIN:-}" ]]; then
    echo "run.sh: daemon under test: $SIOC_BIN serve"
    # Each file starts its own daemons (and redis-server) on free loopback ports.
    node --test --test-concurrency=4 "$@" daemon/*.test.js || status=1
    if python_deps 'socketio, engineio, requests, websocket' python3-socketio python3-engineio python3-requests python3-websocket; then
      "$PYTHON" python/test_daemon_python.py -v || status=1
    else
      status=1
    fi
  else
    echo "run.sh: daemon suite not run: set SIOC_BIN (the sioc binary) or EIO_ECHO to a build's eio-echo"
  fi
fi

if want web; then
  if [[ -n "${SIOC_BIN:-}" ]]; then
    echo "run.sh: chat page (examples/web) in Chromium against: $SIOC_BIN serve"
    web="$here/../../examples/web"
    if [[ ! -f "$web/node_modules/.package-lock.json" || "$web/package-lock.json" -nt "$web/node_modules/.package-lock.json" ]]; then
      (cd "$web" && npm ci --no-audit --no-fund) || status=1
    fi
    node --test "$@" web/*.test.js || status=1
  else
    echo "run.sh: web suite not run: set SIOC_BIN (the sioc binary) or EIO_ECHO to a build's eio-echo"
  fi
fi

if [[ $status -eq 0 ]]; then echo "run.sh: all integration tests passed ($SUITES)"; else echo "run.sh: FAILURES" >&2; fi
exit $status
