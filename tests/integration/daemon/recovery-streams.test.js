// Two daemons on one redis-server with `cluster.mode: "streams"` and recovery on (issue 9): the
// recovery state is in Redis (the stream is the log, sessions under sio:session:<pid>), so a
// chat client whose node is killed with SIGKILL reconnects through a TCP balancer (lib/balancer.js)
// to the other daemon and is recovered there: same socket id, its study room, and every
// chat message it missed, in order, exactly once.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { balancer } from '../lib/balancer.js';
import { once } from 'node:events';
import path from 'node:path';
import { createClient } from 'redis';
import {
  requireBin, tempDir, baseConfig, startDaemon, makeUser, connectAs, createRoom, haveRedis, startRedis, sleep,
} from '../lib/daemon.js';
import { releaseChild, signalGroup } from '../lib/server.js';
import { ask, Clients, until } from '../lib/sio.js';

const WAIT_MS = 10_000;
const RECONNECTING = {
  reconnection: true, reconnectionDelay: 600, reconnectionDelayMax: 600, randomizationFactor: 0,
  reconnectionAttempts: 30, // bounded: 30 tries of 600 ms
};

describe('daemon cluster in streams mode with recovery in Redis', { skip: !haveRedis() && 'redis-server is not installed' }, () => {
  let redis;
  let dir;
  const backends = [];
  before(async () => {
    requireBin();
    redis = await startRedis();
    dir = tempDir('recovery-streams');
    // recovery.path apart (the embedded store's, unused in streams mode): only Redis is shared.
    const config = (name) => baseConfig(dir, {
      store: { driver: 'sqlite', path: path.join(dir, 'shared.db') },
      cluster: { redis: { url: `redis://127.0.0.1:${redis.port}` }, mode: 'streams', presenceIntervalMs: 300 },
      recovery: { maxDisconnectionDurationMs: 30000, path: path.join(dir, `${name}-recovery.db`) },
      channels: { '/': { driver: 'chat', auth: 'jwt' } },
    });
    backends.push({ up: true, daemon: await startDaemon(dir, config('a'), { name: 'a.json' }) });
    backends.push({ up: true, daemon: await startDaemon(dir, config('b'), { name: 'b.json' }) });
  });
  after(async () => {
    if (backends[0]?.up) await backends[0].daemon.stopChecked();
    await backends[1]?.daemon.stopChecked();
    await redis?.stop();
  });

  // The Redis store's claim on (pid, offset) keeps a second client from taking a session the
  // first one restored; it must not keep the first one's own client out at its next cut, when
  // it got nothing since and presents the same offset again.
  it('cut twice with nothing received in between: recovered both times', async (t) => {
    const nodeB = backends[1].daemon;
    const room = await createRoom(nodeB);
    const socket = await connectAs(nodeB.clients(t), makeUser('Dot'), { managerOpts: RECONNECTING });
    assert.equal((await ask(socket, 'room:join', room.id)).ok, true);
    const got = new Promise((resolve) => socket.once('message:received', resolve));
    await nodeB.apiOk('POST', '/emit', { event: 'message:received', args: [{ text: 'one' }], rooms: [`room:${room.id}`] });
    await got;
    const { id } = socket;
    for (let cut = 1; cut <= 2; cut++) {
      const offset = socket._lastOffset;
      const back = once(socket, 'connect');
      socket.io.engine.close();
      await back;
      assert.equal(socket.recovered, true, `cut ${cut}: recovered`);
      assert.equal(socket.id, id);
      assert.equal(socket._lastOffset, offset, 'nothing received in between');
    }
  });

  it('SIGKILL of the node holding the clients: recovered on the other daemon with every missed message', async (t) => {
    const [nodeA, nodeB] = backends.map((b) => b.daemon);
    assert.ok(backends[0].up, 'node A is alive');
    const lb = await balancer(() => backends.find((b) => b.up).daemon.port);
    t.after(() => lb.close());
    const viaLb = new Clients({ port: lb.port }, t);
    const room = await createRoom(nodeB);
    const users = [makeUser('Ann'), makeUser('Bob')];
    const sockets = [];
    for (const [i, user] of users.entries()) {
      const socket = await connectAs(viaLb, user, { mode: i === 0 ? 'websocket' : 'polling', managerOpts: RECONNECTING });
      assert.equal((await ask(socket, 'room:join', room.id)).ok, true);
      sockets.push(socket);
    }
    const cid = await connectAs(nodeB.clients(t), makeUser('Cid'));
    assert.equal((await ask(cid, 'room:join', room.id)).ok, true);
    const say = (text) => cid.emit('message:send', { roomId: room.id, text });
    const texts = (socket) => socket.inbox.items.filter(([name]) => name === 'message:received').map(([, m]) => m.text);
    say('before');
    await until(() => sockets.every((s) => texts(s).includes('before')), 'the message before the kill', WAIT_MS);
    const ids = sockets.map((s) => s.id);
    // Their sessions (with the room) are in Redis while they are connected.
    const client = createClient({ socket: { host: '127.0.0.1', port: redis.port, reconnectStrategy: false } });
    client.on('error', () => {});
    await client.connect();
    t.after(() => client.quit());
    for (const socket of sockets) {
      await until(async () => (await client.get(`sio:session:${socket._pid}`)) !== null, 'the session in Redis', WAIT_MS);
    }

    const back = sockets.map((s) => once(s, 'connect'));
    backends[0].up = false;
    signalGroup(nodeA.child, 'SIGKILL');
    await nodeA.exited;
    releaseChild(nodeA.child);
    const missed = ['missed 1', 'missed 2', 'missed 3'];
    for (const text of missed) say(text);
    await until(() => texts(cid).includes('missed 3'), 'the messages sent meanwhile', WAIT_MS);
    await Promise.all(back);
    say('after');
    for (const [i, socket] of sockets.entries()) {
      await until(() => texts(socket).includes('after'), `client ${i}: the message after`, WAIT_MS);
      assert.equal(socket.recovered, true, `client ${i} recovered`);
      assert.equal(socket.id, ids[i], 'same id');
      assert.deepEqual(texts(socket), ['before', ...missed, 'after'], `client ${i}: every message once, in order`);
    }
    // Still in the room on node B: a new message reaches them without another join.
    say('still in the room');
    for (const socket of sockets) await until(() => texts(socket).includes('still in the room'), 'the room kept', WAIT_MS);
    await sleep(200);
    for (const socket of sockets) assert.equal(texts(socket).length, 6, 'nothing twice');
  });
});
