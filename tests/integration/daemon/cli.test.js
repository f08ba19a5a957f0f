// The `sioc` command line around the daemon: `sioc check-config FILE` (exit
// codes, "<file>:<line>: <path>: <what>" for unknown keys, bad values and
// unknown drivers), `sioc serve` refusing a bad config with the same message,
// and `sioc token` minting a JWT that the daemon accepts.
//
//   SIOC_BIN=build/sioc node --test tests/integration/daemon/
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import jwt from 'jsonwebtoken';
import {
  requireBin, runSioc, tempDir, writeConfig, baseConfig, startDaemon, presenceOf, makeUser, connectAs, JWT_SECRET, API_KEY,
} from '../lib/daemon.js';
import { ask } from '../lib/sio.js';

/** Config text with one key per line (so a line number can be checked), and the line of `needle`. */
function lineOf(text, needle) {
  const index = text.split('\n').findIndex((line) => line.includes(needle));
  assert.ok(index >= 0, `${needle} not in the config text`);
  return index + 1;
}

function configText(dir, patch) {
  const config = baseConfig(dir);
  patch(config);
  return `${JSON.stringify(config, null, 2)}\n`;
}

const ROOT_KEYS = 'listen, path, cors, limits, store, auth, api, cluster, recovery, log, channels, httpCompression, perMessageDeflate, admin, allowEIO3';

