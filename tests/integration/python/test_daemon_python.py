"""python-socketio client (socketio.Client) against `sioc serve` (issue 11): a StudyConnect
client written in Python, as a back-end worker or a test bot would be, joins a room and sends a
message at once (the events take effect in arrival order) and sees a numeric JWT id come back
as a number.

    SIOC_BIN=build/sioc /usr/bin/python3 tests/integration/python/test_daemon_python.py -v

TlsChatTest runs the same over https/wss (listen.tls) with a CA the test makes with the openssl
CLI, as issue 14 asks of the official clients.

The daemon is started on a free loopback port with a config in a temp dir and stopped at the
end. Tokens are HS256 JWTs made here (hmac), as the seed's back end signs them.
"""
import base64
import hashlib
import hmac
import json
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

import requests
import socketio

from common import disconnect_and_wait

SECRET = 'python-daemon-secret-0123456789'
WAIT = 10.0  # bound for every wait on the daemon


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode()


def token(claims):
    header = b64url(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())
    body = b64url(json.dumps(dict(claims, iat=int(time.time()))).encode())
    signed = f'{header}.{body}'.encode()
    return f'{header}.{body}.' + b64url(hmac.new(SECRET.encode(), signed, hashlib.sha256).digest())


def openssl(directory, *args):
    subprocess.run(['openssl', *args], cwd=directory, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


def make_certificates(directory):
    """A CA (ca.pem) and a server certificate for 127.0.0.1 it signed (server.pem, server.key),
    as tests/integration/daemon/tls.test.js makes them."""
    openssl(directory, 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
            '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj',
            '/CN=sioc python test CA')
    with open(os.path.join(directory, 'san.ext'), 'w') as f:
        f.write('subjectAltName=IP:127.0.0.1,DNS:localhost\n')
    openssl(directory, 'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
            '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost')
    openssl(directory, 'x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key',
            '-set_serial', '0x7101', '-days', '2', '-extfile', 'san.ext', '-out', 'server.pem')
    return {name: os.path.join(directory, f'{name}.pem') for name in ('ca', 'server')}


class Daemon:
    def __init__(self, tls=False):
        binary = os.environ.get('SIOC_BIN')
        if not binary:
            raise unittest.SkipTest('SIOC_BIN is not set')
        if tls and shutil.which('openssl') is None:
            raise unittest.SkipTest('the openssl CLI is not installed')
        self.dir = tempfile.mkdtemp(prefix='sioc-py-')
        config = {
            'listen': {'host': '127.0.0.1', 'port': 0},
            'store': {'driver': 'sqlite', 'path': os.path.join(self.dir, 'sioc.db')},
            'auth': {'jwt': {'algorithm': 'HS256', 'secret': SECRET}},
            'channels': {'/': {'driver': 'chat', 'auth': 'jwt'}},
        }
        self.ca = None
        if tls:
            files = make_certificates(self.dir)
            self.ca = files['ca']
            config['listen']['tls'] = {'cert': files['server'],
                                       'key': os.path.join(self.dir, 'server.key')}
        path = os.path.join(self.dir, 'sioc.json')
        with open(path, 'w') as f:
            json.dump(config, f)
        self.proc = subprocess.Popen([binary, 'serve', '--config', path], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)
        line = self.proc.stdout.readline().decode()
        match = re.match(r'listening on 127\.0\.0\.1:(\d+)', line)
        if not match:
            self.stop()
            raise RuntimeError(f'sioc did not start: {line!r} {self.proc.stderr.read()!r}')
        self.url = f'{"https" if tls else "http"}://127.0.0.1:{match.group(1)}'
        self.stderr = []
        threading.Thread(target=lambda: self.stderr.extend(self.proc.stderr), daemon=True).start()

    def stop(self):
        self.proc.terminate()
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
        return code


class ChatTest(unittest.TestCase):
    tls = False

    @classmethod
    def setUpClass(cls):
        cls.daemon = Daemon(tls=cls.tls)

    @classmethod
    def tearDownClass(cls):
        code = cls.daemon.stop()
        report = b''.join(cls.daemon.stderr).decode(errors='replace')
        if 'Sanitizer' in report or 'runtime error:' in report:
            raise AssertionError(f'sanitizer report from the daemon:\n{report}')
        if code != 0:
            raise AssertionError(f'the daemon exited {code} on SIGTERM')

    def connect(self, user, transports=('websocket',)):
        options = {}
        if self.daemon.ca is not None:
            # The test CA for both transports: requests verifies the polling requests with it,
            # and python-engineio hands a string `verify` to websocket-client as ca_certs.
            session = requests.Session()
            session.verify = self.daemon.ca
            # Or REQUESTS_CA_BUNDLE, when set, would replace the test CA for every request.
            session.trust_env = False
            self.addCleanup(session.close)
            options['http_session'] = session
        client = socketio.Client(reconnection=False, **options)
        inbox = queue.Queue()
        client.on('message:received', lambda data: inbox.put(('message:received', data)))
        client.on('message:error', lambda data: inbox.put(('message:error', data)))
        client.connect(self.daemon.url, auth={'token': token(user)}, transports=list(transports),
                       wait_timeout=WAIT)
        self.addCleanup(disconnect_and_wait, client, WAIT)
        return client, inbox

    def test_join_then_send_at_once_numeric_id(self):
        user = {'id': 7, 'firstName': 'Py', 'lastName': 'Thon'}
        client, inbox = self.connect(user)
        client.emit('room:join', 'py-room')
        client.emit('message:send', {'roomId': 'py-room', 'text': 'first'})
        client.emit('message:send', {'roomId': 'py-room', 'text': 'second'})
        got = [inbox.get(timeout=WAIT), inbox.get(timeout=WAIT)]
        self.assertEqual([event for event, _ in got], ['message:received'] * 2)
        self.assertEqual([data['text'] for _, data in got], ['first', 'second'])
        self.assertEqual(got[0][1]['sender']['id'], 7)
        self.assertIsInstance(got[0][1]['sender']['id'], int)


class TlsChatTest(ChatTest):
    """The same over https and wss (listen.tls, docs/operations.md "TLS"), the client trusting
    only the test's CA: a WebSocket-only client (wss), and one that starts on polling (https)
    and upgrades."""
    tls = True

    def test_polling_then_upgrade_over_https(self):
        client, inbox = self.connect({'id': 'py-tls', 'firstName': 'Py', 'lastName': 'Tls'},
                                     transports=('polling', 'websocket'))
        self.assertTrue(self.daemon.url.startswith('https://'))
        client.emit('room:join', 'py-tls-room')
        client.emit('message:send', {'roomId': 'py-tls-room', 'text': 'over https'})
        event, data = inbox.get(timeout=WAIT)
        self.assertEqual((event, data['text']), ('message:received', 'over https'))
        deadline = time.monotonic() + WAIT
        while client.transport() != 'websocket' and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(client.transport(), 'websocket')

    def test_an_untrusted_certificate_is_refused(self):
        client = socketio.Client(reconnection=False)  # the system's CAs only
        with self.assertRaises(socketio.exceptions.ConnectionError):
            client.connect(self.daemon.url, auth={'token': token({'id': 'x'})},
                           transports=['websocket'], wait_timeout=WAIT)


if __name__ == '__main__':
    unittest.main()
