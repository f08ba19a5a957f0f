// Two daemons on one redis-server (started here on a free loopback port) and one store, with
// `cluster: {redis: {url}}`: the chat flows with users on different nodes (room messages,
// direct messages, typing), cluster-wide presence (user:status once for the first socket
// anywhere and once for the last), the HTTP API of one node reaching clients of the other, a
// malformed cluster section refused, and a node killed with SIGKILL: its users go offline for
// the others within a bounded time and the other node goes on serving.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  requireBin, tempDir, baseConfig, startDaemon, runSioc, writeConfig, makeUser, publicUser, connectAs,
  createRoom, haveRedis, startRedis, sleep, presenceOf,
} from '../lib/daemon.js';
import { createClient } from 'redis';
import { ask, until } from '../lib/sio.js';

const QUIET_MS = 250;
const PRESENCE_MS = 300; // cluster.presenceIntervalMs: a dead node's users go offline after 3x
const WAIT_MS = 10_000; // for an event that must come: generous, the machine may be loaded

const statusOf = (userId) => ([payload]) => payload?.userId === userId;
const statusesOf = (socket, userId) => socket.inbox.items.filter(([n, p]) => n === 'user:status' && p?.userId === userId);

// Until the daemon has no socket of `userId` left (GET /presence/users is node-local): it has
// handled the disconnection, and so told the other nodes.
const untilGoneFrom = (daemon, userId) => until(async () => (await presenceOf(daemon, userId)).status === 'offline',
  `${userId} gone from the node`, WAIT_MS);

