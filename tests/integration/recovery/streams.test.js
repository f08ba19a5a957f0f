// Connection state recovery kept in Redis (streams mode, issue 9): two sioc-echo nodes
// (SIOC_ECHO, or the Node reference when unset) and one Node socket.io 4.8 node with
// @socket.io/redis-streams-adapter 0.3.1, all `--recovery --redis-mode streams` on one real
// redis-server started here. A client is moved from one node to another by pointing its
// Manager at the other node (manager.uri) before cutting its transport; with the recovery
// state in Redis it comes back recovered wherever it lands: same id, rooms and data, the
// missed packets in order, exactly once.
//
// Node loss: two more sioc nodes behind a TCP balancer (lib/balancer.js); the one holding the
// clients is SIGKILLed, the clients reconnect through the balancer to the other.
//
// Bad input: forged, truncated, unknown and expired pids and offsets, garbage in a session key,
// two clients presenting the same pid at once.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { balancer } from '../lib/balancer.js';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient } from 'redis';
import { startServer, signalGroup, releaseChild } from '../lib/server.js';
import { Clients, ask, isSioReference, parseConnect, siocEchoCommand, sleep, until } from '../lib/sio.js';
import { haveRedis, startRedis } from '../lib/daemon.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const NODE_ECHO = [process.execPath, path.resolve(here, '../ref/sioc-echo.js')];
const WAIT_MS = 10_000;
// Long enough for the sender to emit the packets the client must miss.
const RECONNECT = { reconnection: true, reconnectionDelay: 400, reconnectionDelayMax: 400, randomizationFactor: 0 };

function startNode(command, redisPort, extra = []) {
  return startServer(command, [
    '--recovery', '--redis', `redis://127.0.0.1:${redisPort}`, '--redis-mode', 'streams', ...extra,
  ]);
}

function once(socket, event, timeoutMs = WAIT_MS) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${timeoutMs} ms`)), timeoutMs);
    socket.once(event, (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}

/** Cut the client's transport; its Manager reconnects to `port` (the same node when omitted). */
function cut(socket, port) {
  if (port !== undefined) socket.io.uri = `http://127.0.0.1:${port}`;
  const back = once(socket, 'connect');
  socket.io.engine.close();
  return back;
}

const values = (events) => events.map((args) => args[0]);

