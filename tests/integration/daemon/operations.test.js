// Operating the daemon (docs/operations.md): the probes GET /healthz and GET /readyz on the API
// listener (no key), and the JSON log format (log.format "json": one object per line, every
// line, whatever the message holds), next to the text format it replaces.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  requireBin, tempDir, baseConfig, startDaemon, makeUser, connectAs, sleep, writeConfig, unique,
  haveRedis, startRedis, tokenFor,
} from '../lib/daemon.js';
import { connectError, until } from '../lib/sio.js';
import { io as connectClient } from 'socket.io-client';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { request } from '../lib/http.js';
import { havePostgres, startPostgres } from '../lib/postgres.js';

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

describe('probes', () => {
  let daemon;
  before(async () => {
    requireBin();
    const dir = tempDir('probes');
    daemon = await startDaemon(dir, baseConfig(dir));
  });
  after(async () => {
    await daemon?.stopChecked();
  });

  it('GET /healthz needs no key and answers 200 {"status":"ok"}', async () => {
    const res = await daemon.api('GET', '/healthz', undefined, { key: null });
    assert.equal(res.status, 200);
    assert.match(res.header('content-type'), /^application\/json/);
    assert.deepEqual(res.json, { status: 'ok' });
  });

  it('GET /readyz needs no key: listening and the store answers', async (t) => {
    const c = daemon.clients(t);
    await connectAs(c, makeUser('Ready')); // the store is in use, not only opened
    const res = await daemon.api('GET', '/readyz', undefined, { key: null });
    assert.equal(res.status, 200);
    assert.deepEqual(res.json, { status: 'ok', checks: { listening: 'ok', store: 'ok' } });
  });

  it('HEAD works as for every GET route; other methods are 405 (with the key) or 401 (without)', async () => {
    const head = await daemon.api('HEAD', '/readyz', undefined, { key: null });
    assert.equal(head.status, 200);
    assert.equal(head.text, '');
    const post = await daemon.api('POST', '/healthz', {});
    assert.equal(post.status, 405);
    const anonymous = await daemon.api('POST', '/healthz', {}, { key: null });
    assert.equal(anonymous.status, 401);
  });
});

function jsonLines(stderr) {
  const lines = stderr.split('\n').filter((line) => line.length > 0);
  return lines.map((line) => {
    let object;
    assert.doesNotThrow(() => (object = JSON.parse(line)), `not one JSON object per line: ${JSON.stringify(line)}`);
    assert.deepEqual(Object.keys(object), ['time', 'level', 'message'], line);
    assert.match(object.time, ISO);
    assert.ok(['error', 'warn', 'info', 'debug'].includes(object.level), line);
    return object;
  });
}

