// A mixed cluster on one real redis-server (started here on a free loopback port): two
// sioc-echo nodes (SIOC_ECHO, or the Node reference when unset, which checks these tests
// against Node itself) and one Node socket.io 4.8 node (ref/sioc-echo.js) with
// @socket.io/redis-adapter 8.3, clients (socket.io-client) on every node. Every cluster
// operation is started from every node and must reach the clients of every node; then
// @socket.io/redis-emitter from this process, hostile channel messages, and a Redis restart.
//
// CLUSTER_MODE=classic (default), sharded or streams (@socket.io/redis-streams-adapter 0.3 on the
// Node node) picks the adapter mode of every node,
// CLUSTER_SUBSCRIPTION=dynamic (default) / static / dynamic-private the sharded subscriptionMode.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient } from 'redis';
import { Emitter } from '@socket.io/redis-emitter';
import { startServer } from '../lib/server.js';
import { Clients, ask, freshNamespace, isSioReference, siocEchoCommand, sleep, until } from '../lib/sio.js';
import { haveRedis, startRedis } from '../lib/daemon.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const NODE_ECHO = [process.execPath, path.resolve(here, '../ref/sioc-echo.js')];
const MODE = process.env.CLUSTER_MODE ?? 'classic';
const SUBSCRIPTION = process.env.CLUSTER_SUBSCRIPTION ?? 'dynamic';
const REQUESTS_TIMEOUT_MS = 1500;
const QUIET_MS = 300;
const WAIT_MS = 10_000; // for something that must come: generous, the machine may be loaded

