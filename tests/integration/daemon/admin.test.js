// The @socket.io/admin-ui 0.5.1 protocol (protocol-notes §6, include/sioc_admin.h), spoken by the
// official socket.io-client to the admin namespace of `sioc serve` and, with the same assertions,
// to Node's socket.io with instrument() from @socket.io/admin-ui: basic authentication with a
// bcrypt hash and session ids, config, server_stats and its aggregated events, all_sockets and
// the development-mode events, and the actions (emit, join, leave, _disconnect) on the sockets
// of a channel. The application side is the bench driver's echo and join (daemon/drivers/bench.c),
// which the Node server implements the same way.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import os from 'node:os';
import bcrypt from 'bcryptjs';
import { Server } from 'socket.io';
import { instrument } from '@socket.io/admin-ui';
import { io as connectClient } from 'socket.io-client';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnListening, RunningServer, LISTENING } from '../lib/server.js';
import { createClient } from 'redis';
import {
  requireBin, tempDir, baseConfig, startDaemon, writeConfig, runSioc, haveRedis, startRedis, ISO_RE,
} from '../lib/daemon.js';
import { connected, connectError, until } from '../lib/sio.js';

const USERNAME = 'admin';
const PASSWORD = 'correct horse battery staple';
// bcryptjs writes $2a$; libxcrypt reads $2a$ and $2b$ alike (the same hash for such a password).
const HASH_2A = bcrypt.hashSync(PASSWORD, 8);
const HASH_2B = HASH_2A.replace(/^\$2a\$/, '$2b$');
const DEV_FEATURES = ['EMIT', 'JOIN', 'LEAVE', 'DISCONNECT', 'MJOIN', 'MLEAVE', 'MDISCONNECT', 'AGGREGATED_EVENTS', 'ALL_EVENTS'];
const STATS_KEYS = ['aggregatedEvents', 'clientsCount', 'hostname', 'namespaces', 'pid', 'pollingClientsCount', 'serverId', 'uptime'];
const HANDSHAKE_KEYS = ['address', 'headers', 'issued', 'query', 'secure', 'time', 'url', 'xdomain'];
const STEP_MS = 5000;

// ---------------------------------------------------------------------------
// The two servers under test

async function startSioc({ mode = 'development', hash = HASH_2B } = {}) {
  requireBin();
  const dir = tempDir('admin');
  const daemon = await startDaemon(dir, baseConfig(dir, {
    channels: { '/': { driver: 'bench', auth: 'none', enabled: true } },
    admin: { auth: { username: USERNAME, passwordHash: hash }, mode },
  }));
  return { port: daemon.port, pid: daemon.child.pid, stop: () => daemon.stopChecked() };
}

