"""Listens on a Unix datagram socket as systemd's $NOTIFY_SOCKET does, and prints each state
line the daemon sends (READY=1, RELOADING=1, STOPPING=1), flushed, until SIGTERM or 60 s."""
import os
import signal
import socket
import sys

path = sys.argv[1]
if os.path.exists(path):
    os.unlink(path)
server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
server.bind(path)
os.chmod(path, 0o777)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
server.settimeout(60)
try:
    while True:
        data = server.recv(4096)
        for line in data.decode("utf-8", "replace").splitlines():
            print(line, flush=True)
except socket.timeout:
    pass