describe('sioc check-config', () => {
  let dir;
  before(() => {
    requireBin();
    dir = tempDir('cli');
  });

  it('a valid config: exit 0 and "<file>: ok" on stdout', async () => {
    const file = writeConfig(dir, baseConfig(dir, {
      channels: {
        '/': { driver: 'main', auth: 'jwt' },
        '/chat': { driver: 'chat', auth: 'any' },
        '/notifications': { driver: 'notifications', auth: 'jwt' },
        '/home': { driver: 'feed', auth: 'none' },
        '/off': { driver: 'chat', enabled: false },
      },
      auth: {
        jwt: { algorithm: 'HS256', secret: JWT_SECRET, leewaySeconds: 5 },
        session: { cookieName: 'connect.sid', secrets: ['new-secret', 'old-secret'], redis: { host: '127.0.0.1', port: 6379, prefix: 'sess:' } },
      },
      limits: { maxTextLength: 500, messagesPerSecond: 2.5, messageBurst: 5, typingTimeoutMs: 1000, historyLimit: 50 },
      cors: { origins: ['http://localhost:3000'], credentials: true },
      recovery: false,
    }), 'valid.json');
    const res = await runSioc(['check-config', file]);
    assert.deepEqual({ code: res.code, stdout: res.stdout, stderr: res.stderr }, { code: 0, stdout: `${file}: ok\n`, stderr: '' });
  });

  const cases = [
    {
      what: 'an unknown top-level key',
      patch: (c) => { c.listne = { port: 1 }; },
      needle: '"listne"',
      message: (file, line) => `${file}:${line}: listne: unknown key (expected one of: ${ROOT_KEYS})`,
    },
    {
      what: 'an unknown key in limits',
      patch: (c) => { c.limits.maxTextLen = 10; },
      needle: '"maxTextLen"',
      message: (file, line) => `${file}:${line}: limits.maxTextLen: unknown key (expected one of: maxPayload, maxBufferedBytes, pingIntervalMs, pingTimeoutMs, connectTimeoutMs, upgradeTimeoutMs, maxTextLength, messagesPerSecond, messageBurst, typingTimeoutMs, historyLimit, maxQueuedEvents, shutdownTimeoutMs)`,
    },
    {
      what: 'an unknown key in a channel',
      patch: (c) => { c.channels['/'].drvier = 'chat'; },
      needle: '"drvier"',
      message: (file, line) => `${file}:${line}: channels."/".drvier: unknown key (expected one of: driver, enabled, auth, options)`,
    },
    {
      what: 'a port that is a string',
      patch: (c) => { c.listen.port = '3000'; },
      needle: '"port": "3000"',
      message: (file, line) => `${file}:${line}: listen.port: expected an integer from 0 to 65535`,
    },
    {
      what: 'a port out of range',
      patch: (c) => { c.api.listen.port = 70000; },
      needle: '"port": 70000',
      message: (file, line) => `${file}:${line}: api.listen.port: expected an integer from 0 to 65535`,
    },
    {
      what: 'a bad boolean',
      patch: (c) => { c.recovery = 'yes'; },
      needle: '"recovery"',
      message: (file, line) => `${file}:${line}: recovery: expected true, false or an object`,
    },
    {
      what: 'an unknown recovery store',
      patch: (c) => { c.recovery = { store: 'disk' }; },
      needle: '"store": "disk"',
      message: (file, line) => `${file}:${line}: recovery.store: unknown store "disk" (expected embedded, memory or redis)`,
    },
    {
      what: 'the Redis recovery store without streams mode',
      patch: (c) => { c.recovery = { store: 'redis' }; },
      needle: '"store": "redis"',
      message: (file, line) => `${file}:${line}: recovery.store: redis needs cluster.mode "streams"`,
    },
    {
      what: 'a recovery window out of range',
      patch: (c) => { c.recovery = { maxDisconnectionDurationMs: 10 }; },
      needle: '"maxDisconnectionDurationMs"',
      message: (file, line) => `${file}:${line}: recovery.maxDisconnectionDurationMs: expected an integer from 1000 to 86400000`,
    },
    {
      what: 'a presence grace out of range',
      patch: (c) => { c.channels['/'].options = { presenceGraceMs: -1 }; },
      needle: '"presenceGraceMs"',
      message: (file, line) => `${file}:${line}: channels."/".options.presenceGraceMs: expected an integer from 0 to 600000 (milliseconds)`,
    },
    {
      what: 'an unknown driver',
      patch: (c) => { c.channels['/home'] = { driver: 'fed' }; },
      needle: '"fed"',
      message: (file, line) => `${file}:${line}: channels."/home".driver: unknown driver "fed" (expected main, chat, notifications, feed, bench or proxy)`,
    },
    {
      what: 'an unknown channel auth',
      patch: (c) => { c.channels['/'].auth = 'password'; },
      needle: '"password"',
      message: (file, line) => `${file}:${line}: channels."/".auth: unknown auth "password" (expected none, jwt, session, any or optional)`,
    },
    {
      what: 'an unknown JWT algorithm',
      patch: (c) => { c.auth.jwt.algorithm = 'none'; },
      needle: '"algorithm"',
      message: (file, line) => `${file}:${line}: auth.jwt.algorithm: unknown algorithm "none" (expected HS256, HS384, HS512, RS256 or ES256)`,
    },
    {
      what: 'an API key too short',
      patch: (c) => { c.api.key = 'short'; },
      needle: '"key"',
      message: (file, line) => `${file}:${line}: api.key: expected a key of 16 characters or more`,
    },
  ];
  for (const { what, patch, needle, message } of cases) {
    it(`refuses ${what}: exit 1 and "<file>:<line>: <path>: <what>" on stderr`, async () => {
      const text = configText(dir, patch);
      const file = writeConfig(dir, text, 'bad.json');
      const res = await runSioc(['check-config', file]);
      assert.deepEqual({ code: res.code, stdout: res.stdout, stderr: res.stderr }, { code: 1, stdout: '', stderr: `${message(file, lineOf(text, needle))}\n` });
    });
  }

  // Driver options and driver constraints are part of the config too: check-config must refuse
  // what serve refuses ("sioc check-config FILE does only that").
  const driverCases = [
    {
      what: 'an unknown chat option',
      patch: (c) => { c.channels['/'].options = { autoCreateRoom: true }; },
      needle: '"autoCreateRoom"',
      message: (file, line) => `${file}:${line}: channels."/".options.autoCreateRoom: unknown key (expected one of: autoCreateRooms, presence, presenceGraceMs)`,
    },
    {
      what: 'a chat channel without authentication',
      patch: (c) => { c.channels['/'].auth = 'none'; },
      needle: '"auth": "none"',
      message: (file, line) => `${file}:${line}: channels."/".auth: the chat driver acts for a user: auth must be jwt, session or any, not none`,
    },
    {
      what: 'a chat channel with optional authentication',
      patch: (c) => { c.channels['/'].auth = 'optional'; },
      needle: '"auth": "optional"',
      message: (file, line) => `${file}:${line}: channels."/".auth: the chat driver acts for a user: auth must be jwt, session or any, not optional`,
    },
    {
      what: 'a proxy channel without connectUrl or eventUrl',
      patch: (c) => { c.channels['/'] = { driver: 'proxy', auth: 'none', options: { timeoutMs: 1000 } }; },
      needle: '"/": {',
      message: (file, line) => `${file}:${line}: channels."/": the proxy driver needs options.connectUrl, options.eventUrl or both`,
    },
    {
      what: 'a proxy eventUrl that is not http',
      patch: (c) => { c.channels['/'] = { driver: 'proxy', auth: 'none', options: { eventUrl: 'file:///etc/passwd' } }; },
      needle: '"eventUrl"',
      message: (file, line) => `${file}:${line}: channels."/".options.eventUrl: expected an http:// or https:// URL`,
    },
  ];
  for (const { what, patch, needle, message } of driverCases) {
    it(`check-config refuses ${what} as serve does: exit 1, "<file>:<line>: ..."`, async () => {
      const text = configText(dir, patch);
      const file = writeConfig(dir, text, 'driver-bad.json');
      const expected = message(file, lineOf(text, needle));
      const res = await runSioc(['check-config', file]);
      assert.deepEqual({ code: res.code, stdout: res.stdout, stderr: res.stderr }, { code: 1, stdout: '', stderr: `${expected}\n` });
    });

    it(`sioc serve refuses ${what}: exit 1 with the message, no crash`, async () => {
      const text = configText(dir, patch);
      const file = writeConfig(dir, text, 'driver-bad-serve.json');
      const res = await runSioc(['serve', '--config', file]);
      assert.ok(res.stderr.includes(message(file, lineOf(text, needle))), res.stderr);
      assert.deepEqual({ code: res.code, signal: res.signal }, { code: 1, signal: null }, `stderr: ${res.stderr}`);
    });
  }

  // Issue 15: check-config runs every validation serve runs at start, the key material too.
  const startCases = [
    {
      what: 'an HS256 secret that is a PEM key',
      patch: (c) => { c.auth.jwt.secret = '-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n'; },
      message: () => 'HS256 secret is a PEM key; an HMAC secret must be a shared secret (use RS256 or ES256 with a public key)',
    },
    {
      what: 'an RS256 public key file that cannot be read',
      patch: (c) => { c.auth.jwt = { algorithm: 'RS256', publicKeyFile: '/nonexistent/key.pem' }; },
      message: () => 'auth.jwt.publicKeyFile: cannot read /nonexistent/key.pem',
    },
  ];
  for (const { what, patch, message } of startCases) {
    it(`check-config and serve both refuse ${what}, in the same words`, async () => {
      const file = writeConfig(dir, configText(dir, patch), 'start-bad.json');
      const check = await runSioc(['check-config', file]);
      assert.deepEqual({ code: check.code, stdout: check.stdout, stderr: check.stderr }, { code: 1, stdout: '', stderr: `${message()}\n` });
      const serve = await runSioc(['serve', '--config', file]);
      assert.ok(serve.stderr.includes(`sioc: ${message()}`), serve.stderr);
      assert.deepEqual({ code: serve.code, signal: serve.signal }, { code: 1, signal: null }, `stderr: ${serve.stderr}`);
    });
  }

  it('refuses JSON that does not parse, with file:line:column', async () => {
    const text = '{\n  "listen": {"port": 1},\n  "channels": {,}\n}\n';
    const file = writeConfig(dir, text, 'broken.json');
    const res = await runSioc(['check-config', file]);
    assert.equal(res.code, 1);
    assert.match(res.stderr, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3:\\d+: .+\\n$`));
  });

  it('refuses a missing file: exit 1, "<file>: No such file or directory"', async () => {
    const file = `${dir}/does-not-exist.json`;
    const res = await runSioc(['check-config', file]);
    assert.deepEqual({ code: res.code, stderr: res.stderr }, { code: 1, stderr: `${file}: No such file or directory\n` });
  });

  it('without a file argument: usage on stderr, exit 2', async () => {
    const res = await runSioc(['check-config']);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /^usage: sioc /m);
  });

  it('sioc serve refuses the same bad config, exit 1, with the same message', async () => {
    const text = configText(dir, (c) => { c.channels['/home'] = { driver: 'fed' }; });
    const file = writeConfig(dir, text, 'serve-bad.json');
    const res = await runSioc(['serve', '--config', file]);
    assert.equal(res.code, 1, `stderr: ${res.stderr}`);
    assert.equal(res.stdout, '', 'nothing listened');
    assert.ok(res.stderr.includes(`${file}:${lineOf(text, '"fed"')}: channels."/home".driver: unknown driver "fed"`), res.stderr);
  });
});

/** Whether a loopback TCP port is free now. */
async function portFree(port) {
  const srv = net.createServer();
  try {
    await new Promise((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(port, '127.0.0.1', resolve);
    });
    return true;
  } catch {
    return false;
  } finally {
    srv.close();
  }
}

describe('sioc serve without a config file', () => {
  it('the embedded default: StudyConnect chat on "/" at 127.0.0.1:3000, JWT from $SIOC_JWT_SECRET, ./sioc.db, the API on 3001 with $SIOC_API_KEY', async (t) => {
    requireBin();
    if (!(await portFree(3000)) || !(await portFree(3001))) {
      t.skip('ports 3000/3001 are in use on this machine: the embedded default listens there');
      return;
    }
    const dir = tempDir('default');
    const daemon = await startDaemon(dir, null, { env: { SIOC_JWT_SECRET: JWT_SECRET, SIOC_API_KEY: API_KEY } });
    t.after(() => daemon.stop());
    assert.deepEqual([daemon.port, daemon.apiPort], [3000, 3001]);
    assert.ok(fs.existsSync(path.join(dir, 'sioc.db')), 'SQLite in the working directory');
    const c = daemon.clients(t);
    const ann = makeUser('Ann');
    const bob = makeUser('Bob');
    const annSocket = await connectAs(c, ann);
    const bobSocket = await connectAs(c, bob);
    assert.equal((await ask(annSocket, 'room:join', 'lobby')).ok, true, 'rooms are created on first join');
    await ask(bobSocket, 'room:join', 'lobby');
    annSocket.emit('message:send', { roomId: 'lobby', text: 'default config' });
    assert.equal((await bobSocket.inbox.take('message:received'))[0].text, 'default config');
    c.close();
    await daemon.stopChecked();
  });
});

describe('sioc token', () => {
  before(() => requireBin());

  it('--secret S --subject 42 prints one HS256 JWT with sub "42" that jsonwebtoken verifies', async () => {
    const res = await runSioc(['token', '--secret', JWT_SECRET, '--subject', '42']);
    assert.equal(res.code, 0, `stderr: ${res.stderr}`);
    const token = res.stdout.trim();
    assert.match(res.stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/, 'one compact JWT on one line');
    const claims = jwt.verify(token, JWT_SECRET, { algorithms: ['HS256'] });
    assert.equal(claims.sub, '42');
    assert.equal(jwt.decode(token, { complete: true }).header.alg, 'HS256');
    assert.throws(() => jwt.verify(token, `${JWT_SECRET}-other`), /invalid signature/);
  });

  it('the minted token opens a JWT channel of a daemon with that secret; the user id is the subject', async (t) => {
    const res = await runSioc(['token', '--secret', JWT_SECRET, '--subject', '42', '--claim', 'firstName=Ann']);
    assert.equal(res.code, 0, `stderr: ${res.stderr}`);
    const token = res.stdout.trim();
    assert.equal(jwt.decode(token).firstName, 'Ann');
    const dir = tempDir('token');
    const daemon = await startDaemon(dir, baseConfig(dir));
    t.after(() => daemon.stop());
    const c = daemon.clients(t);
    const socket = await c.connect('websocket', '/', { auth: { token } });
    assert.ok(socket.connected);
    assert.equal((await presenceOf(daemon, '42')).status, 'online');
    // The daemon took "42" as the user: an emit to user 42 reaches this socket.
    const sent = await daemon.api('POST', '/users/42/emit', { event: 'hello', args: [{ to: 42 }] });
    assert.equal(sent.status, 200, sent.text);
    assert.deepEqual(await socket.inbox.take('hello'), [{ to: 42 }]);
    c.close();
    await daemon.stopChecked();
  });

  it('without a secret: usage error, exit 2', async () => {
    const res = await runSioc(['token', '--subject', '42'], { env: { SIOC_JWT_SECRET: '' } });
    assert.equal(res.code, 2, `stdout ${res.stdout} stderr ${res.stderr}`);
    assert.equal(res.stdout, '');
    assert.match(res.stderr, /^sioc token: /);
  });
});
