#!/usr/bin/env bash
# Engine.IO integration suite: node --test over eio/*.test.js, then the
# python-engineio client tests. Exits non-zero if anything fails.
#
#   tests/integration/run.sh                      # against the Node reference
#   EIO_ECHO=build/examples/eio-echo tests/integration/run.sh
#
# EIO_ECHO is the server's command line (relative paths are taken from the
# directory run.sh is called from). EIO_ECHO_IS_REFERENCE=1/0 overrides the
# guess of whether it is the Node reference (which skips the few tests where
# sioc deliberately differs). Extra arguments go to `node --test`
# (e.g. --test-name-pattern=CORS).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# Make a relative server path absolute before changing directory.
if [[ -n "${EIO_ECHO:-}" ]]; then
  read -r first rest <<<"$EIO_ECHO"
  if [[ "$first" != /* && "$first" == */* && -e "$first" ]]; then
    EIO_ECHO="$PWD/$first${rest:+ $rest}"
  fi
  export EIO_ECHO
fi

cd "$here" || exit 1

# npm ci only when node_modules is missing or older than the lock file.
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "run.sh: installing node modules (npm ci)"
  npm ci --no-audit --no-fund || exit 1
fi

echo "run.sh: server under test: ${EIO_ECHO:-node $here/ref/eio-echo.js (reference)}"

status=0

# Files are mostly waiting on sockets and timers: run several at once.
node --test --test-concurrency=4 "$@" eio/*.test.js || status=1

PYTHON=/usr/bin/python3
if ! "$PYTHON" -c 'import engineio, requests, websocket' 2>/dev/null; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "run.sh: installing python3-engineio, python3-requests, python3-websocket (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3-engineio python3-requests python3-websocket >/dev/null ||
      { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
          python3-engineio python3-requests python3-websocket >/dev/null; }
  fi
fi
if "$PYTHON" -c 'import engineio, requests, websocket' 2>/dev/null; then
  "$PYTHON" python/test_eio_python.py -v || status=1
else
  echo "run.sh: FAIL: $PYTHON lacks engineio/requests/websocket (Debian: python3-engineio python3-requests python3-websocket)" >&2
  status=1
fi

if [[ $status -eq 0 ]]; then echo "run.sh: all Engine.IO integration tests passed"; else echo "run.sh: FAILURES" >&2; fi
exit $status
