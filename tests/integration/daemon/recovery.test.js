// Connection state recovery in the daemon with its embedded store (issue 9): `sioc serve`
// restarted by SIGTERM, and separately killed with SIGKILL, under a steady publisher (HTTP API
// emits to a study room): socket.io-client's sockets (automatic reconnection, as the seeds make
// them) come back recovered with the same id and rooms, every packet in order, exactly once.
// Presence (chat driver) shows no offline/online pair for a short cut or a restart, and a user
// who does not come back goes offline once. Forged, foreign and expired pids and offsets give a
// fresh session; of two clients presenting one pid, the first wins; a stalled store
// (recovery.maxPending) holds its cap and delivery goes on.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import readline from 'node:readline';
import {
  requireBin, tempDir, baseConfig, startDaemon, makeUser, connectAs, freePort, createRoom, presenceOf,
  tokenFor, API_KEY, sleep,
} from '../lib/daemon.js';
import { request } from '../lib/http.js';
import { ask, Clients, connected, until } from '../lib/sio.js';
import { releaseChild, signalGroup, spawnTracked } from '../lib/server.js';

const RECONNECTING = {
  reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 300, randomizationFactor: 0,
  reconnectionAttempts: 100, // bounded: 100 tries of at most 300 ms
};

async function recoveryConfig(dir, { windowMs = 30000, graceMs, channelOptions = {}, recovery = {} } = {}) {
  const [port, apiPort] = [await freePort(), await freePort()];
  const options = graceMs === undefined ? channelOptions : { ...channelOptions, presenceGraceMs: graceMs };
  return baseConfig(dir, {
    listen: { host: '127.0.0.1', port },
    api: { listen: { host: '127.0.0.1', port: apiPort }, key: API_KEY },
    recovery: { enabled: true, maxDisconnectionDurationMs: windowMs, ...recovery },
    channels: { '/': { driver: 'chat', auth: 'jwt', options } },
  });
}

