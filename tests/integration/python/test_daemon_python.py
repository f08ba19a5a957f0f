"""python-socketio client (socketio.Client) against `sioc serve` (issue 11): a StudyConnect
client written in Python, as a back-end worker or a test bot would be, joins a room and sends a
message at once (the events take effect in arrival order) and sees a numeric JWT id come back
as a number.

    SIOC_BIN=build/sioc /usr/bin/python3 tests/integration/python/test_daemon_python.py -v

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

import socketio

SECRET = 'python-daemon-secret-0123456789'
WAIT = 10.0  # bound for every wait on the daemon


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode()


def token(claims):
    header = b64url(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())
    body = b64url(json.dumps(dict(claims, iat=int(time.time()))).encode())
    signed = f'{header}.{body}'.encode()
    return f'{header}.{body}.' + b64url(hmac.new(SECRET.encode(), signed, hashlib.sha256).digest())


class Daemon:
    def __init__(self):
        binary = os.environ.get('SIOC_BIN')
        if not binary:
            raise unittest.SkipTest('SIOC_BIN is not set')
        self.dir = tempfile.mkdtemp(prefix='sioc-py-')
        config = {
            'listen': {'host': '127.0.0.1', 'port': 0},
            'store': {'driver': 'sqlite', 'path': os.path.join(self.dir, 'sioc.db')},
            'auth': {'jwt': {'algorithm': 'HS256', 'secret': SECRET}},
            'channels': {'/': {'driver': 'chat', 'auth': 'jwt'}},
        }
        path = os.path.join(self.dir, 'sioc.json')
        with open(path, 'w') as f:
            json.dump(config, f)
        self.proc = subprocess.Popen([binary, 'serve', '--config', path], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)
        line = self.proc.stdout.readline().decode()
        match = re.match(r'listening on 127\.0\.0\.1:(\d+)', line)
        if not match:
            self.stop()
            raise RuntimeError(f'sioc did not start: {line!r}')
        self.url = f'http://127.0.0.1:{match.group(1)}'
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
    @classmethod
    def setUpClass(cls):
        cls.daemon = Daemon()

    @classmethod
    def tearDownClass(cls):
        code = cls.daemon.stop()
        report = b''.join(cls.daemon.stderr).decode(errors='replace')
        if 'Sanitizer' in report or 'runtime error:' in report:
            raise AssertionError(f'sanitizer report from the daemon:\n{report}')
        if code != 0:
            raise AssertionError(f'the daemon exited {code} on SIGTERM')

    def connect(self, user):
        client = socketio.Client(reconnection=False)
        inbox = queue.Queue()
        client.on('message:received', lambda data: inbox.put(('message:received', data)))
        client.on('message:error', lambda data: inbox.put(('message:error', data)))
        client.connect(self.daemon.url, auth={'token': token(user)}, transports=['websocket'],
                       wait_timeout=WAIT)
        self.addCleanup(client.disconnect)
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


if __name__ == '__main__':
    unittest.main()
