"""python-socketio client (socketio.Client) against the Socket.IO echo server.

Run with Debian's interpreter, which has python3-socketio (+ python3-engineio,
python3-requests and python3-websocket):

    /usr/bin/python3 tests/integration/python/test_sio_python.py -v

The server under test is the command line in SIOC_ECHO (default: the Node
reference, node ref/sioc-echo.js); it is started on a free loopback port and
killed at the end. Behaviour of the server: see ref/sioc-echo.js.
"""
import os
import queue
import shlex
import shutil
import time
import unittest

import socketio

from common import Server, disconnect_and_wait

HERE = os.path.dirname(os.path.abspath(__file__))
REF_SIOC_ECHO = os.path.normpath(os.path.join(HERE, '..', 'ref', 'sioc-echo.js'))
WAIT = 10.0  # bound for every wait on the server
SID_RE = r'^[A-Za-z0-9_-]{20}$'


def sioc_echo_command():
    line = os.environ.get('SIOC_ECHO', '').strip()
    if line:
        return shlex.split(line)
    return [shutil.which('node') or 'node', REF_SIOC_ECHO]


class SioClient:
    """socketio.Client with every received event queued per namespace.

    Events without an explicit handler land in `events` as
    (namespace, event, args); disconnections as (namespace, 'disconnect', ()).
    """

    def __init__(self, server, transports, namespaces=('/',), auth=None, handlers=None):
        self.events = queue.Queue()
        self.backlog = []
        self.sio = socketio.Client(reconnection=False)
        for ns in namespaces:
            self.sio.on('*', self._catch_all(ns), namespace=ns)
            self.sio.on('disconnect', self._on_disconnect(ns), namespace=ns)
        for (ns, event), fn in (handlers or {}).items():
            self.sio.on(event, fn, namespace=ns)
        self.sio.connect(server.url, namespaces=list(namespaces), transports=transports,
                         auth=auth, wait_timeout=WAIT)

    def _catch_all(self, ns):
        def handler(event, *args):
            self.events.put((ns, event, args))
        return handler

    def _on_disconnect(self, ns):
        def handler():
            self.events.put((ns, 'disconnect', ()))
        return handler

    def take(self, ns, event, timeout=WAIT, match=None):
        """Args of the first (ns, event) received (optionally matching), waiting up to timeout."""
        deadline = time.monotonic() + timeout
        while True:
            for i, (n, e, args) in enumerate(self.backlog):
                if n == ns and e == event and (match is None or match(args)):
                    del self.backlog[i]
                    return args
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError('no %r event on %s within %.0f s (other events: %r)'
                                     % (event, ns, timeout, self.backlog))
            try:
                self.backlog.append(self.events.get(timeout=min(left, 0.2)))
            except queue.Empty:
                pass

    def close(self):
        try:
            disconnect_and_wait(self.sio, WAIT)  # a no-op disconnect when already closed
        finally:
            http = getattr(self.sio.eio, 'http', None)
            if http is not None:
                http.close()  # the client's requests.Session