/** Stops the daemon with signal and waits for its exit (SIGKILL after 5 s). */
async function stopWith(daemon, signal) {
  process.kill(daemon.child.pid, signal);
  const timer = setTimeout(() => daemon.child.kill('SIGKILL'), 5000);
  try {
    return await daemon.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** A client that records its ticks and the ids it had. */
async function tickClient(c, user, mode, roomId) {
  const socket = await connectAs(c, user, { mode, managerOpts: RECONNECTING });
  socket.ticks = [];
  socket.on('tick', (n) => socket.ticks.push(n));
  socket.firstId = socket.id;
  assert.equal((await ask(socket, 'room:join', roomId)).ok, true);
  return socket;
}

/**
 * POST /emit of tick n to room, one at a time, every ~10 ms. accepted: answered 200; unknown:
 * no answer (the daemon was going or gone: it may or may not have been emitted).
 */
class Publisher {
  constructor(apiPort, room) {
    Object.assign(this, { apiPort, room, next: 0, accepted: [], unknown: new Set(), stopped: false });
  }

  start() {
    this.done = this.run();
  }

  async run() {
    for (let i = 0; i < 20000 && !this.stopped; i++) {
      const n = ++this.next;
      try {
        const res = await request(this.apiPort, {
          method: 'POST',
          path: '/emit',
          headers: [['Authorization', `Bearer ${API_KEY}`], ['Content-Type', 'application/json']],
          body: JSON.stringify({ event: 'tick', args: [n], rooms: [this.room] }),
          timeoutMs: 2000,
        });
        if (res.status === 200) this.accepted.push(n);
        else this.unknown.add(n);
      } catch {
        this.unknown.add(n);
        await sleep(30);
      }
      await sleep(10);
    }
  }

  async stop() {
    this.stopped = true;
    await this.done;
  }
}

function strictlyIncreasing(list) {
  return list.every((n, i) => i === 0 || n > list[i - 1]);
}

/**
 * One restart of `sioc serve` by signal under the publisher, with clients over WebSocket and
 * polling; returns what the checks need.
 */
async function restartUnderLoad(t, signal) {
  requireBin();
  const dir = tempDir(`recovery-${signal}`);
  const config = await recoveryConfig(dir);
  let daemon = await startDaemon(dir, config);
  const c = new Clients(daemon, t);
  t.after(() => daemon.stopChecked());
  const room = await createRoom(daemon, { name: `ticks-${signal}` });
  const users = ['Ann', 'Bob', 'Cid', 'Dee'].map((name) => makeUser(name));
  const sockets = [];
  for (const [i, user] of users.entries()) {
    sockets.push(await tickClient(c, user, i % 2 === 0 ? 'websocket' : 'polling', room.id));
  }
  const publisher = new Publisher(config.api.listen.port, `room:${room.id}`);
  publisher.start();
  t.after(() => publisher.stop());
  await until(() => sockets.every((s) => s.ticks.length >= 20), 'ticks before the restart', 10000);
  const seenBefore = Math.max(...sockets.map((s) => s.ticks.at(-1)));
  const exit = await stopWith(daemon, signal);
  const firstAfter = publisher.next + 1; // every later n is emitted to the new process
  daemon = await startDaemon(dir, config);
  c.server = daemon;
  await until(() => sockets.every((s) => s.connected), 'the clients reconnected', 15000);
  await until(() => sockets.every((s) => s.ticks.filter((n) => n >= firstAfter).length >= 20),
    'ticks after the restart', 10000);
  await publisher.stop();
  const last = publisher.accepted.at(-1);
  await until(() => sockets.every((s) => s.ticks.includes(last)), `tick ${last} everywhere`, 5000);
  return { exit, sockets, publisher, seenBefore, firstAfter, daemon };
}

function assertRecovered(sockets) {
  for (const s of sockets) {
    assert.equal(s.recovered, true, `${s.firstId} not recovered`);
    assert.equal(s.id, s.firstId, 'the same socket id');
  }
}

/** In order, exactly once, nothing that was not sent; the same sequence for every client. */
function assertSequences(sockets, publisher) {
  const sent = new Set([...publisher.accepted, ...publisher.unknown]);
  for (const s of sockets) {
    assert.ok(strictlyIncreasing(s.ticks), `${s.id}: not in order or duplicated: ${s.ticks.join(',')}`);
    assert.deepEqual(s.ticks.filter((n) => !sent.has(n)), [], 'ticks never sent');
  }
  for (const s of sockets.slice(1)) assert.deepEqual(s.ticks, sockets[0].ticks, 'every client got the same ticks');
}

describe('restart of sioc serve with the embedded store', () => {
  it('SIGTERM under a steady publisher: recovered, every accepted tick once and in order', async (t) => {
    const { exit, sockets, publisher } = await restartUnderLoad(t, 'SIGTERM');
    assert.equal(exit.code, 0);
    assertRecovered(sockets);
    assertSequences(sockets, publisher);
    const got = new Set(sockets[0].ticks);
    assert.deepEqual(publisher.accepted.filter((n) => !got.has(n)), [], 'accepted ticks missed');
  });

  it('SIGKILL under a steady publisher: recovered; only ticks never logged are missing', async (t) => {
    const { exit, sockets, publisher, seenBefore, firstAfter } = await restartUnderLoad(t, 'SIGKILL');
    assert.equal(exit.signal, 'SIGKILL');
    assertRecovered(sockets);
    assertSequences(sockets, publisher);
    // A tick answered 200 whose append was not committed when the process died is gone (the
    // API's 200 says "handed to the sockets", not "logged"); no client can have seen it, so
    // those are the last ones before the kill, after every tick a client saw.
    const got = new Set(sockets[0].ticks);
    const missed = publisher.accepted.filter((n) => !got.has(n));
    const before = publisher.accepted.filter((n) => n < firstAfter);
    assert.ok(missed.every((n) => n < firstAfter && n > seenBefore), `missed ${missed} (seen before: ${seenBefore})`);
    assert.deepEqual(missed, before.slice(before.length - missed.length), 'only a tail of the ticks before the kill');
    t.diagnostic(`ticks accepted and lost at the kill: ${missed.length}`);
  });
});

describe('pids and offsets the store does not hold', () => {
  let dir;
  let daemon;
  before(async () => {
    requireBin();
    dir = tempDir('recovery-forged');
    daemon = await startDaemon(dir, await recoveryConfig(dir, { windowMs: 1000 }));
  });
  after(() => daemon?.stopChecked());

  /** A socket that got one packet, cut at the transport: its pid and offset. */
  async function cutSession(c, user, room) {
    const socket = await connectAs(c, user);
    assert.equal((await ask(socket, 'room:join', room.id)).ok, true);
    const got = new Promise((resolve) => socket.once('tick', resolve));
    await daemon.apiOk('POST', '/emit', { event: 'tick', args: [1], rooms: [`room:${room.id}`] });
    await got;
    const session = { id: socket.id, pid: socket._pid, offset: socket._lastOffset };
    assert.match(session.offset, /^[0-9a-f]{16}-[1-9][0-9]*$/);
    socket.io.engine.close(); // a transport close: recoverable, the session is kept
    await until(() => !socket.connected, 'the cut');
    return session;
  }

  /**
   * A new socket.io-client socket presenting {pid, offset} in its first CONNECT, as the client
   * does on its own reconnection (its _pid and _lastOffset set before it connects): its
   * `recovered` then says whether the server restored the session.
   */
  async function presenting(c, user, { pid, offset }) {
    const socket = c.socket(c.manager('websocket'), '/', { auth: { token: tokenFor(user) }, autoConnect: false });
    socket._pid = pid;
    socket._lastOffset = offset;
    socket.connect();
    await connected(socket);
    return socket;
  }

  it('forged, truncated and foreign offsets and unknown pids give a fresh session; the real one still recovers', async (t) => {
    const c = daemon.clients(t);
    const user = makeUser('Eve');
    const room = await createRoom(daemon);
    const session = await cutSession(c, user, room);
    const [epoch] = session.offset.split('-');
    for (const auth of [
      { pid: session.pid, offset: `${epoch}-999999999` },
      { pid: session.pid, offset: session.offset.slice(0, -1) + 'x' },
      { pid: session.pid, offset: session.offset.slice(0, 10) },
      { pid: session.pid, offset: `ffffffffffffffff-${session.offset.split('-')[1]}` },
      { pid: session.pid, offset: 'x'.repeat(200) },
      { pid: 'forged-pid', offset: session.offset },
      { pid: session.pid.slice(0, -2), offset: session.offset },
    ]) {
      const socket = await presenting(c, user, auth);
      assert.equal(socket.recovered, false, JSON.stringify(auth));
      assert.notEqual(socket.id, session.id);
      socket.disconnect();
    }
    const back = await presenting(c, user, { pid: session.pid, offset: session.offset });
    assert.equal(back.recovered, true);
    assert.equal(back.id, session.id);
  });

  // The first client presenting (pid, offset) is the only one restored from it (the store's
  // short claim, as the Redis store's sio:restore:<pid>:<offset>): a second one gets a fresh
  // session and the first keeps its own, even though its socket wrote the session back.
  it('two clients presenting one pid at once: the first wins, the other is fresh', async (t) => {
    const c = daemon.clients(t);
    const user = makeUser('Fay');
    const room = await createRoom(daemon);
    const session = await cutSession(c, user, room);
    const auth = { pid: session.pid, offset: session.offset };
    const both = await Promise.all([presenting(c, user, auth), presenting(c, user, auth)]);
    const winners = both.filter((s) => s.recovered);
    assert.equal(winners.length, 1, 'one recovered');
    const [winner] = winners;
    const loser = both.find((s) => s !== winner);
    assert.equal(winner.id, session.id);
    assert.notEqual(loser.id, session.id);
    await sleep(300);
    assert.ok(winner.connected && loser.connected, 'neither was disconnected');
    assert.equal(winner.id, session.id);
  });

  it('a second client presenting a pid after the first was restored: fresh, the first keeps it', async (t) => {
    const c = daemon.clients(t);
    const user = makeUser('Fox');
    const room = await createRoom(daemon);
    const session = await cutSession(c, user, room);
    const auth = { pid: session.pid, offset: session.offset };
    const first = await presenting(c, user, auth);
    assert.equal(first.recovered, true);
    assert.equal(first.id, session.id);
    await sleep(200); // its session written back while connected
    const second = await presenting(c, user, auth);
    assert.equal(second.recovered, false);
    assert.notEqual(second.id, session.id);
    const tick = new Promise((resolve) => first.once('tick', resolve));
    await daemon.apiOk('POST', '/emit', { event: 'tick', args: [2], rooms: [`room:${room.id}`] });
    assert.equal(await tick, 2, 'the first still in its rooms');
    assert.ok(first.connected);
    assert.equal(first.id, session.id);
  });

  it('a session presented after maxDisconnectionDurationMs is fresh', async (t) => {
    const c = daemon.clients(t);
    const user = makeUser('Gus');
    const room = await createRoom(daemon);
    const session = await cutSession(c, user, room);
    await sleep(1300); // the window is 1000 ms
    const socket = await presenting(c, user, { pid: session.pid, offset: session.offset });
    assert.equal(socket.recovered, false);
    assert.notEqual(socket.id, session.id);
  });
});

/**
 * Another process holding the write lock of the embedded store's file (sqlite3 in Python,
 * BEGIN EXCLUSIVE) until release() or 4 s, under the daemon's busy timeout (5 s): its worker
 * waits meanwhile, the loop goes on.
 */
async function lockFile(t, file) {
  const script = [
    'import sqlite3, sys, select',
    'db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=5)',
    "db.execute('BEGIN EXCLUSIVE')",
    "print('locked', flush=True)",
    // Held until the test lets go (a bound, should it never): on a loaded machine the stalled
    // phase outlasted a 4 s hold, and the store caught up before the test looked.
    'select.select([sys.stdin], [], [], 120)',
    "db.execute('ROLLBACK')",
    "print('released', flush=True)",
  ].join('\n');
  const child = spawnTracked('python3', ['-c', script, file], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.after(() => {
    signalGroup(child, 'SIGKILL');
    releaseChild(child);
  });
  const lines = readline.createInterface({ input: child.stdout });
  const next = () => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the locker did not answer')), 8000);
    lines.once('line', (line) => { clearTimeout(timer); resolve(line); });
  });
  assert.equal(await next(), 'locked');
  return {
    async release() {
      const released = next();
      child.stdin.end('\n');
      assert.equal(await released, 'released');
    },
  };
}

async function recoveryMetrics(daemon) {
  const res = await daemon.api('GET', '/metrics', undefined, { key: null });
  assert.equal(res.status, 200, res.text);
  const value = (name) => Number(res.text.match(new RegExp(`^${name} (\\S+)$`, 'm'))?.[1]);
  return { unlogged: value('sioc_socketio_recovery_unlogged_total'), pending: value('sioc_socketio_recovery_pending') };
}

describe('a stalled embedded store (recovery.maxPending)', () => {
  const MAX_PENDING = 20;
  const TICKS = 120;

  it('holds the cap; connected clients get every tick in order, without offsets past the cap', async (t) => {
    requireBin();
    const dir = tempDir('recovery-stalled');
    const config = await recoveryConfig(dir, { recovery: { maxPending: MAX_PENDING } });
    const daemon = await startDaemon(dir, config);
    t.after(() => daemon.stopChecked());
    const c = daemon.clients(t);
    const room = await createRoom(daemon);
    const sockets = [];
    for (const [i, name] of ['Hal', 'Ida'].entries()) {
      const socket = await tickClient(c, makeUser(name), i === 0 ? 'websocket' : 'polling', room.id);
      socket.offsets = [];
      socket.on('tick', (n, offset) => socket.offsets.push(offset)); // the offset is the last argument
      sockets.push(socket);
    }
    const emit = (n) => daemon.apiOk('POST', '/emit', { event: 'tick', args: [n], rooms: [`room:${room.id}`] });
    await emit(0);
    await until(() => sockets.every((s) => s.ticks.length === 1), 'tick 0');
    const before = await recoveryMetrics(daemon);
    assert.equal(before.pending, 0);

    const lock = await lockFile(t, path.join(dir, 'sioc.db-recovery'));
    let peak = 0;
    for (let n = 1; n <= TICKS; n++) {
      await emit(n);
      if (n % 10 === 0) peak = Math.max(peak, (await recoveryMetrics(daemon)).pending);
    }
    // Still locked: delivery went on past the cap, in order, nothing lost.
    await until(() => sockets.every((s) => s.ticks.length === TICKS + 1), 'every tick while the store is stalled', 15000);
    const stalled = await recoveryMetrics(daemon);
    await lock.release();
    const expected = Array.from({ length: TICKS + 1 }, (_, n) => n);
    for (const socket of sockets) assert.deepEqual(socket.ticks, expected);
    assert.ok(peak <= MAX_PENDING && stalled.pending <= MAX_PENDING, `pending ${peak}, ${stalled.pending}`);
    assert.equal(stalled.pending, MAX_PENDING, 'the appends handed to the store before the cap');
    // Every tick from the cap on was written without an offset: the first MAX_PENDING waited
    // for the store and went at the cap too.
    assert.equal(stalled.unlogged - before.unlogged, TICKS, `unlogged ${stalled.unlogged}`);
    for (const socket of sockets) {
      assert.match(socket.offsets[0], /^[0-9a-f]{16}-[1-9][0-9]*$/);
      assert.deepEqual(socket.offsets.slice(1), Array(TICKS).fill(undefined), 'no offset while stalled');
    }

    // The store back: the waiting appends answer, new ticks are logged again and recoverable.
    await until(async () => (await recoveryMetrics(daemon)).pending === 0, 'the store catching up', 8000);
    await emit(TICKS + 1);
    await until(() => sockets.every((s) => s.ticks.length === TICKS + 2), 'a tick after the stall');
    for (const socket of sockets) assert.match(socket.offsets.at(-1), /^[0-9a-f]{16}-[1-9][0-9]*$/);
    for (const socket of sockets) socket.io.engine.close();
    await emit(TICKS + 2);
    await until(() => sockets.every((s) => s.connected && s.ticks.length === TICKS + 3), 'recovered', 8000);
    for (const socket of sockets) {
      assert.equal(socket.recovered, true);
      assert.deepEqual(socket.ticks, [...expected, TICKS + 1, TICKS + 2]);
    }
    assert.equal((await recoveryMetrics(daemon)).unlogged - before.unlogged, TICKS);
  });
});

describe('presence across cuts and restarts', () => {
  const GRACE_MS = 1000;
  let dir;
  let config;
  let daemon;
  let c;
  let bob;
  const ann = makeUser('Ann');
  const bobUser = makeUser('Bob');
  const annStatus = () => bob.statuses.filter((s) => s.userId === ann.id).map((s) => s.status);

  /**
   * Ann connected and online, with one packet received: socket.io-client presents its session
   * only with the offset of a packet it got (as against Node), and user:status goes to others.
   */
  async function annOnline() {
    const annSocket = await connectAs(c, ann, { managerOpts: RECONNECTING });
    await until(() => annStatus().includes('online'), "Ann's online");
    const hello = new Promise((resolve) => annSocket.once('hello', resolve));
    await daemon.apiOk('POST', '/emit', { event: 'hello', args: [], rooms: [`user:${ann.id}`] });
    await hello;
    bob.statuses.length = 0;
    return annSocket;
  }

  before(async () => {
    requireBin();
    dir = tempDir('recovery-presence');
    config = await recoveryConfig(dir, { graceMs: GRACE_MS });
    daemon = await startDaemon(dir, config);
    c = new Clients(daemon);
    bob = await connectAs(c, bobUser, { managerOpts: RECONNECTING });
    bob.statuses = [];
    bob.on('user:status', (s) => bob.statuses.push(s));
  });
  after(async () => {
    c?.close();
    await daemon?.stopChecked();
  });

  it('a cut shorter than the grace: recovered, no offline/online pair', async () => {
    const annSocket = await annOnline();
    const id = annSocket.id;
    annSocket.io.engine.close();
    await until(() => annSocket.connected && annSocket.recovered, 'Ann back, recovered');
    assert.equal(annSocket.id, id);
    await sleep(GRACE_MS + 500); // past the grace: an offline would have gone out
    assert.deepEqual(annStatus(), []);
    assert.equal((await presenceOf(daemon, ann.id)).status, 'online');
    annSocket.disconnect(); // her own disconnect(): offline at once, no grace
    await until(() => annStatus().length === 1, "Ann's offline", GRACE_MS / 2);
    assert.deepEqual(annStatus(), ['offline']);
  });

  it('SIGTERM and restart: both recovered, no user:status for Ann', async () => {
    const annSocket = await annOnline();
    const exit = await stopWith(daemon, 'SIGTERM');
    assert.equal(exit.code, 0);
    daemon = await startDaemon(dir, config);
    c.server = daemon;
    await until(() => annSocket.connected && bob.connected, 'both back', 15000);
    assert.equal(annSocket.recovered, true);
    assert.equal(bob.recovered, true);
    await sleep(GRACE_MS + 500);
    assert.deepEqual(annStatus(), []);
    assert.equal((await presenceOf(daemon, ann.id)).status, 'online');
    annSocket.io.reconnection(false);
    annSocket.io.engine.close(); // gone for good (a closed tab): offline after the grace, once
    await until(() => annStatus().length > 0, "Ann's offline", GRACE_MS + 2000);
    await sleep(300);
    assert.deepEqual(annStatus(), ['offline']);
  });

  it('SIGKILL while Ann is away for good: offline once, after the grace from the restart', async () => {
    const annSocket = await annOnline();
    annSocket.io.reconnection(false);
    const exit = await stopWith(daemon, 'SIGKILL');
    assert.equal(exit.signal, 'SIGKILL');
    const started = Date.now();
    daemon = await startDaemon(dir, config);
    c.server = daemon;
    await until(() => bob.connected, 'Bob back', 15000);
    assert.equal(bob.recovered, true);
    await until(() => annStatus().length > 0, "Ann's offline", GRACE_MS + 3000);
    assert.ok(Date.now() - started >= GRACE_MS - 50, 'not before the grace');
    await sleep(300);
    assert.deepEqual(annStatus(), ['offline']);
    assert.equal((await presenceOf(daemon, ann.id)).status, 'offline');
  });
});
