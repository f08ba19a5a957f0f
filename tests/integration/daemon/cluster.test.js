// Two daemons on one redis-server (started here on a free loopback port) and one store, with
// `cluster: {redis: {url}}`: the chat flows with users on different nodes (room messages,
// direct messages, typing), the HTTP API of one node reaching clients of the other, a
// malformed cluster section refused, and a node killed with SIGKILL leaving the other serving.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  requireBin, tempDir, baseConfig, startDaemon, runSioc, writeConfig, makeUser, publicUser, connectAs,
  createRoom, haveRedis, startRedis, sleep,
} from '../lib/daemon.js';
import { ask } from '../lib/sio.js';

const QUIET_MS = 250;

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
      cluster: { redis: { url: `redis://127.0.0.1:${redis.port}` }, mode: 'classic', key: 'socket.io', requestsTimeoutMs: 1500 },
      limits: { typingTimeoutMs: 400 },
      channels: { '/': { driver: 'chat', auth: 'jwt' } },
      name,
    });
    const strip = ({ name, ...rest }) => rest;
    nodeA = await startDaemon(dir, strip(config('a')), { name: 'a.json' });
    nodeB = await startDaemon(dir, strip(config('b')), { name: 'b.json' });
    await sleep(200); // both subscribed
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

  it('check-config refuses a cluster section without redis.url, or with an unknown mode', async () => {
    for (const [cluster, message] of [
      [{ mode: 'classic' }, /cluster: redis\.url is required/],
      [{ redis: { url: 'http://x' } }, /cluster\.redis\.url: expected a redis:\/\//],
      [{ redis: { url: 'redis://127.0.0.1:1' }, mode: 'sharded' }, /cluster\.mode: unknown mode "sharded"/],
    ]) {
      const file = writeConfig(dir, baseConfig(dir, { cluster }), 'bad.json');
      const result = await runSioc(['check-config', file]);
      assert.notEqual(result.code, 0);
      assert.match(result.stderr + result.stdout, message);
    }
  });

  it('node A killed with SIGKILL: node B goes on serving its own clients and the API', async (t) => {
    const [ann, bob] = [makeUser('Ann'), makeUser('Bob')];
    const bobSocket = await connectAs(nodeB.clients(t), bob);
    const annSocket = await connectAs(nodeA.clients(t), ann);
    annSocket.io.reconnection(false);
    process.kill(-nodeA.child.pid, 'SIGKILL');
    await nodeA.exited;
    await annSocket.inbox.take('disconnect');
    nodeA = null;
    await nodeB.apiOk('POST', `/users/${bob.id}/emit`, { event: 'still-here', args: [] });
    assert.deepEqual(await bobSocket.inbox.take('still-here'), []);
  });
});
