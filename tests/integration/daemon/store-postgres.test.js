// The PostgreSQL store, end to end: a real PostgreSQL 15 started for this file
// (tests/lib/postgres.sh), `sioc serve` daemons on it. Two daemons share one
// database; the server restarts under chat load (no acknowledged message lost,
// none stored twice); a daemon is SIGKILLed under load (every acknowledged
// message is in the table); a database that is down at start is a clear error
// and exit status 1. Two daemons on one PostgreSQL and one Redis (cluster.redis) deliver
// each other's messages live.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  requireBin, tempDir, baseConfig, startDaemon, makeUser, connectAs, createRoom, runSioc, writeConfig,
  REPO_ROOT, ISO_RE, haveRedis, startRedis, PG_DISPATCH,
} from '../lib/daemon.js';
import { ask, Clients } from '../lib/sio.js';
import { havePostgres, startPostgres } from '../lib/postgres.js';

const run = promisify(execFile);
const SCRIPT = path.join(REPO_ROOT, 'tests', 'lib', 'postgres.sh');
const LOAD_LIMITS = { messagesPerSecond: 100000, messageBurst: 100000 };

/** Sends `count` messages `${prefix}-${i}` with up to `window` in flight; calls onAck after each. */
async function sendLoad(socket, roomId, prefix, count, window, onAck) {
  const acks = [];
  let next = 0;
  async function worker() {
    while (next < count) {
      const i = next++;
      const text = `${prefix}-${i}`;
      const ack = await ask(socket, 'message:send', { roomId, text });
      acks.push({ text, ack });
      await onAck?.(acks.length, ack);
    }
  }
  await Promise.all(Array.from({ length: window }, worker));
  return acks;
}

