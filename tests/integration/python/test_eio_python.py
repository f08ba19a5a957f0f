"""python-engineio client (engineio.Client) against the Engine.IO echo server.

Run with Debian's interpreter, which has python3-engineio (+ python3-requests
and python3-websocket for the client transports):

    /usr/bin/python3 tests/integration/python/test_eio_python.py -v

The server under test is the command line in EIO_ECHO (default: the Node
reference, node ref/eio-echo.js); it is started by the tests on a free
loopback port and killed at the end.
"""
import os
import queue
import shlex
import shutil
import threading
import time
import unittest

import engineio

from common import Server

HERE = os.path.dirname(os.path.abspath(__file__))
REF_EIO_ECHO = os.path.normpath(os.path.join(HERE, '..', 'ref', 'eio-echo.js'))
WAIT = 10.0  # bound for every wait on the server


def eio_echo_command():
    line = os.environ.get('EIO_ECHO', '').strip()
    if line:
        return shlex.split(line)
    return [shutil.which('node') or 'node', REF_EIO_ECHO]


def is_reference():
    forced = os.environ.get('EIO_ECHO_IS_REFERENCE')
    if forced in ('0', '1'):
        return forced == '1'
    return any(os.path.abspath(w) == REF_EIO_ECHO for w in eio_echo_command())


class EchoClient:
    """engineio.Client with a queue of received messages."""

    def __init__(self, server, transports):
        self.messages = queue.Queue()
        self.disconnected = threading.Event()
        self.client = engineio.Client()
        self.client.on('message', self.messages.put)
        self.client.on('disconnect', self.disconnected.set)
        self.client.connect(server.url, transports=transports)

    @property
    def transport(self):
        return self.client.transport()

    def send(self, data):
        self.client.send(data)

    def receive(self, count, timeout=WAIT):
        deadline = time.monotonic() + timeout
        got = []
        while len(got) < count:
            left = deadline - time.monotonic()
            if left <= 0 or self.disconnected.is_set():
                raise AssertionError('got %d of %d messages (disconnected: %s)'
                                     % (len(got), count, self.disconnected.is_set()))
            try:
                got.append(self.messages.get(timeout=min(left, 0.2)))
            except queue.Empty:
                pass
        return got

    def close(self):
        if self.client.state == 'connected':
            self.client.disconnect()
        if getattr(self.client, 'http', None) is not None:
            self.client.http.close()  # the client's requests.Session


class EchoTests:
    """Shared tests; subclasses set TRANSPORTS."""

    TRANSPORTS = None
    server = None

    # Short heartbeat: pings are exercised, and a stuck long-poll ends soon.
    SERVER_FLAGS = ['--ping-interval', '1000', '--ping-timeout', '2000']
    # python-engineio 4.3.4 hands a str body to requests, which encodes it as
    # Latin-1: non-Latin-1 text cannot be POSTed (UnicodeEncodeError) and
    # Latin-1 text would arrive as invalid UTF-8. Polling tests stay ASCII.
    TEXTS = ['hello', 'a:b, c', 'x' * 500]

    @classmethod
    def setUpClass(cls):
        cls.server = Server(eio_echo_command(), cls.SERVER_FLAGS)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop_checked()

    def connect(self):
        client = EchoClient(self.server, self.TRANSPORTS)
        self.addCleanup(client.close)
        self.assertEqual(client.transport, self.TRANSPORTS[0])
        self.assertRegex(client.client.sid, r'^[A-Za-z0-9_-]{20}$')
        return client

    def test_text_echo(self):
        client = self.connect()
        texts = self.TEXTS  # (no JSON-like text: the client would json.loads it)
        for t in texts:
            client.send(t)
        # Order: see test_burst_over_16_messages (the client's handler threads).
        self.assertEqual(sorted(client.receive(len(texts))), sorted(texts))

    def test_binary_echo(self):
        client = self.connect()
        blobs = [bytes(range(256)), b'\x00', os.urandom(1000)]
        for b in blobs:
            client.send(b)
        got = client.receive(len(blobs))
        for received in got:
            self.assertIsInstance(received, bytes)
        # Order: see test_burst_over_16_messages (the client's handler threads).
        self.assertEqual(sorted(got), sorted(blobs))

    def test_messages_in_order(self):
        # The 10 ms between sends is also what lets the client's handler threads
        # (one per message, see test_burst_over_16_messages) queue in wire order.
        client = self.connect()
        sent = ['m%d' % i if i % 2 else b'b%d' % i for i in range(10)]
        for m in sent:
            client.send(m)
            time.sleep(0.01)  # keep each POST small: see the burst test for > 16
        self.assertEqual(client.receive(len(sent)), sent)
        self.assertFalse(client.disconnected.is_set())

    def test_session_survives_heartbeats(self):
        client = self.connect()
        time.sleep(3.5)  # > pingInterval + pingTimeout: only answered pings keep it
        self.assertFalse(client.disconnected.is_set(), 'disconnected while idle')
        client.send('after pings')
        self.assertEqual(client.receive(1), ['after pings'])


class PollingTests(EchoTests, unittest.TestCase):
    TRANSPORTS = ['polling']

    @unittest.skipIf(is_reference(), 'Node reference flushes its whole buffer in one polling response; '
                                     'python-engineio aborts on more than 16 packets')
    def test_burst_over_16_messages(self):
        client = self.connect()
        count = 40
        for i in range(count):
            client.send('burst-%d' % i)
        # engineio.Client runs each 'message' handler in a thread of its own
        # (client.py: _trigger_event('message', ..., run_async=True)), so the
        # queue's order is the threads', not the wire's: compare as a multiset.
        self.assertEqual(sorted(client.receive(count)), sorted('burst-%d' % i for i in range(count)))
        time.sleep(0.3)
        self.assertFalse(client.disconnected.is_set(), 'client aborted (too many packets in one payload?)')
        client.send('after burst')
        self.assertEqual(client.receive(1), ['after burst'])


    def test_large_messages_compressed(self):
        # requests asks for gzip/deflate: answers over 1024 bytes come compressed
        # (httpCompression, on by default as in Node) and must still decode.
        client = self.connect()
        sent = ['x' * 5000, os.urandom(3000), 'y' * 1100]
        for m in sent:
            client.send(m)
            time.sleep(0.01)
        self.assertEqual(client.receive(len(sent)), sent)


class WebSocketTests(EchoTests, unittest.TestCase):
    TRANSPORTS = ['websocket']
    TEXTS = EchoTests.TEXTS + ['héllo wörld € 𝄞 日本']

    def test_burst_over_16_messages(self):
        client = self.connect()
        for i in range(40):
            client.send('burst-%d' % i)
        # Order: see the polling test above (the client's handler threads).
        self.assertEqual(sorted(client.receive(40)), sorted('burst-%d' % i for i in range(40)))


if __name__ == '__main__':
    unittest.main()