describe('logs', () => {
  it('log.format "json": every stderr line is one JSON object {time, level, message}', async (t) => {
    requireBin();
    const dir = tempDir('log-json');
    const daemon = await startDaemon(dir, baseConfig(dir, { log: { level: 'debug', format: 'json' } }));
    let stopped = false;
    try {
      const c = daemon.clients(t);
      await connectAs(c, makeUser('Logan'));
      // Bytes a JSON encoder must escape, in a logged path (a refused key is logged with it).
      const odd = '/nope/a"b\\c%22';
      const res = await request(daemon.apiPort, { method: 'GET', path: odd, headers: [['Authorization', 'Bearer x']] });
      assert.equal(res.status, 401);
      await sleep(100);
      await daemon.stopChecked();
      stopped = true;
      const entries = jsonLines(daemon.stderr);
      const messages = entries.map((entry) => entry.message);
      assert.ok(messages.some((m) => /^listening on 127\.0\.0\.1:\d+\/socket\.io\//.test(m)), messages.join('\n'));
      assert.ok(messages.includes('stopping'), messages.join('\n'));
      assert.ok(messages.includes('stopped'), messages.join('\n'));
      const logged = entries.find((entry) => entry.message.includes('/nope/'));
      assert.ok(logged, `the refusal is logged:\n${messages.join('\n')}`);
      assert.equal(logged.level, 'warn'); // a wrong key is worth a warning
      assert.ok(logged.message.includes(odd), logged.message);
    } finally {
      if (!stopped) await daemon.stop();
    }
  });

  it('the default text format: "<time> <level> <message>" per line', async () => {
    requireBin();
    const dir = tempDir('log-text');
    const daemon = await startDaemon(dir, baseConfig(dir));
    await daemon.stopChecked();
    const lines = daemon.stderr.split('\n').filter((line) => line.length > 0);
    assert.ok(lines.length >= 3, daemon.stderr);
    for (const line of lines) {
      assert.match(line, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z (error|warn |info |debug) \S/, line);
    }
  });

  it('an unknown log.format is refused with the line', async () => {
    requireBin();
    const dir = tempDir('log-bad');
    await assert.rejects(
      startDaemon(dir, baseConfig(dir, { log: { level: 'info', format: 'xml' } })),
      /log\.format: unknown format "xml" \(expected text or json\)/);
  });
});

describe('SIGHUP', () => {
  const waitFor = async (daemon, pattern) => {
    for (let i = 0; i < 50 && !pattern.test(daemon.stderr); i++) await sleep(50);
    assert.match(daemon.stderr, pattern);
  };

  it('re-reads the file: log.level and log.format apply at once, connections stay', async (t) => {
    requireBin();
    const dir = tempDir('hup');
    const config = baseConfig(dir, { log: { level: 'info' } });
    const daemon = await startDaemon(dir, config);
    try {
      const c = daemon.clients(t);
      const socket = await connectAs(c, makeUser('Hup'));
      writeConfig(dir, { ...config, log: { level: 'debug', format: 'json' } });
      process.kill(daemon.child.pid, 'SIGHUP');
      await waitFor(daemon, /"message":"SIGHUP: [^"]*sioc\.json read again: log level debug, format json; 2 values changed"/);
      assert.doesNotMatch(daemon.stderr, /takes a restart/, 'only log changed');
      // Debug lines now appear (an API answer is logged at debug), as JSON.
      await daemon.api('GET', '/health');
      await waitFor(daemon, /"level":"debug","message":"api GET \/health from 127\.0\.0\.1: 200"/);
      assert.equal(socket.connected, true, 'the connection stays');
    } finally {
      await daemon.stopChecked();
    }
  });

  it('applies a new API key and the chat limits without dropping connections', async (t) => {
    requireBin();
    const dir = tempDir('hup-live');
    const config = baseConfig(dir);
    const daemon = await startDaemon(dir, config);
    try {
      const c = daemon.clients(t);
      const socket = await connectAs(c, makeUser('Live'));
      const room = unique('room');
      assert.equal((await socket.emitWithAck('room:join', room)).ok, true);
      assert.equal((await socket.emitWithAck('message:send', { roomId: room, text: 'x'.repeat(20) })).ok, true);
      const key = 'a-new-api-key-0123456789abcdef';
      writeConfig(dir, { ...config, api: { ...config.api, key }, limits: { ...config.limits, maxTextLength: 10 } });
      process.kill(daemon.child.pid, 'SIGHUP');
      await waitFor(daemon, /read again: log level info, format text; 2 values changed/);
      assert.match(daemon.stderr, /SIGHUP: api\.key changed/);
      assert.match(daemon.stderr, /SIGHUP: limits\.maxTextLength 2000 -> 10/);
      assert.doesNotMatch(daemon.stderr, /takes a restart/);
      assert.equal((await daemon.api('GET', '/rooms/none')).status, 401, 'the old key is refused');
      assert.equal((await daemon.api('GET', `/rooms/${room}`, undefined, { key })).status, 200, 'the new key works');
      // The same connection, now under the new limit.
      const refused = await socket.emitWithAck('message:send', { roomId: room, text: 'x'.repeat(20) });
      assert.equal(refused.ok, false);
      assert.equal(refused.error.message, 'Message too long');
      assert.equal((await socket.emitWithAck('message:send', { roomId: room, text: 'short' })).ok, true);
      assert.equal(socket.connected, true);
    } finally {
      await daemon.stopChecked();
    }
  });

  it('applies a new CORS list to the requests that follow', async () => {
    requireBin();
    const dir = tempDir('hup-cors');
    const config = baseConfig(dir);
    const daemon = await startDaemon(dir, config);
    const handshake = () => request(daemon.port, {
      path: '/socket.io/?EIO=4&transport=polling',
      headers: [['Origin', 'http://app.test']],
    });
    try {
      const before = await handshake();
      assert.equal(before.status, 200);
      assert.equal(before.header('access-control-allow-origin'), undefined, 'no CORS configured');
      writeConfig(dir, { ...config, cors: { origins: ['http://app.test'], credentials: true } });
      process.kill(daemon.child.pid, 'SIGHUP');
      await waitFor(daemon, /read again: log level info, format text; 1 value changed/);
      assert.match(daemon.stderr, /SIGHUP: cors changed/);
      assert.doesNotMatch(daemon.stderr, /takes a restart/);
      const after = await handshake();
      assert.equal(after.status, 200);
      assert.equal(after.header('access-control-allow-origin'), 'http://app.test');
      assert.equal(after.header('access-control-allow-credentials'), 'true');
      writeConfig(dir, config);
      process.kill(daemon.child.pid, 'SIGHUP');
      await waitFor(daemon, /SIGHUP: cors changed[\s\S]*SIGHUP: cors changed/);
      await sleep(50);
      const again = await handshake();
      assert.equal(again.header('access-control-allow-origin'), undefined, 'the list is gone again');
    } finally {
      await daemon.stopChecked();
    }
  });

  it('names the changes that need a restart, and keeps running on a file that no longer validates', async (t) => {
    requireBin();
    const dir = tempDir('hup-restart');
    const config = baseConfig(dir);
    const daemon = await startDaemon(dir, config);
    try {
      writeConfig(dir, { ...config, path: '/io/', limits: { ...config.limits, shutdownTimeoutMs: 6000 } });
      process.kill(daemon.child.pid, 'SIGHUP');
      await waitFor(daemon, /warn  SIGHUP: path, limits\.shutdownTimeoutMs changed in \S*sioc\.json: that takes a restart/);
      writeConfig(dir, '{"listen": {"port": 70000}}');
      process.kill(daemon.child.pid, 'SIGHUP');
      await waitFor(daemon, /error SIGHUP: .*listen\.port: expected an integer from 0 to 65535; the running configuration stays/);
      const res = await daemon.api('GET', '/readyz', undefined, { key: null });
      assert.equal(res.status, 200);
      const c = daemon.clients(t);
      await connectAs(c, makeUser('After'));
    } finally {
      await daemon.stopChecked();
    }
  });
});

// The Engine.IO limits apply to the sessions that open after the reload; an open session keeps
// those of its handshake (its client was told pingInterval, pingTimeout and maxPayload there).
describe('SIGHUP: the Engine.IO limits', () => {
  const waitFor = async (daemon, pattern) => {
    for (let i = 0; i < 50 && !pattern.test(daemon.stderr); i++) await sleep(50);
    assert.match(daemon.stderr, pattern);
  };
  /** The open packet of a new polling session: {sid, pingInterval, pingTimeout, maxPayload, ...}. */
  const handshake = async (port) => {
    const res = await request(port, { method: 'GET', path: '/socket.io/?EIO=4&transport=polling' });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.text[0], '0', res.text);
    return JSON.parse(res.text.slice(1));
  };
  /** A POST of `length` bytes of noop packets ("6" joined by the record separator). */
  const post = (port, sid, length) => request(port, {
    method: 'POST',
    path: `/socket.io/?EIO=4&transport=polling&sid=${sid}`,
    headers: [['Content-Type', 'text/plain;charset=UTF-8']],
    body: Array((length + 1) / 2).fill('6').join('\x1e'),
  });
  /** A socket.io-client over WebSocket that records when each server ping arrives. */
  const pinged = async (port, t) => {
    const socket = connectClient(`http://127.0.0.1:${port}/`, { forceNew: true, reconnection: false, transports: ['websocket'] });
    t.after(() => socket.disconnect());
    socket.pings = [];
    socket.io.on('ping', () => socket.pings.push(Date.now()));
    await new Promise((resolve, reject) => { socket.once('connect', resolve); socket.once('connect_error', reject); });
    return socket;
  };

  it('new sessions get the new pingInterval, pingTimeout, maxPayload; open ones keep their handshake\'s', async (t) => {
    requireBin();
    const dir = tempDir('hup-engine');
    const limits = { pingIntervalMs: 900, pingTimeoutMs: 5000, maxPayload: 100000 };
    const config = baseConfig(dir, { limits, channels: { '/': { driver: 'bench', auth: 'none', enabled: true } } });
    const daemon = await startDaemon(dir, config);
    try {
      const before = await handshake(daemon.port);
      assert.deepEqual([before.pingInterval, before.pingTimeout, before.maxPayload], [900, 5000, 100000]);
      const old = await pinged(daemon.port, t);
      writeConfig(dir, { ...config, limits: { ...limits, pingIntervalMs: 300, pingTimeoutMs: 4000, maxPayload: 2000, connectTimeoutMs: 30000, upgradeTimeoutMs: 8000, maxBufferedBytes: 4194304 } });
      process.kill(daemon.child.pid, 'SIGHUP');
      await waitFor(daemon, /read again: log level info, format text; 6 values changed/);
      assert.match(daemon.stderr, /info  SIGHUP: limits\.pingIntervalMs 900 -> 300 \(sessions that open from now on\)/);
      assert.match(daemon.stderr, /info  SIGHUP: limits\.maxPayload 100000 -> 2000 \(sessions that open from now on\)/);
      assert.match(daemon.stderr, /info  SIGHUP: limits\.maxBufferedBytes 8388608 -> 4194304 \(sessions that open from now on\)/);
      assert.doesNotMatch(daemon.stderr, /takes a restart/);

      const after = await handshake(daemon.port);
      assert.deepEqual([after.pingInterval, after.pingTimeout, after.maxPayload], [300, 4000, 2000]);
      const young = await pinged(daemon.port, t);
      const mark = old.pings.length;
      // Three more pings of the old session: each at least its 900 ms after the one before (a
      // server never pings early; load only delays), and meanwhile the new session, on 300 ms,
      // got more of them than the old one.
      await until(() => old.pings.length >= mark + 3, 'three more pings of the session opened before the reload', 10000);
      const gaps = old.pings.slice(mark - 1).map((at, i, all) => (i > 0 ? at - all[i - 1] : null)).slice(1);
      for (const gap of gaps) assert.ok(gap >= 850, `the old session keeps pingInterval 900: gaps ${gaps}`);
      const youngInWindow = young.pings.filter((at) => at > old.pings[mark] && at <= old.pings.at(-1)).length;
      assert.ok(youngInWindow >= 3, `the new session pinged every 300 ms: ${youngInWindow} pings in two of the old one's intervals`);
      assert.equal(old.connected, true, 'the connection opened before the reload stays');

      // maxPayload: the session of the first handshake may still POST up to 100000 bytes; the new one
      // only 2000 (413, the session stays, as for any body past the cap).
      assert.equal((await post(daemon.port, before.sid, 5001)).text, 'ok');
      const refused = await post(daemon.port, after.sid, 5001);
      assert.equal(refused.status, 413);
      assert.equal((await post(daemon.port, after.sid, 1999)).text, 'ok');
    } finally {
      await daemon.stopChecked();
    }
  });
});

describe('SIGHUP: channels', () => {
  const waitFor = async (daemon, pattern) => {
    for (let i = 0; i < 50 && !pattern.test(daemon.stderr); i++) await sleep(50);
    assert.match(daemon.stderr, pattern);
  };
  const disconnectReason = (socket) => new Promise((resolve, reject) => {
    socket.once('disconnect', resolve);
    setTimeout(() => reject(new Error('no disconnect within 5 s')), 5000).unref();
  });

  it('disabling a channel disconnects its sockets ("io server disconnect") and refuses new ones as an unknown namespace; enabling it again serves it', async (t) => {
    requireBin();
    const dir = tempDir('hup-channels');
    const channels = { '/': { driver: 'chat', auth: 'jwt' }, '/notes': { driver: 'notifications', auth: 'jwt', enabled: true } };
    const config = baseConfig(dir, { channels });
    const daemon = await startDaemon(dir, config);
    try {
      const c = daemon.clients(t);
      const chat = await connectAs(c, makeUser('Stays'));
      const notes = await connectAs(c, makeUser('Goes'), { nsp: '/notes' });
      const gone = disconnectReason(notes);
      writeConfig(dir, { ...config, channels: { ...channels, '/notes': { ...channels['/notes'], enabled: false } } });
      process.kill(daemon.child.pid, 'SIGHUP');
      await waitFor(daemon, /info  SIGHUP: channel \/notes disabled: 1 socket disconnected, new ones refused/);
      assert.match(daemon.stderr, /read again: log level info, format text; 1 value changed/);
      assert.doesNotMatch(daemon.stderr, /takes a restart/);
      assert.equal(await gone, 'io server disconnect');
      assert.equal(chat.connected, true, 'the other channel keeps its sockets');
      // Refused exactly as a namespace that was never configured.
      const refused = c.socket(c.manager('websocket'), '/notes', { auth: { token: tokenFor(makeUser('Late')) } });
      const never = c.socket(c.manager('websocket'), '/never', { auth: { token: tokenFor(makeUser('Late')) } });
      const [refusal, unknownRefusal] = await Promise.all([connectError(refused), connectError(never)]);
      assert.equal(refusal.message, 'Invalid namespace');
      assert.equal(refusal.message, unknownRefusal.message);
      assert.deepEqual(refusal.data, unknownRefusal.data);
      const health = await daemon.api('GET', '/health');
      assert.deepEqual(health.json.channels.map((channel) => channel.name), ['/'], 'listed as if not configured');

      writeConfig(dir, config);
      process.kill(daemon.child.pid, 'SIGHUP');
      await waitFor(daemon, /info  SIGHUP: channel \/notes enabled/);
      const back = await connectAs(c, makeUser('Back'), { nsp: '/notes' });
      assert.equal(back.connected, true);
    } finally {
      await daemon.stopChecked();
    }
  });

  it('enabling a channel disabled since the start sets it up: its driver answers', async (t) => {
    requireBin();
    const dir = tempDir('hup-channel-on');
    const channels = { '/': { driver: 'notifications', auth: 'jwt' }, '/chat': { driver: 'chat', auth: 'jwt', enabled: false } };
    const config = baseConfig(dir, { channels });
    const daemon = await startDaemon(dir, config);
    try {
      const c = daemon.clients(t);
      const before = c.socket(c.manager('websocket'), '/chat', { auth: { token: tokenFor(makeUser('Early')) } });
      assert.equal((await connectError(before)).message, 'Invalid namespace');
      writeConfig(dir, { ...config, channels: { ...channels, '/chat': { ...channels['/chat'], enabled: true } } });
      process.kill(daemon.child.pid, 'SIGHUP');
      await waitFor(daemon, /info  SIGHUP: channel \/chat enabled/);
      assert.match(daemon.stderr, /info  channel \/chat: driver chat, auth jwt/);
      const socket = await connectAs(c, makeUser('Chatter'), { nsp: '/chat' });
      const room = unique('room');
      assert.equal((await socket.emitWithAck('room:join', room)).ok, true);
      assert.equal((await socket.emitWithAck('message:send', { roomId: room, text: 'hello' })).ok, true);
    } finally {
      await daemon.stopChecked();
    }
  });
});

describe('readiness and the database', { skip: havePostgres() ? false : 'PostgreSQL is not installed (scripts/install-deps --test)' }, () => {
  it('/readyz is 503 within its 2 s bound while PostgreSQL is down, /healthz stays 200', async () => {
    requireBin();
    const pg = await startPostgres();
    const dir = tempDir('ready-pg');
    let daemon;
    try {
      daemon = await startDaemon(dir, baseConfig(dir, { store: { driver: 'postgres', url: pg.url } }));
      const ready = await daemon.api('GET', '/readyz', undefined, { key: null });
      assert.equal(ready.status, 200, ready.text);
      await pg.stop();
      const started = Date.now();
      const down = await daemon.api('GET', '/readyz', undefined, { key: null });
      const took = Date.now() - started;
      assert.equal(down.status, 503, down.text);
      assert.equal(down.json.status, 'unavailable');
      assert.equal(down.json.checks.listening, 'ok');
      assert.notEqual(down.json.checks.store, 'ok');
      assert.ok(took < 4000, `answered in ${took} ms`);
      const live = await daemon.api('GET', '/healthz', undefined, { key: null });
      assert.equal(live.status, 200);
    } finally {
      if (daemon) {
        const exit = await daemon.stop();
        assert.doesNotMatch(daemon.stderr, /ERROR: (Address|Leak)Sanitizer|runtime error:/);
        assert.notEqual(exit, null);
      }
      await pg.stop().catch(() => {});
    }
  });

  it('PostgreSQL down and up again: /readyz 503 and chat answers unavailable, then 200 and chat works, nothing stored twice', async (t) => {
    requireBin();
    const pg = await startPostgres();
    const dir = tempDir('ready-pg-up');
    let daemon;
    try {
      daemon = await startDaemon(dir, baseConfig(dir, { store: { driver: 'postgres', url: pg.url } }));
      const socket = await connectAs(daemon.clients(t), makeUser('Steady'));
      const room = unique('room');
      assert.equal((await socket.emitWithAck('room:join', room)).ok, true);
      const send = (text) => socket.timeout(10000).emitWithAck('message:send', { roomId: room, text });
      assert.equal((await send('before')).ok, true);
      pg.down();
      const down = await daemon.api('GET', '/readyz', undefined, { key: null });
      assert.equal(down.status, 503, down.text);
      assert.equal(down.json.checks.listening, 'ok');
      const refused = await send('during');
      assert.equal(refused.ok, false, JSON.stringify(refused));
      assert.equal(refused.error.code, 'unavailable', JSON.stringify(refused));
      pg.up();
      // Back within the reconnect backoff (100 ms doubling to 5 s, docs/store.md); bounded at 30 s.
      let ready;
      const deadline = Date.now() + 30000;
      do {
        ready = await daemon.api('GET', '/readyz', undefined, { key: null });
        if (ready.status !== 200) await sleep(250);
      } while (ready.status !== 200 && Date.now() < deadline);
      assert.equal(ready.status, 200, ready.text);
      const after = await send('after');
      assert.equal(after.ok, true, JSON.stringify(after));
      const rows = await pg.rows('SELECT m.text FROM sioc.messages m JOIN sioc.rooms r ON r.id = m.room_id WHERE r.name = $1 OR r.id = $1 ORDER BY m.seq', [room]);
      assert.deepEqual(rows.map((r) => r.text), ['before', 'after']);
      const history = await socket.timeout(10000).emitWithAck('room:history', { roomId: room });
      assert.deepEqual(history.messages.map((m) => m.text), ['before', 'after']);
    } finally {
      if (daemon) await daemon.stopChecked();
      await pg.stop();
    }
  });

  it('/readyz is 503 after 2 s when the database hangs (every PostgreSQL process stopped)', async () => {
    requireBin();
    const pg = await startPostgres();
    const dir = tempDir('ready-pg-hang');
    let daemon;
    let pids = [];
    const signal = (name) => {
      for (const pid of pids) {
        try {
          process.kill(pid, name);
        } catch {
          // gone
        }
      }
    };
    try {
      daemon = await startDaemon(dir, baseConfig(dir, { store: { driver: 'postgres', url: pg.url } }));
      assert.equal((await daemon.api('GET', '/readyz', undefined, { key: null })).status, 200);
      const postmaster = Number(fs.readFileSync(path.join(pg.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
      const children = execFileSync('ps', ['-o', 'pid=', '--ppid', String(postmaster)], { encoding: 'utf8' });
      pids = [postmaster, ...children.split('\n').map(Number).filter(Boolean)];
      signal('SIGSTOP');
      const started = Date.now();
      const hung = await daemon.api('GET', '/readyz', undefined, { key: null });
      const took = Date.now() - started;
      assert.equal(hung.status, 503, hung.text);
      assert.deepEqual(hung.json, { status: 'unavailable', checks: { listening: 'ok', store: 'no answer within 2000 ms' } });
      assert.ok(took >= 1900 && took < 4000, `answered in ${took} ms`);
      assert.equal((await daemon.api('GET', '/healthz', undefined, { key: null })).status, 200);
      signal('SIGCONT');
      pids = [];
      // The late answer of the first probe goes nowhere; the next probe is ready again.
      let again;
      for (let i = 0; i < 20; i++) {
        again = await daemon.api('GET', '/readyz', undefined, { key: null });
        if (again.status === 200) break;
        await sleep(250);
      }
      assert.equal(again.status, 200, again.text);
    } finally {
      signal('SIGCONT');
      if (daemon) await daemon.stopChecked();
      await pg.stop();
    }
  });
});

describe('readiness and the session Redis', { skip: haveRedis() ? false : 'redis-server is not installed' }, () => {
  it('with session auth, /readyz checks Redis: 503 "redis unavailable" while it is down, 200 once back', async () => {
    requireBin();
    let redis = await startRedis();
    const port = redis.port;
    const dir = tempDir('ready-redis');
    const daemon = await startDaemon(dir, baseConfig(dir, {
      auth: {
        jwt: { algorithm: 'HS256', secret: 'integration-secret-0123456789abcdef' },
        session: { cookieName: 'connect.sid', secrets: ['a-session-secret'], redis: { host: '127.0.0.1', port } },
      },
      channels: { '/': { driver: 'chat', auth: 'any' } },
    }));
    const readyz = () => daemon.api('GET', '/readyz', undefined, { key: null });
    const until = async (status) => {
      let res;
      for (let i = 0; i < 60; i++) {
        res = await readyz();
        if (res.status === status) return res;
        await sleep(100);
      }
      return res;
    };
    try {
      const up = await until(200);
      assert.equal(up.status, 200, up.text);
      assert.deepEqual(up.json.checks, { listening: 'ok', store: 'ok', sessions: 'ok' });
      await redis.stop();
      redis = null;
      const down = await until(503);
      assert.equal(down.status, 503, down.text);
      assert.deepEqual(down.json, { status: 'unavailable', checks: { listening: 'ok', store: 'ok', sessions: 'redis unavailable' } });
      assert.equal((await daemon.api('GET', '/healthz', undefined, { key: null })).status, 200);
      redis = await startRedis({ port });
      const back = await until(200);
      assert.equal(back.status, 200, back.text);
    } finally {
      await daemon.stopChecked();
      await redis?.stop();
    }
  });
});

describe('readiness and the cluster Redis', { skip: haveRedis() ? false : 'redis-server is not installed' }, () => {
  it('with a cluster, /readyz checks its Redis: 503 "redis unavailable" while it is down, 200 once back, connections kept', async (t) => {
    requireBin();
    let redis = await startRedis();
    const port = redis.port;
    const dir = tempDir('ready-cluster');
    const daemon = await startDaemon(dir, baseConfig(dir, { cluster: { redis: { url: `redis://127.0.0.1:${port}` } } }));
    const readyz = () => daemon.api('GET', '/readyz', undefined, { key: null });
    const until = async (status) => {
      let res;
      for (let i = 0; i < 60; i++) {
        res = await readyz();
        if (res.status === status) return res;
        await sleep(100);
      }
      return res;
    };
    try {
      const up = await until(200);
      assert.equal(up.status, 200, up.text);
      assert.deepEqual(up.json, { status: 'ok', checks: { listening: 'ok', store: 'ok', cluster: 'ok' } });
      const c = daemon.clients(t);
      const socket = await connectAs(c, makeUser('Clustered'));
      await redis.stop();
      redis = null;
      const down = await until(503);
      assert.equal(down.status, 503, down.text);
      assert.deepEqual(down.json, { status: 'unavailable', checks: { listening: 'ok', store: 'ok', cluster: 'redis unavailable' } });
      assert.equal((await daemon.api('GET', '/healthz', undefined, { key: null })).status, 200);
      redis = await startRedis({ port });
      // The adapter reconnects with backoff (up to its maximum): bounded by until()'s 6 s.
      const back = await until(200);
      assert.equal(back.status, 200, back.text);
      assert.equal(back.json.checks.cluster, 'ok');
      assert.equal(socket.connected, true, 'local clients stay connected through the outage');
    } finally {
      await daemon.stopChecked();
      await redis?.stop();
    }
  });
});

// A Redis that takes the TCP connection and refuses every command (redis-server --requirepass):
// a wrong password in the URL (WRONGPASS for our AUTH) or none (NOAUTH for the first command) is
// not ready, the log says why, and the right password is ready.
describe('readiness and a Redis that refuses AUTH', { skip: haveRedis() ? false : 'redis-server is not installed' }, () => {
  const PASSWORD = 'the-right-password';
  let redis;
  before(async () => {
    redis = await startRedis({ requirepass: PASSWORD });
  });
  after(async () => {
    await redis?.stop();
  });

  const sessionAuth = (redisOptions) => ({
    jwt: { algorithm: 'HS256', secret: 'integration-secret-0123456789abcdef' },
    session: { cookieName: 'connect.sid', secrets: ['a-session-secret'], redis: { host: '127.0.0.1', port: redis.port, ...redisOptions } },
  });

  // The same password for both Redis clients of a node: the session store and the cluster.
  const cases = [
    ['a wrong password', { password: 'wrong' }, ':wrong@', /WRONGPASS/],
    ['no password', {}, '', /NOAUTH/],
  ];
  for (const [what, sessionRedis, userinfo, reason] of cases) {
    it(`${what}: /readyz 503 naming "sessions" and "cluster", and the log says ${reason.source}`, async () => {
      requireBin();
      const dir = tempDir('ready-auth');
      const daemon = await startDaemon(dir, baseConfig(dir, {
        auth: sessionAuth(sessionRedis),
        cluster: { redis: { url: `redis://${userinfo}127.0.0.1:${redis.port}` } },
        channels: { '/': { driver: 'chat', auth: 'any' } },
      }));
      try {
        // Both clients have had their answer once each logged its refusal.
        for (let i = 0; i < 50 && !(/session store: .*refused/.test(daemon.stderr) && /cluster: .*refused/.test(daemon.stderr)); i++) await sleep(100);
        const res = await daemon.api('GET', '/readyz', undefined, { key: null });
        assert.equal(res.status, 503, res.text);
        assert.deepEqual(res.json, { status: 'unavailable', checks: { listening: 'ok', store: 'ok', sessions: 'redis unavailable', cluster: 'redis unavailable' } });
        const sessionLine = daemon.stderr.split('\n').find((line) => /session store: redis 127\.0\.0\.1:\d+ refused/.test(line));
        assert.match(sessionLine ?? '', reason, daemon.stderr);
        const clusterLines = daemon.stderr.split('\n').filter((line) => /cluster: .* connection to 127\.0\.0\.1:\d+.* refused/.test(line));
        assert.ok(clusterLines.length >= 2 && clusterLines.every((line) => reason.test(line)), daemon.stderr);
        // Still refused a few retries later, and logged once per connection, not on every retry.
        await sleep(1000);
        assert.equal((await daemon.api('GET', '/readyz', undefined, { key: null })).status, 503);
        assert.equal(daemon.stderr.split('\n').filter((line) => /session store: .*refused/.test(line)).length, 1, daemon.stderr);
        assert.equal(daemon.stderr.split('\n').filter((line) => /cluster: publish connection.*refused/.test(line)).length, 1, daemon.stderr);
        assert.equal((await daemon.api('GET', '/healthz', undefined, { key: null })).status, 200);
      } finally {
        await daemon.stopChecked();
      }
    });
  }

  it('the right password: /readyz 200', async () => {
    requireBin();
    const dir = tempDir('ready-auth-ok');
    const daemon = await startDaemon(dir, baseConfig(dir, {
      auth: sessionAuth({ password: PASSWORD }),
      cluster: { redis: { url: `redis://:${PASSWORD}@127.0.0.1:${redis.port}` } },
      channels: { '/': { driver: 'chat', auth: 'any' } },
    }));
    try {
      let res;
      for (let i = 0; i < 50 && (res = await daemon.api('GET', '/readyz', undefined, { key: null })).status !== 200; i++) await sleep(100);
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.json.checks, { listening: 'ok', store: 'ok', sessions: 'ok', cluster: 'ok' });
    } finally {
      await daemon.stopChecked();
    }
  });
});
