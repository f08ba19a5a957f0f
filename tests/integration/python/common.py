"""What the python client suites share: the server under test as a child process, and a
disconnect that waits for the client's threads.

Imported by test_eio_python.py, test_sio_python.py and test_daemon_python.py (run as
scripts, so this directory is on sys.path).
"""
import os
import re
import select
import signal
import subprocess
import threading
import time

START_TIMEOUT = 5.0


class Server:
    """The server `command` (argv list) on 127.0.0.1:<port>, started with extra flags."""

    def __init__(self, command, flags=()):
        cmd = list(command) + ['--host', '127.0.0.1', '--port', '0'] + list(flags)
        # Own process group, so that wrappers (scripts, valgrind) die with it.
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     start_new_session=True)
        try:
            self.port = self._read_port(cmd)
        except Exception:
            self.stop()
            raise
        # Keep draining the pipes so the server never blocks on them.
        self._stderr = []
        self._drains = []
        for pipe, sink in ((self.proc.stdout, None), (self.proc.stderr, self._stderr)):
            thread = threading.Thread(target=self._drain, args=(pipe, sink), daemon=True)
            thread.start()
            self._drains.append(thread)

    def _read_port(self, cmd):
        deadline = time.monotonic() + START_TIMEOUT
        line = b''
        while not line.endswith(b'\n'):
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError('%s did not print its listening line within %.0f s'
                                   % (' '.join(cmd), START_TIMEOUT))
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if not ready:
                continue
            byte = os.read(self.proc.stdout.fileno(), 1)
            if not byte:
                err = self.proc.stderr.read().decode('utf-8', 'replace')
                raise RuntimeError('%s exited before listening: %s' % (' '.join(cmd), err))
            line += byte
        m = re.fullmatch(r'listening on 127\.0\.0\.1:(\d+)', line.decode().rstrip('\r\n'))
        if not m:
            raise RuntimeError('first stdout line is %r, want "listening on 127.0.0.1:<port>"' % line)
        return int(m.group(1))

    @staticmethod
    def _drain(pipe, sink):
        for chunk in iter(lambda: pipe.read1(4096), b''):
            if sink is not None:
                sink.append(chunk)

    def stderr(self):
        return b''.join(getattr(self, '_stderr', [])).decode('utf-8', 'replace')[-16384:]

    @property
    def url(self):
        return 'http://127.0.0.1:%d' % self.port

    def alive(self):
        return self.proc.poll() is None

    def _signal_group(self, sig):
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self):
        if self.proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(2)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.proc.wait(2)
        self._signal_group(signal.SIGKILL)  # stragglers in the group
        for thread in getattr(self, '_drains', []):
            thread.join(1)
        self.proc.stdout.close()
        self.proc.stderr.close()

    def stop_checked(self):
        """stop(), then fail if the server had died during the tests (for tearDownClass)."""
        died = not self.alive()
        self.stop()
        if died:
            raise AssertionError('the server died during the tests (exit status %s); stderr:\n%s'
                                 % (self.proc.returncode, self.stderr()))


def disconnect_and_wait(client, timeout):
    """socketio.Client.disconnect(), then wait up to `timeout` s for its engine.io threads.

    python-socketio 5.7's disconnect() calls python-engineio's disconnect(abort=True), which
    closes the WebSocket and returns without joining the read and write loop threads. The read
    thread still answers the server's close frame (websocket-client's send_close), writing to
    the socket's fd number after the main thread has closed it (strace shows the 30-byte write
    failing with EBADF). If the next test has opened a connection in between, the kernel has
    given it that fd number, and the stray frame lands in the new connection: over TLS the
    server answers it with a bad_record_mac or unexpected_message alert, over plain TCP it
    garbles the request. So no test starts before the previous client's threads have ended.
    """
    client.disconnect()
    engine = client.eio
    for thread in (engine.read_loop_task, engine.write_loop_task):
        if thread is None:
            continue
        thread.join(timeout)
        if thread.is_alive():
            raise AssertionError('the client\'s %s thread did not end within %.0f s of '
                                 'disconnect()' % (thread.name, timeout))