async function startNode({ mode = 'development' } = {}) {
  const httpServer = http.createServer();
  const io = new Server(httpServer);
  io.on('connection', (socket) => {
    socket.on('echo', (...args) => {
      const ack = typeof args.at(-1) === 'function' ? args.pop() : null;
      ack?.(...args);
    });
    socket.on('join', (room, ack) => {
      socket.join(room);
      ack?.();
    });
  });
  instrument(io, { auth: { type: 'basic', username: USERNAME, password: HASH_2A }, mode });
  await new Promise((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  return {
    port: httpServer.address().port,
    pid: process.pid,
    stop: () => new Promise((resolve) => { io.close(); httpServer.close(() => resolve()); }),
  };
}

// ---------------------------------------------------------------------------
// Clients

/** Every event an admin socket receives, in order, as [name, ...args]. */
class Recorder {
  constructor(socket) {
    this.events = [];
    socket.onAny((...event) => this.events.push(event));
  }

  /** Resolves with the first event from `from` on that `match`es (bounded). */
  async next(match, what, from = 0) {
    let found;
    await until(() => (found = this.events.slice(from).find(match)) !== undefined, what, STEP_MS);
    return found;
  }

  mark() {
    return this.events.length;
  }
}

function admin(port, auth, t) {
  const socket = connectClient(`http://127.0.0.1:${port}/admin`, {
    forceNew: true, reconnection: false, transports: ['websocket'], auth, timeout: STEP_MS,
  });
  socket.recorder = new Recorder(socket);
  t.after(() => socket.disconnect());
  return socket;
}

function app(port, t, opts = {}) {
  const socket = connectClient(`http://127.0.0.1:${port}/`, { forceNew: true, reconnection: false, transports: ['websocket'], timeout: STEP_MS, ...opts });
  t.after(() => socket.disconnect());
  return socket;
}

const eventOf = (name, ...args) => (event) => event[0] === name && args.every((arg, i) => arg === undefined || event[i + 1] === arg);

// ---------------------------------------------------------------------------
// The assertions, for both servers

function adminSuite(name, kind, start) {
  describe(`admin UI protocol: ${name}`, () => {
    let server;
    before(async () => {
      server = await start();
    });
    after(async () => {
      await server?.stop();
    });

    it('refuses a wrong password or none with connect_error "invalid credentials"', async (t) => {
      for (const auth of [{ username: USERNAME, password: 'wrong' }, { username: 'root', password: PASSWORD }, {}, { sessionId: 'feedfacefeedface' }]) {
        const err = await connectError(admin(server.port, auth, t), STEP_MS);
        assert.equal(err.message, 'invalid credentials', JSON.stringify(auth));
      }
    });

    it('logs in with the password: session, config, all_sockets; then with the session id alone', async (t) => {
      const client = app(server.port, t);
      await connected(client);
      await client.timeout(STEP_MS).emitWithAck('join', 'before-admin');
      const socket = admin(server.port, { username: USERNAME, password: PASSWORD }, t);
      await connected(socket, STEP_MS);
      const session = await socket.recorder.next(eventOf('session'), 'session');
      assert.match(session[1], /^[0-9a-f]{16}$/);
      const config = await socket.recorder.next(eventOf('config'), 'config');
      assert.deepEqual(config[1], { supportedFeatures: DEV_FEATURES });
      const [, sockets] = await socket.recorder.next(eventOf('all_sockets'), 'all_sockets');
      const mine = sockets.find((s) => s.id === client.id);
      assert.ok(mine, `the app socket is in all_sockets: ${JSON.stringify(sockets)}`);
      assert.deepEqual(Object.keys(mine).sort(), ['clientId', 'data', 'handshake', 'id', 'nsp', 'rooms', 'transport']);
      assert.equal(mine.clientId, client.io.engine.id.slice(0, 12));
      assert.equal(mine.transport, 'websocket');
      assert.equal(mine.nsp, '/');
      assert.deepEqual(mine.data, {});
      assert.deepEqual(mine.rooms, [client.id, 'before-admin']);
      assert.deepEqual(Object.keys(mine.handshake).sort(), HANDSHAKE_KEYS);
      assert.equal(mine.handshake.address, '127.0.0.1');
      assert.equal(mine.handshake.secure, false);
      assert.equal(mine.handshake.query.transport, 'websocket');
      const self = sockets.find((s) => s.id === socket.id);
      assert.equal(self?.nsp, '/admin', 'the admin socket itself is listed');

      const again = admin(server.port, { sessionId: session[1] }, t);
      await connected(again, STEP_MS);
      await again.recorder.next(eventOf('config'), 'config with the session id');
      assert.equal(again.recorder.events.find(eventOf('session')), undefined, 'no new session for a session id');
    });

    it('server_stats every 2 s with the fields and aggregated events of instrument()', async (t) => {
      const socket = admin(server.port, { username: USERNAME, password: PASSWORD }, t);
      await connected(socket, STEP_MS);
      const first = await socket.recorder.next(eventOf('server_stats'), 'a first server_stats', 0);
      const firstAt = Date.now();
      const mark = socket.recorder.mark();
      // Known traffic in the next window: one connection, its CONNECT and one event.
      const client = app(server.port, t, { autoConnect: false });
      client.io.open();
      const sent = [];
      client.io.engine.on('packetCreate', (p) => p.type === 'message' && sent.push(p.data));
      client.connect();
      await connected(client);
      assert.deepEqual(await client.timeout(STEP_MS).emitWithAck('echo', 'stats'), 'stats');
      const [, stats] = await socket.recorder.next(eventOf('server_stats'), 'the next server_stats', mark);
      const interval = Date.now() - firstAt;
      assert.ok(interval > 1000 && interval < 3500, `server_stats ${interval} ms apart`);
      assert.deepEqual(Object.keys(stats).sort(), STATS_KEYS);
      assert.deepEqual(Object.keys(first[1]).sort(), STATS_KEYS);
      assert.equal(stats.hostname, os.hostname());
      assert.equal(stats.serverId, os.hostname());
      assert.equal(stats.pid, server.pid);
      assert.ok(stats.uptime > 0 && stats.uptime < 600, `uptime ${stats.uptime}`);
      assert.ok(stats.clientsCount >= 2, `clientsCount ${stats.clientsCount}`);
      assert.equal(stats.pollingClientsCount, 0);
      const nsps = Object.fromEntries(stats.namespaces.map((n) => [n.name, n.socketsCount]));
      assert.ok(nsps['/'] >= 1 && nsps['/admin'] >= 1, JSON.stringify(stats.namespaces));
      const total = (type) => stats.aggregatedEvents.filter((e) => e.type === type).reduce((sum, e) => sum + e.count, 0);
      for (const event of stats.aggregatedEvents) {
        assert.ok(Number.isInteger(event.timestamp) && event.timestamp % 1000 === 0, JSON.stringify(event));
        assert.ok(['rawConnection', 'rawDisconnection', 'packetsIn', 'packetsOut', 'bytesIn', 'bytesOut'].includes(event.type));
      }
      assert.equal(total('rawConnection'), 1);
      assert.equal(total('packetsIn'), sent.length);
      assert.equal(total('bytesIn'), sent.reduce((sum, data) => sum + Buffer.byteLength(data), 0));
      assert.equal(sent.length, 2, `the CONNECT and the echo: ${JSON.stringify(sent)}`);
      assert.ok(total('packetsOut') >= 3 && total('bytesOut') > 0, JSON.stringify(stats.aggregatedEvents));
    });

    it('server_stats counts closes by engine.io\'s reason (rawDisconnection with subType)', async (t) => {
      const socket = admin(server.port, { username: USERNAME, password: PASSWORD }, t);
      await connected(socket, STEP_MS);
      // A window that starts after this test: the closes of earlier tests' clients are reported.
      await socket.recorder.next(eventOf('server_stats'), 'a server_stats after the login', socket.recorder.mark());
      const mark = socket.recorder.mark();
      const leaving = app(server.port, t);
      await connected(leaving);
      leaving.disconnect(); // a close packet: "transport close"
      const kicked = app(server.port, t);
      await connected(kicked);
      const kickedId = kicked.id;
      await socket.recorder.next((e) => e[0] === 'socket_connected' && e[1].id === kickedId, 'socket_connected', mark);
      socket.emit('_disconnect', '/', true, kickedId); // the dashboard closes its connection: "forced close"
      const reported = () => socket.recorder.events.slice(mark).filter((e) => e[0] === 'server_stats')
        .flatMap((e) => e[1].aggregatedEvents.filter((a) => a.type === 'rawDisconnection'));
      await until(() => reported().reduce((sum, e) => sum + e.count, 0) >= 2, 'both closes in server_stats', 3 * STEP_MS);
      const byReason = {};
      for (const e of reported()) byReason[e.subType] = (byReason[e.subType] ?? 0) + e.count;
      assert.deepEqual(byReason, { 'transport close': 1, 'forced close': 1 }, JSON.stringify(reported()));
    });

    it('reports sockets and rooms as they change, and applies emit, join, leave and _disconnect', async (t) => {
      const socket = admin(server.port, { username: USERNAME, password: PASSWORD }, t);
      await connected(socket, STEP_MS);
      await socket.recorder.next(eventOf('all_sockets'), 'all_sockets');
      let mark = socket.recorder.mark();
      const client = app(server.port, t);
      await connected(client);
      const joinedOwn = await socket.recorder.next(eventOf('room_joined', '/', client.id, client.id), 'room_joined (own room)', mark);
      assert.match(joinedOwn[4], ISO_RE);
      const [, serialized, date] = await socket.recorder.next((e) => e[0] === 'socket_connected' && e[1].id === client.id, 'socket_connected', mark);
      assert.match(date, ISO_RE);
      assert.equal(serialized.nsp, '/');
      assert.deepEqual(serialized.rooms, [client.id]);
      const order = socket.recorder.events.slice(mark).map((e) => e[0]).filter((e) => e !== 'server_stats');
      assert.deepEqual(order.slice(0, 2), ['room_joined', 'socket_connected']);

      await client.timeout(STEP_MS).emitWithAck('join', 'lobby');
      await socket.recorder.next(eventOf('room_joined', '/', 'lobby', client.id), 'room_joined lobby', mark);
      await client.timeout(STEP_MS).emitWithAck('echo', 'hi', 42);
      const received = await socket.recorder.next((e) => eventOf('event_received', '/', client.id)(e) && e[3][0] === 'echo', 'event_received', mark);
      assert.deepEqual(received[3], ['echo', 'hi', 42]);
      assert.match(received[4], ISO_RE);

      const hello = new Promise((resolve) => client.once('hello', (...args) => resolve(args)));
      socket.emit('emit', '/', 'lobby', 'hello', 'from', { the: 'dashboard' });
      assert.deepEqual(await hello, ['from', { the: 'dashboard' }]);

      socket.emit('join', '/', 'added', client.id);
      await socket.recorder.next(eventOf('room_joined', '/', 'added', client.id), 'room_joined by the join action', mark);
      socket.emit('leave', '/', 'lobby', client.id);
      await socket.recorder.next(eventOf('room_left', '/', 'lobby', client.id), 'room_left by the leave action', mark);
      // An unknown namespace is not created by an action.
      socket.emit('join', '/nowhere', 'x', client.id);

      mark = socket.recorder.mark();
      const gone = new Promise((resolve) => client.once('disconnect', resolve));
      socket.emit('_disconnect', '/', false, client.id);
      assert.equal(await gone, 'io server disconnect');
      const disconnected = await socket.recorder.next(eventOf('socket_disconnected', '/', client.id), 'socket_disconnected', mark);
      assert.equal(disconnected[3], 'server namespace disconnect');
      await socket.recorder.next(eventOf('room_left', '/', 'added', client.id), 'room_left of the rooms it was in', mark);
      await socket.recorder.next(eventOf('room_left', '/', client.id, client.id), 'room_left of its own room', mark);
      const after = socket.recorder.events.slice(mark).map((e) => e[0]).filter((e) => e !== 'server_stats');
      assert.deepEqual(after.slice(0, 3), ['socket_disconnected', 'room_left', 'room_left']);
      // Node's io.of() creates the namespace an action names; sioc acts only on namespaces that
      // exist (a namespace created by the dashboard would take connections with no channel
      // behind it): docs/compatibility.md.
      const [, stats] = await socket.recorder.next(eventOf('server_stats'), 'stats', mark);
      const created = stats.namespaces.find((n) => n.name === '/nowhere');
      if (kind === 'node') assert.deepEqual(created, { name: '/nowhere', socketsCount: 0 });
      else assert.equal(created, undefined);
    });
  });

  describe(`admin UI protocol, production mode: ${name}`, () => {
    let server;
    before(async () => {
      server = await start({ mode: 'production' });
    });
    after(async () => {
      await server?.stop();
    });

    it('config without ALL_EVENTS, no all_sockets and no per-socket events', async (t) => {
      const socket = admin(server.port, { username: USERNAME, password: PASSWORD }, t);
      await connected(socket, STEP_MS);
      const config = await socket.recorder.next(eventOf('config'), 'config');
      assert.deepEqual(config[1], { supportedFeatures: DEV_FEATURES.slice(0, -1) });
      const client = app(server.port, t);
      await connected(client);
      await client.timeout(STEP_MS).emitWithAck('echo', 'quiet');
      await socket.recorder.next(eventOf('server_stats'), 'server_stats');
      const names = new Set(socket.recorder.events.map((e) => e[0]));
      assert.deepEqual([...names].sort(), ['config', 'server_stats', 'session']);
    });
  });
}

adminSuite('sioc serve', 'sioc', startSioc);
adminSuite('Node socket.io + @socket.io/admin-ui instrument()', 'node', startNode);

describe('admin configuration and bad input, sioc serve', () => {
  it('takes a $2a$ hash (bcryptjs) as well', async (t) => {
    const server = await startSioc({ hash: HASH_2A });
    t.after(() => server.stop());
    const socket = admin(server.port, { username: USERNAME, password: PASSWORD }, t);
    await connected(socket, STEP_MS);
  });

  // Node's handlers would throw on most of these (and the process would end); sioc ignores an
  // action whose arguments are not what the dashboard sends.
  it('ignores malformed actions and keeps serving', async (t) => {
    const server = await startSioc();
    t.after(() => server.stop());
    const client = app(server.port, t);
    await connected(client);
    const socket = admin(server.port, { username: USERNAME, password: PASSWORD }, t);
    await connected(socket, STEP_MS);
    const received = [];
    client.onAny((...event) => received.push(event));
    // None of these targets the client's socket: a falsy filter would (everyone in '/'), as in Node.
    for (const args of [[], [42], [null, null, null], [['/'], 'r', client.id], ['/', { not: 'a room' }, 'ev'],
      ['/', 7, 7], ['/', [client.id], [client.id]], ['/', true, true], ['/nowhere', null, 'ev'], ['/', null, 'disconnect'],
      ['/', null, 'x'.repeat(100000)]]) {
      socket.emit('emit', ...args);
      socket.emit('join', ...args);
      socket.emit('leave', ...args);
      socket.emit('_disconnect', ...args);
    }
    socket.emit('emit', '/', null, 'still-here', 1);
    await until(() => received.some((e) => e[0] === 'still-here'), 'the well-formed emit after the bad ones', STEP_MS);
    assert.ok(client.connected, 'no malformed _disconnect disconnected the client');
    assert.deepEqual(received.map((e) => e[0]).filter((name) => name !== 'still-here'), ['x'.repeat(100000)]);
  });

  it('refuses a config whose passwordHash is not a bcrypt hash, or with no auth key', async () => {
    const dir = tempDir('admin-bad');
    for (const [admin, message] of [
      [{ auth: { username: 'a', passwordHash: 'plain-password' } }, /admin\.auth\.passwordHash: expected a bcrypt hash/],
      [{ auth: { username: 'a' } }, /admin\.auth: both username and passwordHash are required/],
      [{ mode: 'development' }, /admin: missing key "auth"/],
      [{ auth: false, namespace: '/' }, /admin\.namespace: "\/" is a channel's namespace too/],
      [{ auth: false, mode: 'staging' }, /admin\.mode: expected "development" or "production"/],
    ]) {
      const file = writeConfig(dir, baseConfig(dir, { admin }));
      const res = await runSioc(['check-config', file]);
      assert.notEqual(res.code, 0, JSON.stringify(admin));
      assert.match(res.stderr, message);
    }
  });
});

// In a cluster every node reports and every node applies the actions: a dashboard connected to
// node A sees node B's sockets (all_sockets through fetchSockets, socket_connected through the
// adapter), gets server_stats from both (one serverId each), and joins and disconnects a socket
// of B. The same assertions hold for two Node servers (ref/admin-node.js: socket.io with
// @socket.io/redis-adapter and instrument()) on a Redis of their own.
async function startSiocNode(dir, name, redis) {
  const daemon = await startDaemon(dir, baseConfig(dir, {
    store: { driver: 'sqlite', path: path.join(dir, `${name}.db`) },
    cluster: { redis: { url: `redis://127.0.0.1:${redis.port}` }, requestsTimeoutMs: 1500 },
    channels: { '/': { driver: 'bench', auth: 'none', enabled: true } },
    admin: { auth: { username: USERNAME, passwordHash: HASH_2B } },
  }), { name: `${name}.json` });
  return { port: daemon.port, pid: daemon.child.pid, stop: () => daemon.stopChecked() };
}

async function startNodeNode(dir, name, redis) {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), '../ref/admin-node.js');
  const argv = [script, '--redis', `redis://127.0.0.1:${redis.port}`, '--username', USERNAME, '--hash', HASH_2A];
  const { child, ports } = await spawnListening(process.execPath, argv, {}, [LISTENING]);
  const server = new RunningServer(child, ports[0], argv);
  return { port: server.port, pid: child.pid, stop: () => server.stopChecked() };
}

function clusterSuite(name, startNode) {
  describe(`admin UI across a cluster of two nodes: ${name}`, { skip: !haveRedis() && 'redis-server is not installed' }, () => {
    let redis;
    let nodes = [];
    before(async () => {
      requireBin();
      redis = await startRedis();
      const dir = tempDir('admin-cluster');
      for (const node of ['a', 'b']) nodes.push(await startNode(dir, node, redis));
      const client = createClient({ socket: { host: '127.0.0.1', port: redis.port, reconnectStrategy: false } });
      client.on('error', () => {});
      await client.connect();
      try {
        await until(async () => (await client.pubSubNumSub('socket.io-request#/admin#'))['socket.io-request#/admin#'] === 2,
          'both nodes subscribed to the admin namespace', STEP_MS);
      } finally {
        await client.quit();
      }
    });
    after(async () => {
      for (const node of nodes) await node.stop();
      nodes = [];
      await redis?.stop();
    });

    it('a dashboard on node A sees node B\'s sockets and stats, and joins and disconnects one of them', async (t) => {
      const [a, b] = nodes;
      const early = app(b.port, t);
      await connected(early);
      const socket = admin(a.port, { username: USERNAME, password: PASSWORD }, t);
      await connected(socket, STEP_MS);
      const [, sockets] = await socket.recorder.next(eventOf('all_sockets'), 'all_sockets');
      const remote = sockets.find((s) => s.id === early.id);
      assert.ok(remote, `node B's socket is in all_sockets: ${JSON.stringify(sockets.map((s) => s.id))}`);
      assert.equal(remote.clientId, early.io.engine.id.slice(0, 12));
      assert.equal(remote.transport, 'websocket');
      assert.equal(remote.nsp, '/');
      assert.deepEqual(remote.data, {});
      assert.deepEqual(remote.rooms, [early.id]);

      const mark = socket.recorder.mark();
      const late = app(b.port, t);
      await connected(late);
      await socket.recorder.next((e) => e[0] === 'socket_connected' && e[1].id === late.id, 'socket_connected from node B', mark);
      await late.timeout(STEP_MS).emitWithAck('join', 'remote-room');
      await socket.recorder.next(eventOf('room_joined', '/', 'remote-room', late.id), 'room_joined from node B', mark);

      await until(() => new Set(socket.recorder.events.slice(mark).filter((e) => e[0] === 'server_stats').map((e) => e[1].pid)).size === 2,
        'server_stats from both nodes', 3 * STEP_MS);
      const stats = socket.recorder.events.slice(mark).filter((e) => e[0] === 'server_stats').map((e) => e[1]);
      const ids = new Set(stats.map((s) => s.serverId));
      assert.equal(ids.size, 2, `one serverId per node: ${[...ids]}`);
      for (const id of ids) assert.match(id, /#\d+$/);
      assert.deepEqual(new Set(stats.map((s) => s.pid)), new Set([a.pid, b.pid]));
      for (const stat of stats) assert.equal(stat.clientsCount, stat.pid === b.pid ? 2 : 1, JSON.stringify(stat));

      // join from the dashboard on A: the socket on B is in the room (B reports it, and an emit
      // from the dashboard to that room reaches it), the other socket on B is not.
      socket.emit('join', '/', 'dashboard-room', late.id);
      await socket.recorder.next(eventOf('room_joined', '/', 'dashboard-room', late.id), 'room_joined by the join action, from node B', mark);
      const received = [];
      early.on('to-room', (...args) => received.push(args));
      const hello = new Promise((resolve) => late.once('to-room', (...args) => resolve(args)));
      socket.emit('emit', '/', 'dashboard-room', 'to-room', 'across');
      assert.deepEqual(await hello, ['across']);

      const gone = new Promise((resolve) => late.once('disconnect', resolve));
      socket.emit('_disconnect', '/', false, late.id);
      assert.equal(await gone, 'io server disconnect');
      await socket.recorder.next(eventOf('socket_disconnected', '/', late.id, 'server namespace disconnect'), 'socket_disconnected from node B', mark);
      assert.ok(early.connected, 'only the targeted socket');
      assert.deepEqual(received, [], 'the socket on B outside the room got nothing');
    });
  });
}

clusterSuite('sioc serve', startSiocNode);
clusterSuite('Node socket.io + @socket.io/redis-adapter + instrument()', startNodeNode);