describe('PostgreSQL store', { skip: havePostgres() ? false : 'PostgreSQL is not installed (scripts/install-deps --test)' }, () => {
  let pg;
  let dir;
  let config;
  const daemons = [];
  const ann = makeUser('Ann');
  const bob = makeUser('Bob');

  before(async () => {
    requireBin();
    pg = await startPostgres();
    dir = tempDir('pg');
    config = baseConfig(dir, { limits: LOAD_LIMITS, store: { driver: 'postgres', url: pg.url } });
    daemons.push(await startDaemon(dir, config, { name: 'a.json' }));
    daemons.push(await startDaemon(dir, config, { name: 'b.json' }));
  });
  after(async () => {
    for (const daemon of daemons) await daemon.stop();
    await pg?.stop();
  });

  it('two daemons on one database: what one stores, the other reads; the rows are in sioc.*', async (t) => {
    const [a, b] = daemons;
    const room = await createRoom(a, { name: 'Shared' });
    const annSocket = await connectAs(new Clients(a, t), ann);
    assert.equal((await ask(annSocket, 'room:join', room.id)).ok, true);
    const sent = [];
    for (const text of ['one', 'two', 'three']) {
      const ack = await ask(annSocket, 'message:send', { roomId: room.id, text });
      assert.equal(ack.ok, true, JSON.stringify(ack));
      assert.match(ack.message.createdAt, ISO_RE);
      sent.push(ack.message);
    }
    const bobSocket = await connectAs(new Clients(b, t), bob);
    assert.equal((await ask(bobSocket, 'room:join', room.id)).ok, true);
    const history = await ask(bobSocket, 'room:history', { roomId: room.id });
    assert.equal(history.ok, true, JSON.stringify(history));
    assert.deepEqual(history.messages.map((m) => [m.id, m.text, m.sender.id]), sent.map((m) => [m.id, m.text, ann.id]));
    const rows = await pg.rows('SELECT id, sender_id, text, created_at FROM sioc.messages WHERE room_id = $1 ORDER BY seq', [room.id]);
    assert.deepEqual(rows.map((r) => [r.id, r.sender_id, r.text, r.created_at]), sent.map((m) => [m.id, ann.id, m.text, m.createdAt]));
    const [user] = await pg.rows('SELECT first_name FROM sioc.users WHERE id = $1', [bob.id]);
    assert.equal(user.first_name, 'Bob');
    assert.deepEqual(await pg.rows('SELECT version FROM sioc.schema_version'), [{ version: 1 }, { version: 2 }, { version: 3 }]);
  });

  it('PostgreSQL restarted under chat load: no acknowledged message lost, none stored twice', async (t) => {
    const [a] = daemons;
    const room = await createRoom(a, { name: 'Restart' });
    const socket = await connectAs(new Clients(a, t), makeUser('Load'));
    assert.equal((await ask(socket, 'room:join', room.id)).ok, true);
    let restarted = null;
    let afterRestartOk = 0;
    const acks = await sendLoad(socket, room.id, 'r', 400, 4, async (count, ack) => {
      if (count === 100 && !restarted) restarted = run(SCRIPT, ['restart', pg.dir], { timeout: 60000 });
      if (restarted && ack.ok) afterRestartOk++;
      if (!ack.ok) await new Promise((resolve) => setTimeout(resolve, 20)); // the backoff
    });
    await restarted;
    // With SIOC_TEST_PG_DISPATCH=loop the messages went out from the loop thread.
    const dispatchLine = /store: postgres: the loop thread sends the chat's batches/;
    assert.equal(dispatchLine.test(`${a.stderr}${a.stdout ?? ''}`), PG_DISPATCH === 'loop', 'store.dispatch');
    const ok = acks.filter((x) => x.ack.ok);
    const failed = acks.filter((x) => !x.ack.ok);
    assert.ok(failed.length >= 1, 'the restart was not noticed');
    for (const { ack } of failed) assert.equal(ack.error.code, 'unavailable', JSON.stringify(ack));
    assert.ok(afterRestartOk >= 1, 'the store did not reconnect');
    const rows = await pg.rows('SELECT id, text FROM sioc.messages WHERE room_id = $1', [room.id]);
    const stored = new Map(rows.map((r) => [r.id, r.text]));
    assert.equal(new Set(rows.map((r) => r.text)).size, rows.length, 'a message was stored twice');
    for (const { text, ack } of ok) assert.equal(stored.get(ack.message.id), text, `acknowledged ${text} is missing`);
    // A failed one may only be in the table if its COMMIT's answer was lost (the batches in
    // flight on the connection, at most two; the client has at most four messages out).
    const failedStored = failed.filter(({ text }) => rows.some((r) => r.text === text));
    assert.ok(failedStored.length <= 4, `${failedStored.length} failed messages were stored`);
  });

  it('the HTTP API answers a lost database connection with 503 store_unavailable and Retry-After', async () => {
    const [a] = daemons;
    const room = await createRoom(a, { name: 'Lost' });
    const user = makeUser('Member');
    await a.apiOk('PUT', `/users/${encodeURIComponent(user.id)}`, { firstName: 'Member' });
    // The connection is cut while it runs a statement: the test's own transaction holds the
    // room's row, so adding a member (its foreign key takes KEY SHARE on the row) waits, and
    // the daemons' connections are ended meanwhile. (An idle connection that the server
    // ended is noticed and replaced before the next batch: that one fails nothing.)
    const lock = await pg.pool.connect();
    let res;
    try {
      await lock.query('BEGIN');
      await lock.query('SELECT 1 FROM sioc.rooms WHERE id = $1 FOR UPDATE', [room.id]);
      const adding = a.api('POST', `/rooms/${encodeURIComponent(room.id)}/members`, { userId: user.id });
      const waiting = "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()";
      for (let i = 0; i < 200 && (await pg.rows(waiting))[0].n === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      await pg.rows('SELECT pg_terminate_backend(pid) FROM pg_stat_activity'
        + ' WHERE datname = current_database() AND pid <> pg_backend_pid() AND pid <> $1', [lock.processID]);
      res = await adding;
      await lock.query('ROLLBACK');
    } finally {
      lock.release();
    }
    assert.equal(res.status, 503, res.text);
    assert.equal(res.json.error.code, 'store_unavailable');
    assert.equal(res.header('retry-after'), '1');
    // The store reconnects by itself (backoff from 100 ms): the same request works again.
    let again = null;
    for (let i = 0; i < 100 && again?.status !== 200; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      again = await a.api('GET', `/rooms/${encodeURIComponent(room.id)}`);
    }
    assert.equal(again.status, 200, again.text);
    assert.equal(again.json.id, room.id);
  });

  it('SIGKILL of a daemon under load: every acknowledged message is in the database', async (t) => {
    const victim = await startDaemon(dir, config, { name: 'victim.json' });
    daemons.push(victim);
    const room = await createRoom(victim, { name: 'Kill' });
    const socket = await connectAs(new Clients(victim, t), makeUser('Killed'));
    assert.equal((await ask(socket, 'room:join', room.id)).ok, true);
    const acked = [];
    socket.on('message:received', () => {});
    const load = sendLoad(socket, room.id, 'k', 100000, 8, (count, ack) => {
      if (ack.ok) acked.push(ack.message.id);
      if (count === 300) process.kill(victim.child.pid, 'SIGKILL');
    }).catch(() => {});
    await victim.exited;
    socket.disconnect();
    await Promise.race([load, new Promise((resolve) => setTimeout(resolve, 1000))]);
    assert.ok(acked.length >= 200, `only ${acked.length} acknowledged`);
    const rows = await pg.rows('SELECT id FROM sioc.messages WHERE room_id = $1', [room.id]);
    const stored = new Set(rows.map((r) => r.id));
    const missing = acked.filter((id) => !stored.has(id));
    assert.deepEqual(missing, [], `${missing.length} acknowledged messages are not in the database`);
  });

  it('a database that is down at start: a clear error, exit status 1, no password shown', async () => {
    const down = baseConfig(dir, { store: { driver: 'postgres', url: 'postgresql://sioc:hunter2@127.0.0.1:1/app?connect_timeout=2' } });
    const file = writeConfig(dir, down, 'down.json');
    const result = await runSioc(['serve', '--config', file], { cwd: dir });
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /sioc: store: postgres sioc@127\.0\.0\.1:1\/app: cannot connect: /);
    assert.doesNotMatch(result.stderr, /hunter2/);
  });

  it('store.url is required with the postgres driver (check-config names the line)', async () => {
    const file = writeConfig(dir, '{\n  "channels": {"/": {"driver": "chat", "auth": "none"}},\n  "store": {\n    "driver": "postgres"\n  }\n}\n', 'nourl.json');
    const result = await runSioc(['check-config', file], { cwd: dir });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /nourl\.json:3: store: the postgres store needs "url"/);
  });
});