describe('daemon cluster on Redis (two nodes)', { skip: !haveRedis() && 'redis-server is not installed' }, () => {
  let redis;
  let nodeA;
  let nodeB;
  let dir;
  before(async () => {
    requireBin();
    redis = await startRedis();
    dir = tempDir('cluster');
    const config = (name) => baseConfig(dir, {
      store: { driver: 'sqlite', path: path.join(dir, 'shared.db') },
      cluster: { redis: { url: `redis://127.0.0.1:${redis.port}` }, mode: 'classic', key: 'socket.io', requestsTimeoutMs: 1500, presenceIntervalMs: PRESENCE_MS },
      limits: { typingTimeoutMs: 400 },
      channels: { '/': { driver: 'chat', auth: 'jwt' } },
      name,
    });
    const strip = ({ name, ...rest }) => rest;
    nodeA = await startDaemon(dir, strip(config('a')), { name: 'a.json' });
    nodeB = await startDaemon(dir, strip(config('b')), { name: 'b.json' });
    // Both nodes subscribed (one connection each: the pattern, then the request channel).
    const client = createClient({ socket: { host: '127.0.0.1', port: redis.port, reconnectStrategy: false } });
    client.on('error', () => {});
    await client.connect();
    try {
      await until(async () => (await client.pubSubNumSub('socket.io-request#/#'))['socket.io-request#/#'] === 2,
        'both nodes subscribed', WAIT_MS);
    } finally {
      await client.quit();
    }
  });
  after(async () => {
    await nodeA?.stopChecked();
    await nodeB?.stopChecked();
    await redis?.stop();
  });

  it('a room message from a user on node A reaches a member on node B, once', async (t) => {
    const [ann, bob] = [makeUser('Ann'), makeUser('Bob')];
    const room = await createRoom(nodeA);
    const annSocket = await connectAs(nodeA.clients(t), ann);
    const bobSocket = await connectAs(nodeB.clients(t), bob);
    assert.equal((await ask(annSocket, 'room:join', room.id)).ok, true);
    assert.equal((await ask(bobSocket, 'room:join', room.id)).ok, true);
    const [joined] = await annSocket.inbox.takeMatching('room:userJoined', ([p]) => p.user?.id === bob.id);
    assert.deepEqual(joined, { roomId: room.id, user: publicUser(bob) });
    annSocket.emit('message:send', { roomId: room.id, text: 'across nodes' });
    const [atAnn] = await annSocket.inbox.take('message:received');
    assert.deepEqual(await bobSocket.inbox.take('message:received'), [atAnn]);
    assert.equal(atAnn.text, 'across nodes');
    await sleep(QUIET_MS);
    assert.equal(bobSocket.inbox.count('message:received'), 0, 'delivered once');
  });

  it('a direct message reaches every tab of the recipient on both nodes, and typing crosses too', async (t) => {
    const [ann, bob] = [makeUser('Ann'), makeUser('Bob')];
    const annSocket = await connectAs(nodeA.clients(t), ann);
    const bobOnA = await connectAs(nodeA.clients(t), bob);
    const bobOnB = await connectAs(nodeB.clients(t), bob);
    const acked = await ask(annSocket, 'dm:send', { recipientId: bob.id, text: 'psst' });
    assert.equal(acked.ok, true);
    assert.deepEqual(await bobOnA.inbox.take('dm:received'), [acked.message]);
    assert.deepEqual(await bobOnB.inbox.take('dm:received'), [acked.message]);
    const room = await createRoom(nodeB);
    assert.equal((await ask(annSocket, 'room:join', room.id)).ok, true);
    assert.equal((await ask(bobOnB, 'room:join', room.id)).ok, true);
    annSocket.emit('typing:start', { roomId: room.id });
    const [typing] = await bobOnB.inbox.take('typing:update');
    assert.equal(typing.userId, ann.id);
    assert.equal(typing.isTyping, true);
  });

  it('the HTTP API of node B reaches a client on node A (POST /emit and POST /users/{id}/emit)', async (t) => {
    const ann = makeUser('Ann');
    const annSocket = await connectAs(nodeA.clients(t), ann);
    await nodeB.apiOk('POST', '/emit', { event: 'announcement', args: [{ text: 'hello all' }] });
    assert.deepEqual(await annSocket.inbox.take('announcement'), [{ text: 'hello all' }]);
    await nodeB.apiOk('POST', `/users/${ann.id}/emit`, { event: 'for-you', args: [1] });
    assert.deepEqual(await annSocket.inbox.take('for-you'), [1]);
  });

  it('presence is cluster-wide: online once for the first tab anywhere, offline once for the last', async (t) => {
    const [ann, bob] = [makeUser('Ann'), makeUser('Bob')];
    const bobSocket = await connectAs(nodeB.clients(t), bob);
    const annOnA = await connectAs(nodeA.clients(t), ann);
    // Node A publishes Ann's "up" before the user:status, on one connection, and node B reads
    // both on one: once Bob (on B) has the status, node B has heard of Ann on node A.
    assert.deepEqual(await bobSocket.inbox.takeMatching('user:status', statusOf(ann.id), WAIT_MS), [{ userId: ann.id, status: 'online' }]);
    const annOnB = await connectAs(nodeB.clients(t), ann);
    // Node A must have heard of Ann's tab on B before her tab on A closes (else A, alone as far
    // as it knows, announces offline: a race of one message's flight, like the one of two first
    // tabs in docs/cluster.md). Node B sent its "up" as she connected; a user emit from node B's
    // API to her tab on A goes out after it on the same connection and in on the same at node A.
    await nodeB.apiOk('POST', `/users/${ann.id}/emit`, { event: 'sync', args: [] });
    assert.deepEqual(await annOnA.inbox.take('sync', WAIT_MS), []);
    annOnA.disconnect();
    await untilGoneFrom(nodeA, ann.id); // node A has told node B; the quiet window starts here
    await sleep(PRESENCE_MS * 2);
    assert.equal(statusesOf(bobSocket, ann.id).length, 0,
      'a second tab on another node and closing the first one announce nothing');
    annOnB.disconnect();
    assert.deepEqual(await bobSocket.inbox.takeMatching('user:status', statusOf(ann.id), WAIT_MS), [{ userId: ann.id, status: 'offline' }]);
    await sleep(QUIET_MS);
    assert.equal(statusesOf(bobSocket, ann.id).length, 0, 'once');
  });

  it('check-config refuses a cluster section without redis.url, or with an unknown mode', async () => {
    for (const [cluster, message] of [
      [{ mode: 'classic' }, /cluster: redis\.url is required/],
      [{ redis: { url: 'http://x' } }, /cluster\.redis\.url: expected a redis:\/\//],
      [{ redis: { url: 'redis://127.0.0.1:1' }, mode: 'shared' }, /cluster\.mode: unknown mode "shared" \(expected classic, sharded or streams\)/],
    ]) {
      const file = writeConfig(dir, baseConfig(dir, { cluster }), 'bad.json');
      const result = await runSioc(['check-config', file]);
      assert.notEqual(result.code, 0);
      assert.match(result.stderr + result.stdout, message);
    }
  });

  it('node A killed with SIGKILL: its users go offline for the others (within 3 presence intervals); node B goes on serving', async (t) => {
    const [ann, bob] = [makeUser('Ann'), makeUser('Bob')];
    const bobSocket = await connectAs(nodeB.clients(t), bob);
    const annSocket = await connectAs(nodeA.clients(t), ann);
    annSocket.io.reconnection(false);
    // As above: with the status at Bob, node B has Ann in node A's set.
    assert.deepEqual(await bobSocket.inbox.takeMatching('user:status', statusOf(ann.id), WAIT_MS), [{ userId: ann.id, status: 'online' }]);
    process.kill(-nodeA.child.pid, 'SIGKILL');
    const killedAt = Date.now();
    await nodeA.exited;
    await annSocket.inbox.take('disconnect');
    nodeA = null;
    assert.deepEqual(await bobSocket.inbox.takeMatching('user:status', statusOf(ann.id), PRESENCE_MS * 6),
      [{ userId: ann.id, status: 'offline' }]);
    assert.ok(Date.now() - killedAt < PRESENCE_MS * 6, 'bounded');
    assert.match(nodeB.stderr, /node \S+ not heard of for 900 ms: its users are offline/);
    await nodeB.apiOk('POST', `/users/${bob.id}/emit`, { event: 'still-here', args: [] });
    assert.deepEqual(await bobSocket.inbox.take('still-here'), []);
  });
});