describe('recovery in Redis (streams mode): sioc and Node nodes recover each other\'s clients', { skip: !haveRedis() && 'redis-server is not installed' }, () => {
  let redis;
  let client; // node-redis, to look at and forge what the nodes keep
  let nodes; // [{name, server}]
  before(async () => {
    redis = await startRedis();
    client = createClient({ url: `redis://127.0.0.1:${redis.port}` });
    client.on('error', () => {});
    await client.connect();
    nodes = [
      { name: 'sioc-a', server: await startNode(siocEchoCommand(), redis.port) },
      { name: 'sioc-b', server: await startNode(siocEchoCommand(), redis.port) },
      { name: 'node', server: await startNode(NODE_ECHO, redis.port) },
    ];
  });
  after(async () => {
    await client?.quit().catch(() => {});
    for (const node of nodes ?? []) await node.server.stopChecked();
    await redis?.stop();
  });

  const moves = [[0, 1], [1, 0], [0, 2], [2, 0], [2, 1]];
  for (const mode of ['websocket', 'polling']) {
    for (const [from, to] of moves) {
      it(`${mode}: a client moving from ${['sioc-a', 'sioc-b', 'node'][from]} to ${['sioc-a', 'sioc-b', 'node'][to]} is recovered with what it missed, once, in order`, async (t) => {
        const room = `move-${mode}-${from}-${to}`;
        const x = await new Clients(nodes[from].server, t).connect(mode, '/', { auth: { room }, managerOpts: RECONNECT });
        // The sender sits on the third node: the packets cross Redis either way.
        const sender = await new Clients(nodes[3 - from - to].server, t).connect('websocket', '/');
        const id = x.id;
        await ask(x, 'join', 'extra');
        await ask(x, 'set-data', { kept: from });
        sender.emit('to-room', room, 'ev', 0);
        assert.deepEqual(values(await x.inbox.takeN('ev', 1)), [0], 'x has an offset now');

        const back = cut(x, nodes[to].server.port);
        sender.emit('to-room', room, 'ev', 1);
        sender.emit('to-room', 'extra', 'ev', 2);
        sender.emit('to-room', `${room}-elsewhere`, 'ev', 'not for x');
        sender.emit('to-rooms-except', { to: [room], except: ['extra'] }, 'ev', 'excepted');
        sender.emit('to-room', room, 'ev', 3);
        await back;

        assert.equal(x.id, id, 'same id');
        assert.equal(x.recovered, true);
        assert.equal(await ask(x, 'recovered'), true);
        const missed = await x.inbox.takeN('ev', 3);
        assert.deepEqual(values(missed), [1, 2, 3], 'missed events, in order');
        for (const args of missed) assert.match(args.at(-1), /^\d+-\d+$/, 'offsets are stream ids');
        assert.deepEqual((await ask(x, 'rooms')).sort(), [id, 'extra', room].sort());
        assert.deepEqual(await ask(x, 'get-data'), { kept: from });
        sender.emit('to-room', room, 'ev', 4);
        assert.deepEqual(values(await x.inbox.takeN('ev', 1)), [4]);
        assert.equal(x.inbox.count('ev'), 0, 'nothing twice');
      });
    }
  }

  it('a socket\'s session is in Redis while it is connected (written at connect, rooms kept current); gone after a deliberate disconnect', { skip: isSioReference() && 'Node writes sessions only at close' }, async (t) => {
    const x = await new Clients(nodes[0].server, t).connect('websocket', '/', { auth: { room: 'live' } });
    const key = `sio:session:${x._pid}`;
    await until(async () => (await client.get(key)) !== null, 'the session written at connect', WAIT_MS);
    await ask(x, 'join', 'later');
    await until(async () => {
      const raw = await client.get(key);
      return raw !== null && Buffer.from(raw, 'base64').includes(Buffer.from('later'));
    }, 'the join written', WAIT_MS);
    const ttl = await client.pTTL(key);
    assert.ok(ttl > 120_000 && ttl <= 150_000, `a connected session lives window + refresh (got ${ttl} ms)`);
    x.disconnect();
    await until(async () => (await client.get(key)) === null, 'the session dropped at a client disconnect', WAIT_MS);
  });

  describe('bad input', () => {
    // A client that got a packet and lost its connection: its pid, offset and old id.
    async function leftSession(t, node = nodes[0]) {
      const x = await new Clients(node.server, t).connect('websocket', '/', { auth: { room: 'bad' } });
      const [, offset] = await x.inbox.take('auth');
      const pid = x._pid;
      const id = x.id;
      x.io.engine.close();
      // The node saw the disconnection once the session's time to live is the window alone
      // (while connected, sioc keeps it window + refresh).
      await until(async () => {
        const ttl = await client.pTTL(`sio:session:${pid}`);
        return ttl > 0 && ttl <= 120_000;
      }, 'the session kept at the disconnection', WAIT_MS);
      return { pid, offset, id };
    }

    // Sends CONNECT with auth on a raw session; returns {reply, before}: the CONNECT reply and
    // the events that came first (a recovered session's missed packets).
    async function rawConnect(raw, auth) {
      await raw.send(`40${JSON.stringify(auth)}`);
      const before = [];
      for (;;) {
        const text = await raw.nextText(WAIT_MS);
        const reply = parseConnect(text, '/');
        if (reply) return { reply, before };
        before.push(text);
      }
    }

    for (const transport of ['websocket', 'polling']) {
      it(`${transport}: a forged pid, a truncated, unknown or forged offset give a fresh session; the real one still recovers afterwards`, async (t) => {
        const { pid, offset, id } = await leftSession(t);
        const c = new Clients(nodes[0].server, t);
        const attempts = [
          { pid: 'AAAAAAAAAAAAAAAAAAAA', offset },
          { pid, offset: offset.slice(0, -2) + '-' },
          { pid, offset: 'abc' },
          { pid, offset: '1-1' },
          { pid, offset: `${offset}9` },
          { pid: `${pid}\u0000`, offset },
          { pid: 42, offset },
        ];
        for (const auth of attempts) {
          const raw = await c.raw(transport);
          const { reply } = await rawConnect(raw, auth);
          assert.notEqual(reply.sid, id, `fresh session for ${JSON.stringify(auth)}`);
          assert.notEqual(reply.pid, pid);
          raw.stop();
        }
        // Deliberately unlike Node, whose restoreSession() deletes the session even when the
        // offset is not in the stream: a wrong offset does not destroy the real client's session.
        if (isSioReference()) return;
        const raw = await c.raw(transport);
        const { reply } = await rawConnect(raw, { pid, offset });
        assert.equal(reply.sid, id, 'the untouched session recovers');
        assert.equal(reply.pid, pid);
      });
    }

    it('garbage in a session key gives a fresh session and a log line; the node goes on', { skip: isSioReference() && 'Node throws on it' }, async (t) => {
      const { pid, id } = await leftSession(t);
      const c = new Clients(nodes[0].server, t);
      for (const garbage of ['!!!not base64', Buffer.from([0xc1, 0x00]).toString('base64'), Buffer.from('{"sid":1}').toString('base64')]) {
        await client.set(`sio:session:${pid}`, garbage, { PX: 60_000 });
        // A (pid, offset) is claimed once: each try gets an offset of its own, an entry for a
        // namespace nobody has.
        const offset = await client.xAdd('socket.io', '*', { uid: 'test', nsp: '/nobody', type: '3', data: '{}' });
        const raw = await c.raw('websocket');
        const { reply } = await rawConnect(raw, { pid, offset });
        assert.notEqual(reply.sid, id);
        raw.stop();
      }
      await until(() => (nodes[0].server.stderr.match(/unreadable session/g) ?? []).length >= 3, 'a log line per try', WAIT_MS);
      const y = await c.connect('websocket', '/');
      assert.equal(await ask(y, 'recovered'), false);
    });

    it('two clients presenting the same pid at once: exactly one gets the session', async (t) => {
      const { pid, offset, id } = await leftSession(t);
      const c = new Clients(nodes[0].server, t);
      const raws = await Promise.all([c.raw('websocket'), c.raw('polling'), c.raw('websocket')]);
      const replies = await Promise.all(raws.map((raw) => rawConnect(raw, { pid, offset })));
      const winners = replies.filter(({ reply }) => reply.sid === id);
      assert.equal(winners.length, 1, `one winner: ${JSON.stringify(replies.map(({ reply }) => reply))}`);
      for (const { reply } of replies) if (reply.sid !== id) assert.notEqual(reply.pid, pid);
    });

    it('an expired session (maxDisconnectionDuration past) gives a fresh one', async (t) => {
      const short = await startNode(siocEchoCommand(), redis.port, ['--max-disconnection-duration', '600']);
      t.after(() => short.stopChecked());
      const { pid, offset, id } = await leftSession(t, { server: short });
      await until(async () => (await client.get(`sio:session:${pid}`)) === null, 'the session expired', WAIT_MS);
      const raw = await new Clients(short, t).raw('websocket');
      const { reply } = await rawConnect(raw, { pid, offset });
      assert.notEqual(reply.sid, id);
    });

    it('a store that does not answer (Redis paused): the CONNECT comes within half the connect timeout, a fresh session; the session is kept for a later try', { skip: isSioReference() && 'Node waits for its store (and socket.io-client has no CONNECT timeout)' }, async (t) => {
      const bounded = await startNode(siocEchoCommand(), redis.port, ['--connect-timeout', '2000']);
      t.after(() => bounded.stopChecked());
      const { pid, offset, id } = await leftSession(t, { server: bounded });
      const c = new Clients(bounded, t);
      const raw = await c.raw('websocket');
      const PAUSE_MS = 6000;
      const pausedAt = Date.now();
      await client.sendCommand(['CLIENT', 'PAUSE', String(PAUSE_MS), 'ALL']);
      // Before the bound, this reply came only after the pause (and never with a lost answer).
      const { reply } = await rawConnect(raw, { pid, offset });
      assert.ok(Date.now() - pausedAt < PAUSE_MS, 'the CONNECT reply came while Redis was paused');
      assert.notEqual(reply.sid, id, 'a fresh session');
      assert.notEqual(reply.pid, pid);
      raw.stop();
      // The late answer finds the client gone and gives the session back: it takes the session
      // (GET + DEL), then releases its claim and saves the session again. Seeing the session alone
      // is not enough: a GET queued behind the pause can see it before the late restore took it,
      // while that restore still holds the claim that makes a second presenter start afresh.
      const claim = `sio:restore:${pid}:${offset}`;
      await until(async () => (await client.get(`sio:session:${pid}`)) !== null && (await client.exists(claim)) === 0,
        'the session given back and the claim released', WAIT_MS * 2);
      const again = await c.raw('websocket');
      const { reply: recovered } = await rawConnect(again, { pid, offset });
      assert.equal(recovered.sid, id, 'recovered once Redis answers');
    });
  });

  describe('node loss', () => {
    it('SIGKILL of the node holding the clients: they come back through the balancer on the other node, recovered, nothing lost', { skip: isSioReference() && 'Node writes sessions only at close: a killed node leaves none' }, async (t) => {
      const backends = [
        { up: true, server: await startNode(siocEchoCommand(), redis.port) },
        { up: true, server: await startNode(siocEchoCommand(), redis.port) },
      ];
      t.after(async () => {
        await backends[0].server.stop();
        await backends[1].server.stopChecked();
      });
      const lb = await balancer(() => backends.find((b) => b.up).server.port);
      t.after(() => lb.close());
      const viaLb = new Clients({ port: lb.port }, t);
      const clients = [];
      for (let i = 0; i < 10; i++) {
        const mode = i % 2 ? 'polling' : 'websocket';
        clients.push(await viaLb.connect(mode, '/', { auth: { room: 'lost' }, managerOpts: { ...RECONNECT, reconnectionDelay: 200, reconnectionDelayMax: 200 } }));
      }
      const sender = await new Clients(backends[1].server, t).connect('websocket', '/');
      sender.emit('to-room', 'lost', 'ev', 0);
      for (const x of clients) assert.deepEqual(values(await x.inbox.takeN('ev', 1)), [0]);
      const ids = clients.map((x) => x.id);
      // Joins must be in Redis before the kill: the session is written at the end of the loop
      // iteration that joined.
      await Promise.all(clients.map((x) => ask(x, 'join', 'joined-before-kill')));

      const back = clients.map((x) => once(x, 'connect'));
      backends[0].up = false;
      signalGroup(backends[0].server.child, 'SIGKILL');
      await backends[0].server.exited;
      releaseChild(backends[0].server.child);
      for (let n = 1; n <= 5; n++) sender.emit('to-room', 'lost', 'ev', n);
      sender.emit('to-room', 'joined-before-kill', 'ev', 6);
      await Promise.all(back);

      for (const [i, x] of clients.entries()) {
        assert.equal(x.id, ids[i], 'same id');
        assert.equal(x.recovered, true, `client ${i} recovered`);
        assert.deepEqual(values(await x.inbox.takeN('ev', 6)), [1, 2, 3, 4, 5, 6], `client ${i}: missed events, in order`);
        assert.ok((await ask(x, 'rooms')).includes('joined-before-kill'));
      }
      await sleep(200);
      for (const x of clients) assert.equal(x.inbox.count('ev'), 0, 'nothing twice');
    });
  });
});