describe('a cluster: two daemons on one PostgreSQL and one Redis', {
  skip: !havePostgres() ? 'PostgreSQL is not installed' : !haveRedis() ? 'redis-server is not installed' : false,
}, () => {
  let pg;
  let redis;
  const nodes = [];
  const ann = makeUser('Ann');
  const bob = makeUser('Bob');

  before(async () => {
    requireBin();
    pg = await startPostgres();
    redis = await startRedis();
    const dir = tempDir('pg-cluster');
    const config = baseConfig(dir, {
      store: { driver: 'postgres', url: pg.url },
      cluster: { redis: { url: `redis://127.0.0.1:${redis.port}` } },
    });
    nodes.push(await startDaemon(dir, config, { name: 'a.json' }));
    nodes.push(await startDaemon(dir, config, { name: 'b.json' }));
  });
  after(async () => {
    for (const node of nodes) await node.stopChecked();
    await redis?.stop();
    await pg?.stop();
  });

  it('a message sent on one node reaches the other live and is in its history; a DM back', async (t) => {
    const [a, b] = nodes;
    const room = await createRoom(a, { name: 'Cluster' });
    const annSocket = await connectAs(new Clients(a, t), ann);
    const bobSocket = await connectAs(new Clients(b, t), bob);
    for (const socket of [annSocket, bobSocket]) assert.equal((await ask(socket, 'room:join', room.id)).ok, true);
    const live = new Promise((resolve) => bobSocket.once('message:received', resolve));
    const ack = await ask(annSocket, 'message:send', { roomId: room.id, text: 'across nodes' });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    assert.deepEqual(await live, ack.message);
    const history = await ask(bobSocket, 'room:history', { roomId: room.id });
    assert.deepEqual(history.messages.map((m) => m.id), [ack.message.id]);
    const dm = new Promise((resolve) => annSocket.once('dm:received', resolve));
    const dmAck = await ask(bobSocket, 'dm:send', { recipientId: ann.id, text: 'back' });
    assert.equal(dmAck.ok, true, JSON.stringify(dmAck));
    assert.equal((await dm).text, 'back');
    const [row] = await pg.rows('SELECT count(*)::int AS n FROM sioc.direct_messages');
    assert.equal(row.n, 1);
  });
});