const byId = (a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

async function startNode(command, redisPort) {
  return startServer(command, [
    '--redis', `redis://127.0.0.1:${redisPort}`,
    '--redis-mode', MODE,
    '--redis-requests-timeout', String(REQUESTS_TIMEOUT_MS),
    ...(MODE === 'sharded' ? ['--redis-subscription-mode', SUBSCRIPTION] : []),
  ]);
}

describe(`cluster on Redis (${MODE}${MODE === 'sharded' ? `, ${SUBSCRIPTION}` : ''}): two sioc nodes and one Node node`, { skip: !haveRedis() && 'redis-server is not installed' }, () => {
  let redis;
  let nodes; // [{name, server}]
  before(async () => {
    redis = await startRedis();
    nodes = [
      { name: 'sioc-a', server: await startNode(siocEchoCommand(), redis.port) },
      { name: 'sioc-b', server: await startNode(siocEchoCommand(), redis.port) },
      { name: 'node', server: await startNode(NODE_ECHO, redis.port) },
    ];
  });
  after(async () => {
    for (const node of nodes ?? []) await node.server.stopChecked();
    await redis?.stop();
  });

  // One client per node in a fresh namespace (auth.who names the node, auth.room joins r
  // for the first two nodes), once every node's adapter counts three servers there.
  async function clusterClients(t, { nsp = freshNamespace(), rooms = ['r', 'r', null], on = [0, 1, 2] } = {}) {
    const sockets = [];
    for (const [i, node] of nodes.entries()) {
      if (!on.includes(i)) continue;
      const c = new Clients(node.server, t);
      const auth = { who: node.name };
      if (rooms[i]) auth.room = rooms[i];
      sockets.push(await c.connect('websocket', nsp, { auth }));
    }
    for (const socket of sockets) {
      const deadline = Date.now() + 5000;
      while ((await ask(socket, 'server-count')) !== on.length) {
        if (Date.now() > deadline) throw new Error(`${nsp}: serverCount never reached ${on.length}`);
        await sleep(30);
      }
    }
    return sockets;
  }

  it('serverCount is 3 on every node', async (t) => {
    const sockets = await clusterClients(t);
    for (const socket of sockets) assert.equal(await ask(socket, 'server-count'), 3);
  });

  for (let from = 0; from < 3; from++) {
    describe(`from node ${from}`, () => {
      it('to(room).emit reaches the room members on every node (binary included), no one else', async (t) => {
        const sockets = await clusterClients(t, { rooms: ['r', 'r', 'r'].map((r, i) => (i === (from + 1) % 3 ? null : r)) });
        const outsider = (from + 1) % 3;
        await ask(sockets[from], 'join', 'r');
        sockets[from].emit('to-room', 'r', 'hello', 'x', { n: 1 }, Buffer.from([1, 2, 3]));
        for (const [i, socket] of sockets.entries()) {
          if (i === outsider) continue;
          const [text, object, bytes] = await socket.inbox.take('hello');
          assert.equal(text, 'x');
          assert.deepEqual(object, { n: 1 });
          assert.deepEqual(Buffer.from(bytes), Buffer.from([1, 2, 3]));
        }
        await sockets[outsider].inbox.none('hello', QUIET_MS);
      });

      it('socket.broadcast.emit reaches every other socket on every node, not the sender', async (t) => {
        const sockets = await clusterClients(t);
        sockets[from].emit('broadcast', 'all', from);
        for (const [i, socket] of sockets.entries()) {
          if (i !== from) assert.deepEqual(await socket.inbox.take('all'), [from]);
        }
        await sockets[from].inbox.none('all', QUIET_MS);
      });

      it('to-rooms-except: rooms minus except across nodes', async (t) => {
        const sockets = await clusterClients(t, { rooms: ['r', 'r', 'r'] });
        const excepted = (from + 2) % 3;
        await ask(sockets[excepted], 'join', 'x');
        sockets[from].emit('to-rooms-except', { to: ['r'], except: ['x'] }, 'picked');
        for (const [i, socket] of sockets.entries()) {
          if (i !== excepted) assert.deepEqual(await socket.inbox.take('picked'), []);
        }
        await sockets[excepted].inbox.none('picked', QUIET_MS);
      });

      it('fetchSockets lists the sockets of every node with rooms, data and auth', async (t) => {
        const sockets = await clusterClients(t);
        for (const [i, socket] of sockets.entries()) await ask(socket, 'set-data', { node: i });
        const list = await ask(sockets[from], 'fetch-sockets', null);
        const expected = sockets
          .map((s, i) => ({
            id: s.id,
            rooms: [s.id, ...(i < 2 ? ['r'] : [])].sort(),
            data: { node: i },
            auth: { who: nodes[i].name, ...(i < 2 ? { room: 'r' } : {}) },
          }))
          .sort(byId);
        assert.deepEqual(list.sort(byId).map((s) => ({ ...s, rooms: [...s.rooms].sort() })), expected);
        const inRoom = await ask(sockets[from], 'fetch-sockets', 'r');
        assert.deepEqual(inRoom.map((s) => s.id).sort(), [sockets[0].id, sockets[1].id].sort());
      });

      // Only the classic adapter has allRooms(): socket.io-adapter's ClusterAdapter (sharded) and
      // the streams adapter have none, so Node gives nothing to compare with there.
      it('allRooms lists the rooms of every node, each socket\'s own id included', { skip: MODE !== 'classic' && `${MODE}: Node's adapter has no allRooms()` }, async (t) => {
        const sockets = await clusterClients(t);
        await ask(sockets[2], 'join', 'on-node-2');
        const rooms = await ask(sockets[from], 'all-rooms');
        assert.deepEqual(rooms, [...sockets.map((s) => s.id), 'r', 'on-node-2'].sort());
      });

      it('socketsJoin / socketsLeave move sockets of every node', async (t) => {
        const sockets = await clusterClients(t);
        await ask(sockets[from], 'sockets-join', 'r', 'moved');
        // Node's adapter applies its own socketsJoin when the request comes back from Redis.
        for (const socket of sockets.slice(0, 2)) {
          const deadline = Date.now() + 3000;
          while (!(await ask(socket, 'rooms')).includes('moved')) {
            if (Date.now() > deadline) throw new Error(`${socket.id} never joined "moved"`);
            await sleep(20);
          }
        }
        assert.ok(!(await ask(sockets[2], 'rooms')).includes('moved'), 'not in r: not moved');
        await ask(sockets[from], 'sockets-leave', 'r', 'moved');
        for (const socket of sockets.slice(0, 2)) {
          const deadline = Date.now() + 3000;
          while ((await ask(socket, 'rooms')).includes('moved')) {
            if (Date.now() > deadline) throw new Error(`${socket.id} never left "moved"`);
            await sleep(20);
          }
        }
      });

      it('disconnectSockets disconnects the room members on every node', async (t) => {
        const sockets = await clusterClients(t);
        await ask(sockets[from], 'disconnect-sockets', 'r', false);
        for (const socket of sockets.slice(0, 2)) {
          const [reason] = await socket.inbox.take('disconnect');
          assert.equal(reason, 'io server disconnect');
        }
        await sleep(QUIET_MS);
        assert.ok(sockets[2].connected, 'the socket outside r stays');
      });

      it('broadcast with acks: every client of every node answers, error null', async (t) => {
        const sockets = await clusterClients(t);
        for (const [i, socket] of sockets.entries()) socket.on('question', (n, cb) => cb(`answer-${i}-${n}`));
        const result = await ask(sockets[from], 'broadcast-ack', 2000, 'question', 7);
        assert.equal(result.error, null);
        assert.deepEqual(result.responses.sort(), ['answer-0-7', 'answer-1-7', 'answer-2-7']);
      });

      it('broadcast with acks: a client that never answers ends in a timeout with the others', async (t) => {
        const sockets = await clusterClients(t);
        const silent = (from + 1) % 3;
        for (const [i, socket] of sockets.entries()) if (i !== silent) socket.on('question', (cb) => cb(i));
        const result = await ask(sockets[from], 'broadcast-ack', 700, 'question');
        assert.equal(result.error, 'operation has timed out');
        assert.deepEqual(result.responses.sort(), [0, 1, 2].filter((i) => i !== silent));
      });

      it('serverSideEmit reaches the other nodes, not this one', async (t) => {
        const sockets = await clusterClients(t, { nsp: '/' });
        await ask(sockets[from], 'server-side-emit-event', 'hello', 'world', 42);
        for (const [i, socket] of sockets.entries()) {
          if (i !== from) assert.deepEqual(await socket.inbox.take('server-side'), ['hello', 'world', 42]);
        }
        await sockets[from].inbox.none('server-side', QUIET_MS);
      });

      it('serverSideEmit with acks: one answer per other node', async (t) => {
        const sockets = await clusterClients(t, { nsp: '/' });
        const result = await ask(sockets[from], 'server-side-emit-ack', 'hello', 1);
        assert.deepEqual(result, { error: null, responses: ['pong', 'pong'] });
      });
    });
  }

  // The emitter speaks the classic format only (PUBLISH): not for sharded clusters.
  describe('@socket.io/redis-emitter', { skip: MODE !== 'classic' && `the emitter has no ${MODE} mode` }, () => {
    let client;
    let emitter;
    before(async () => {
      client = createClient({ url: `redis://127.0.0.1:${redis.port}` });
      client.on('error', () => {});
      await client.connect();
      emitter = new Emitter(client);
    });
    after(async () => {
      await client?.quit();
    });

    it('emit to all, to a room, except a room, reaches the clients of every node', async (t) => {
      const sockets = await clusterClients(t, { nsp: '/' });
      emitter.emit('from-emitter', 1, { a: [true] });
      for (const socket of sockets) assert.deepEqual(await socket.inbox.take('from-emitter'), [1, { a: [true] }]);
      emitter.to('r').emit('room-only', Buffer.from([9]));
      for (const socket of sockets.slice(0, 2)) assert.deepEqual(Buffer.from((await socket.inbox.take('room-only'))[0]), Buffer.from([9]));
      emitter.except('r').emit('not-r');
      assert.deepEqual(await sockets[2].inbox.take('not-r'), []);
      await sockets[0].inbox.none('room-only', 0);
      await sockets[2].inbox.none('room-only', QUIET_MS);
      await sockets[0].inbox.none('not-r', 0);
      await sockets[1].inbox.none('not-r', 0);
    });

    it('socketsJoin, socketsLeave, disconnectSockets and serverSideEmit reach every node', async (t) => {
      const nsp = freshNamespace();
      const sockets = await clusterClients(t, { nsp });
      const ns = emitter.of(nsp);
      ns.in('r').socketsJoin('joined');
      for (const socket of sockets.slice(0, 2)) {
        const deadline = Date.now() + 3000;
        while (!(await ask(socket, 'rooms')).includes('joined')) {
          if (Date.now() > deadline) throw new Error('emitter socketsJoin did not arrive');
          await sleep(20);
        }
      }
      ns.to('joined').emit('in-joined');
      for (const socket of sockets.slice(0, 2)) await socket.inbox.take('in-joined');
      ns.in('joined').socketsLeave('joined');
      ns.in(sockets[2].id).disconnectSockets();
      const [reason] = await sockets[2].inbox.take('disconnect');
      assert.equal(reason, 'io server disconnect');
      // The disconnection at node 2 does not say that nodes 0 and 1 have read the socketsLeave.
      for (const socket of sockets.slice(0, 2)) {
        await until(async () => !(await ask(socket, 'rooms')).includes('joined'), `${socket.id} leaving "joined"`, WAIT_MS);
      }
    });

    it('serverSideEmit from the emitter reaches every node', async (t) => {
      const sockets = await clusterClients(t, { nsp: '/' });
      emitter.serverSideEmit('hello', 'from emitter');
      for (const socket of sockets) assert.deepEqual(await socket.inbox.take('server-side'), ['hello', 'from emitter']);
    });

    // Only the sioc nodes are in this namespace: a request without opts makes Node's adapter
    // throw in its message handler, which ends the Node process.
    it('hostile messages on the channels are dropped; the sioc nodes go on working', { skip: isSioReference() && 'Node\'s adapter dies on some of them' }, async (t) => {
      const nsp = freshNamespace();
      const sockets = await clusterClients(t, { nsp, on: [0, 1], rooms: [null, null] });
      const channel = `socket.io#${nsp}#`;
      const request = `socket.io-request#${nsp}#`;
      const response = `socket.io-response#${nsp}#`;
      const bad = [
        [channel, Buffer.from([0xc1])], // never-used msgpack byte
        [channel, Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff])], // array of 4 G elements, no body
        [channel, Buffer.from([0x93, 0x01, 0x02, 0x03])], // wrong types
        [channel, Buffer.from([0x93, 0xa1, 0x78, 0x81, 0xa4, 0x74, 0x79, 0x70, 0x65, 0x01, 0x80])], // type 1
        [channel, Buffer.alloc(2 * 1024 * 1024, 0x90)], // huge
        [channel, Buffer.from('{"not":"msgpack"}')],
        [`${channel}r#`, Buffer.from([0x92, 0x01])],
        [request, Buffer.from('{"type":99,"uid":"x"}')], // unknown type
        [request, Buffer.from('{"type":5,"uid":"x","requestId":"q"}')], // no opts
        [request, Buffer.from('{"type":2,"opts":{"rooms":[1]},"rooms":["z"]}')],
        [request, Buffer.from('{broken json')],
        [request, Buffer.from([0x81, 0xa4, 0x74, 0x79, 0x70, 0x65, 0x07])], // BROADCAST without packet
        [response, Buffer.from('{"requestId":5}')],
        [response, Buffer.from([0xff, 0xff])],
      ];
      for (const [name, bytes] of bad) await client.publish(name, bytes);
      // A well-formed message for another namespace on this namespace's channel.
      const foreign = Buffer.from([
        0x93, 0xa1, 0x78,
        0x83, 0xa4, 0x74, 0x79, 0x70, 0x65, 0x02, 0xa4, 0x64, 0x61, 0x74, 0x61, 0x91, 0xa3, 0x65, 0x76, 0x74,
        0xa3, 0x6e, 0x73, 0x70, 0xa6, 0x2f, 0x6f, 0x74, 0x68, 0x65, 0x72,
        0x80,
      ]);
      await client.publish(channel, foreign);
      await sleep(QUIET_MS);
      for (const socket of sockets) {
        assert.ok(socket.connected);
        assert.deepEqual(socket.inbox.names().filter((n) => n === 'evt' || n === 'z'), []);
      }
      sockets[0].emit('broadcast', 'still-working');
      await sockets[1].inbox.take('still-working');
      // Each node logs as it reads the messages, and its stderr reaches us through a pipe: wait
      // for every line (still-working at node 1 does not say that node 0 has read them all).
      for (const node of nodes.slice(0, 2)) {
        for (const pattern of [
          /dropped a message on socket\.io#\/dynamic-\d+#: /,
          /dropped a message on socket\.io-request#\/dynamic-\d+#: unknown request type/,
          /packet for another namespace/,
          /larger than max_message_size/,
        ]) {
          await until(() => pattern.test(node.server.stderr), `${node.name} logging ${pattern}`, WAIT_MS)
            .catch(() => assert.match(node.server.stderr, pattern));
        }
      }
    });
  });

  // Node's sharded and streams adapters (socket.io-adapter's ClusterAdapter.broadcast) deliver a broadcast
  // on its own node only once its publish to Redis returned, which waits for Redis to come back:
  // sioc delivers locally at once, as Node's classic adapter does.
  const localWhileDown = isSioReference() && MODE !== 'classic' &&
    "Node's sharded and streams adapters hold local delivery until Redis is back (the publish is awaited first)";
  it('Redis stopped and restarted under traffic: local delivery goes on, the cluster heals by itself', { skip: localWhileDown }, async (t) => {
    const sockets = await clusterClients(t, { nsp: '/custom', rooms: ['r', 'r', 'r'] });
    const port = redis.port;
    await redis.stop();
    // Local delivery while Redis is down.
    sockets[0].emit('message', 'alone');
    assert.deepEqual(await sockets[0].inbox.take('message-back'), ['alone']);
    const second = await new Clients(nodes[0].server, t).connect('websocket', '/custom', { auth: { room: 'r' } });
    sockets[0].emit('to-room', 'r', 'local-only');
    await second.inbox.take('local-only');
    await sleep(300);
    redis = await startRedis({ port });
    // Every node reconnects and resubscribes: cross-node broadcasts flow again.
    const deadline = Date.now() + 15000;
    for (let from = 0; from < 3; from++) {
      for (;;) {
        const tag = `healed-${from}-${Date.now()}`;
        sockets[from].emit('to-room', 'r', tag);
        const got = await Promise.all(
          sockets.map((s, i) => (i === from ? Promise.resolve(true) : s.inbox.take(tag, 300).then(() => true, () => false))),
        );
        if (got.every(Boolean)) break;
        if (Date.now() > deadline) throw new Error(`node ${from}: cross-node broadcasts did not come back; stderr: ${nodes.map((n) => n.server.stderr).join("\n---\n")}`);
      }
    }
  });
});