class SioTests:
    """Shared tests; subclasses set TRANSPORTS."""

    TRANSPORTS = None
    server = None
    # Short heartbeat: a stuck long-poll ends soon when a client goes away.
    SERVER_FLAGS = ['--ping-interval', '1000', '--ping-timeout', '2000']
    # python-engineio 4.3.4 POSTs str bodies as Latin-1: polling stays ASCII
    # from client to server (see test_eio_python.py).
    TEXT = 'hello, world'

    @classmethod
    def setUpClass(cls):
        cls.server = Server(sioc_echo_command(), cls.SERVER_FLAGS)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop_checked()

    def client(self, **kwargs):
        c = SioClient(self.server, self.TRANSPORTS, **kwargs)
        self.addCleanup(c.close)
        self.assertEqual(c.sio.transport(), self.TRANSPORTS[0])
        return c

    def test_connect_root_and_custom_together(self):
        c = self.client(namespaces=('/', '/custom'), auth={'token': 'py', 'n': 1})
        root, custom = c.sio.get_sid('/'), c.sio.get_sid('/custom')
        self.assertRegex(root, SID_RE)
        self.assertRegex(custom, SID_RE)
        self.assertNotEqual(root, custom)
        self.assertEqual(c.take('/', 'auth'), ({'token': 'py', 'n': 1},))
        self.assertEqual(c.take('/custom', 'auth'), ({'token': 'py', 'n': 1},))
        self.assertEqual(c.sio.call('rooms', timeout=WAIT), [root])
        self.assertEqual(c.sio.call('rooms', namespace='/custom', timeout=WAIT), [custom])

    def test_emit_with_callback(self):
        c = self.client(namespaces=('/', '/custom'))
        got = queue.Queue()
        payload = (self.TEXT, 1, 2.5, None, True, [1, 'two'], {'k': {'deep': [None]}})
        c.sio.emit('message-with-ack', payload, callback=lambda *args: got.put(('/', args)))
        c.sio.emit('message-with-ack', 'single', namespace='/custom',
                   callback=lambda *args: got.put(('/custom', args)))
        results = dict(got.get(timeout=WAIT) for _ in range(2))
        self.assertEqual(results['/'], payload)
        self.assertEqual(results['/custom'], ('single',))

    def test_emit_message_back(self):
        c = self.client()
        c.sio.emit('message', (self.TEXT, {'a': [1, None]}))
        self.assertEqual(c.take('/', 'message-back'), (self.TEXT, {'a': [1, None]}))

    def test_call(self):
        c = self.client(namespaces=('/', '/custom'))
        self.assertEqual(c.sio.call('message-with-ack', self.TEXT, timeout=WAIT), self.TEXT)
        self.assertEqual(c.sio.call('message-with-ack', ('a', 2), timeout=WAIT), ('a', 2))
        self.assertIsNone(c.sio.call('message-with-ack', timeout=WAIT))
        self.assertEqual(c.sio.call('get-data', namespace='/custom', timeout=WAIT), {})
        self.assertIsNone(c.sio.call('set-data', {'py': True}, namespace='/custom', timeout=WAIT))
        self.assertEqual(c.sio.call('get-data', namespace='/custom', timeout=WAIT), {'py': True})
        self.assertEqual(c.sio.call('count', timeout=WAIT), 3)

    def test_server_ack_answered_by_python_handlers(self):
        handlers = {
            ('/', 'add'): lambda a, b: a + b,
            ('/', 'pair'): lambda: (5, 'ok'),
            ('/', 'nothing'): lambda: None,
            ('/', 'bin'): lambda x: bytes([x, x + 1]),
        }
        c = self.client(handlers=handlers)
        self.assertEqual(c.sio.call('server-ack', (2000, 'add', 2, 3), timeout=WAIT), {'response': [5]})
        self.assertEqual(c.sio.call('server-ack', (2000, 'pair'), timeout=WAIT), {'response': [5, 'ok']})
        self.assertEqual(c.sio.call('server-ack', (2000, 'nothing'), timeout=WAIT), {'response': []})
        self.assertEqual(c.sio.call('server-ack', (2000, 'bin', 7), timeout=WAIT), {'response': [b'\x07\x08']})

    def test_server_ack_timeout(self):
        # python-socketio acks every event that asks for it (even without a
        # handler), so "never answers" = a handler slower than the timeout.
        # (Handlers run on the client's read thread: keep it short.)
        c = self.client(handlers={('/', 'slow'): lambda: time.sleep(0.6)})
        start = time.monotonic()
        self.assertEqual(c.sio.call('server-ack', (300, 'slow'), timeout=WAIT),
                         {'error': 'operation has timed out'})
        self.assertGreaterEqual(time.monotonic() - start, 0.25)
        self.assertEqual(c.sio.call('message-with-ack', 'after', timeout=WAIT), 'after')

    def test_binary_round_trip(self):
        c = self.client()
        blob = bytes(range(256))
        c.sio.emit('message', blob)
        (back,) = c.take('/', 'message-back')
        self.assertIsInstance(back, bytes)
        self.assertEqual(back, blob)
        nested = {'bin': b'\x00\x01', 'list': [b'\xff', 'x', {'deeper': b''}]}
        c.sio.emit('message', ('lead', nested, b'tail'))
        self.assertEqual(c.take('/', 'message-back'), ('lead', nested, b'tail'))
        self.assertEqual(c.sio.call('message-with-ack', b'abc', timeout=WAIT), b'abc')
        self.assertEqual(c.sio.call('message-with-ack', (b'\x01', {'b': b'\x02'}), timeout=WAIT),
                         (b'\x01', {'b': b'\x02'}))

    def test_broadcast_between_python_clients(self):
        a = self.client(auth={'room': 'py-room'})
        b = self.client()
        b.sio.emit('to-room', ('py-room', 'news', 1, b'\x09'))
        self.assertEqual(a.take('/', 'news'), (1, b'\x09'))
        a.sio.emit('broadcast', ('bc', 'x'))
        self.assertEqual(b.take('/', 'bc'), ('x',))

    def test_client_disconnect(self):
        observer = self.client()
        c = self.client(namespaces=('/', '/custom'))
        sid = c.sio.get_sid('/')
        disconnect_and_wait(c.sio, WAIT)
        self.assertFalse(c.sio.connected)
        # python-socketio 5.7.2 queues a DISCONNECT per namespace, then aborts
        # the Engine.IO connection without flushing (eio.disconnect(abort=True)):
        # the server usually sees the transport close first (Node: "transport
        # close"), "client namespace disconnect" when the 41 made it out.
        left_sid, reason = observer.take('/', 'left', match=lambda args: args[0] == sid)
        self.assertEqual(left_sid, sid)
        self.assertIn(reason, ('transport close', 'client namespace disconnect'))
        # The other namespace went with it.
        self.assertFalse(c.sio.namespaces)

    def test_server_disconnect(self):
        observer = self.client()
        c = self.client(namespaces=('/', '/custom'))
        sid = c.sio.get_sid('/')
        c.sio.emit('disconnect-me', False)
        self.assertEqual(c.take('/', 'disconnect'), ())
        self.assertEqual(observer.take('/', 'left', match=lambda args: args[0] == sid),
                         (sid, 'server namespace disconnect'))
        # /custom stays connected.
        self.assertEqual(c.sio.call('message-with-ack', 'still', namespace='/custom', timeout=WAIT), 'still')

    def test_refused_connection(self):
        errors = queue.Queue()
        sio = socketio.Client(reconnection=False)
        sio.on('connect_error', errors.put, namespace='/')
        try:
            with self.assertRaises(socketio.exceptions.ConnectionError):
                sio.connect(self.server.url, transports=self.TRANSPORTS, auth={'refuse': True}, wait_timeout=1)
            self.assertEqual(errors.get(timeout=WAIT), {'message': 'refused', 'data': {'reason': 'test'}})
        finally:
            http = getattr(sio.eio, 'http', None)
            if http is not None:
                http.close()


class PollingTests(SioTests, unittest.TestCase):
    TRANSPORTS = ['polling']


class WebSocketTests(SioTests, unittest.TestCase):
    TRANSPORTS = ['websocket']
    TEXT = 'héllo wörld € 𝄞 日本'


if __name__ == '__main__':
    unittest.main()