/** The connection of a pool that store.c gives a key: FNV-1a 64 of its text, modulo poolSize. */
function laneOf(key, poolSize) {
  let hash = 14695981039346656037n;
  for (const byte of Buffer.from(key)) {
    hash ^= BigInt(byte);
    hash = (hash * 1099511628211n) & 0xffffffffffffffffn;
  }
  return Number(hash % BigInt(poolSize));
}

/** `${prefix}0`, `${prefix}1`, ...: the first on lane. */
function keyOnLane(prefix, lane, poolSize) {
  for (let i = 0; i < 1000; i++) if (laneOf(`${prefix}${i}`, poolSize) === lane) return `${prefix}${i}`;
  throw new Error(`no key on lane ${lane}`);
}

describe('store.poolSize 4: one order per room, rooms on other connections independent', {
  skip: havePostgres() ? false : 'PostgreSQL is not installed (scripts/install-deps --test)',
}, () => {
  const POOL = 4;
  let pg;
  let daemon;

  before(async () => {
    requireBin();
    pg = await startPostgres();
    const dir = tempDir('pg-pool');
    daemon = await startDaemon(dir, baseConfig(dir, { limits: LOAD_LIMITS, store: { driver: 'postgres', url: pg.url, poolSize: POOL } }));
  });
  after(async () => {
    await daemon?.stopChecked();
    await pg?.stop();
  });

  it('messages into one room from several sockets: the stored order is the broadcast order', async (t) => {
    const room = await createRoom(daemon, { name: 'Busy' });
    const clients = new Clients(daemon, t);
    const listener = await connectAs(clients, makeUser('Listener'));
    assert.equal((await ask(listener, 'room:join', room.id)).ok, true);
    const heard = [];
    listener.on('message:received', (m) => heard.push(m.id));
    const senders = [];
    for (let i = 0; i < 4; i++) {
      const socket = await connectAs(clients, makeUser(`Sender${i}`));
      assert.equal((await ask(socket, 'room:join', room.id)).ok, true);
      senders.push(socket);
    }
    const acks = (await Promise.all(senders.map((socket, i) => sendLoad(socket, room.id, `s${i}`, 50, 4)))).flat();
    for (const { ack } of acks) assert.equal(ack.ok, true, JSON.stringify(ack));
    for (let i = 0; i < 100 && heard.length < acks.length; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    const rows = await pg.rows('SELECT id FROM sioc.messages WHERE room_id = $1 ORDER BY seq', [room.id]);
    assert.equal(rows.length, 200);
    assert.deepEqual(heard, rows.map((r) => r.id));
  });

  it('a room waiting for its connection does not hold up a room on another one', async (t) => {
    const slowId = keyOnLane('slow', 0, POOL);
    const fastId = keyOnLane('fast', 1, POOL);
    await createRoom(daemon, { id: slowId, name: 'Slow' });
    await createRoom(daemon, { id: fastId, name: 'Fast' });
    const clients = new Clients(daemon, t);
    const [ann, bob] = [await connectAs(clients, makeUser('Ann')), await connectAs(clients, makeUser('Bob'))];
    assert.equal((await ask(ann, 'room:join', slowId)).ok, true);
    assert.equal((await ask(bob, 'room:join', fastId)).ok, true);
    // The test's own transaction holds the slow room's row: inserting its messages (their
    // foreign key takes KEY SHARE on it) waits until it ends.
    const lock = await pg.pool.connect();
    try {
      await lock.query('BEGIN');
      await lock.query('SELECT 1 FROM sioc.rooms WHERE id = $1 FOR UPDATE', [slowId]);
      let slowDone = false;
      const slow = ask(ann, 'message:send', { roomId: slowId, text: 'waits' }).then((ack) => { slowDone = true; return ack; });
      await new Promise((resolve) => setTimeout(resolve, 100));
      const fast = await ask(bob, 'message:send', { roomId: fastId, text: 'goes on' });
      assert.equal(fast.ok, true, JSON.stringify(fast));
      assert.equal(slowDone, false, 'the slow room was not held by the lock');
      await lock.query('COMMIT');
      const ack = await slow;
      assert.equal(ack.ok, true, JSON.stringify(ack));
    } finally {
      lock.release();
    }
  });
});
