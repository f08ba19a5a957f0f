// Broadcasting with socket.io-client: rooms, unions of rooms without
// duplicates, except, socket.broadcast, namespace-wide, volatile, and
// broadcasts with acks (all answered / one never answers). Each test uses a
// fresh dynamic namespace so that namespace-wide emits stay within the test.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSiocEcho, Clients, MODES, ask, freshNamespace, normalizeBinary, sleep } from '../lib/sio.js';

const QUIET_MS = 250;

// Connect `n` sockets (separate Managers) to a fresh namespace.
async function group(c, mode, n, nsp = freshNamespace()) {
  const sockets = [];
  for (let i = 0; i < n; i++) sockets.push(await c.connect(mode, nsp));
  return sockets;
}

describe('sio broadcast', () => {
  let server;
  before(async () => {
    server = await startSiocEcho([]);
  });
  after(async () => {
    await server?.stopChecked();
  });

  for (const mode of Object.keys(MODES)) {
    describe(mode, () => {
      it('to-room reaches the sockets in the room once each, sender included; others get nothing', async (t) => {
        const c = new Clients(server, t);
        const [a, b, other] = await group(c, mode, 3);
        assert.deepEqual((await ask(a, 'join', 'r')).sort(), [a.id, 'r'].sort());
        await ask(b, 'join', 'r');
        a.emit('to-room', 'r', 'news', 1, { s: 'two' }, [3]);
        assert.deepEqual(await a.inbox.take('news'), [1, { s: 'two' }, [3]]);
        assert.deepEqual(await b.inbox.take('news'), [1, { s: 'two' }, [3]]);
        await other.inbox.none('news', QUIET_MS);
        assert.equal(a.inbox.count('news') + b.inbox.count('news'), 0, 'delivered once');
      });

      it('to-room to a socket id reaches that socket only', async (t) => {
        const c = new Clients(server, t);
        const [a, b, other] = await group(c, mode, 3);
        a.emit('to-room', b.id, 'direct', 'hi');
        assert.deepEqual(await b.inbox.take('direct'), ['hi']);
        await other.inbox.none('direct', QUIET_MS);
        assert.equal(a.inbox.count('direct'), 0);
      });

      it('to-room with binary arguments', async (t) => {
        const c = new Clients(server, t);
        const [a, b] = await group(c, mode, 2);
        await ask(b, 'join', 'bin');
        const payload = [Buffer.from([1, 2, 3]), { deep: [Buffer.from('xyz')] }];
        a.emit('to-room', 'bin', 'blob', ...payload);
        assert.deepEqual(normalizeBinary(await b.inbox.take('blob')), payload);
      });

      it('to several rooms (to-rooms-except, no except) = union without duplicates', async (t) => {
        const c = new Clients(server, t);
        const [a, b, cc, d] = await group(c, mode, 4);
        await ask(a, 'join', 'r1');
        await ask(a, 'join', 'r2');
        await ask(b, 'join', 'r2');
        await ask(cc, 'join', 'r3');
        d.emit('to-rooms-except', { to: ['r1', 'r2'], except: [] }, 'union', 'u');
        assert.deepEqual(await a.inbox.take('union'), ['u']);
        assert.deepEqual(await b.inbox.take('union'), ['u']);
        await sleep(QUIET_MS);
        assert.equal(a.inbox.count('union'), 0, 'a is in both rooms but gets the event once');
        assert.equal(cc.inbox.count('union'), 0);
        assert.equal(d.inbox.count('union'), 0);
      });

      it('to-rooms-except: to rooms minus the sockets in the except rooms', async (t) => {
        const c = new Clients(server, t);
        const [a, b, cc, d] = await group(c, mode, 4);
        await ask(a, 'join', 'r1');
        await ask(a, 'join', 'r2');
        await ask(b, 'join', 'r2');
        await ask(cc, 'join', 'r3');
        d.emit('to-rooms-except', { to: ['r1', 'r2', 'r3'], except: ['r2'] }, 'ex', 1);
        assert.deepEqual(await cc.inbox.take('ex'), [1]);
        await sleep(QUIET_MS);
        for (const s of [a, b, d]) assert.equal(s.inbox.count('ex'), 0);

        // No `to` = the whole namespace; except a socket id.
        d.emit('to-rooms-except', { to: [], except: [b.id] }, 'ex2', 2);
        for (const s of [a, cc, d]) assert.deepEqual(await s.inbox.take('ex2'), [2]);
        await sleep(QUIET_MS);
        assert.equal(b.inbox.count('ex2'), 0);
        for (const s of [a, cc, d]) assert.equal(s.inbox.count('ex2'), 0, 'once each');
      });

      it('socket.broadcast reaches every other socket of the namespace, not the sender, not other namespaces', async (t) => {
        const c = new Clients(server, t);
        const nsp = freshNamespace();
        const [a, b, cc] = await group(c, mode, 3, nsp);
        const elsewhere = await c.connect(mode, freshNamespace());
        a.emit('broadcast', 'bc', 'x', 2);
        assert.deepEqual(await b.inbox.take('bc'), ['x', 2]);
        assert.deepEqual(await cc.inbox.take('bc'), ['x', 2]);
        await sleep(QUIET_MS);
        assert.equal(a.inbox.count('bc'), 0);
        assert.equal(elsewhere.inbox.count('bc'), 0);
      });

      it('volatile namespace-wide emit breaks nothing (delivered at most once) and later events flow', async (t) => {
        const c = new Clients(server, t);
        const [a, b] = await group(c, mode, 2);
        for (let i = 0; i < 5; i++) a.emit('volatile', 'vol', i);
        await ask(a, 'message-with-ack', 'sync');
        await sleep(QUIET_MS);
        for (const s of [a, b]) {
          const got = s.inbox.items.filter((it) => it[0] === 'vol').map((it) => it[1]);
          assert.ok(got.length <= 5, `at most once each: ${got}`);
          assert.deepEqual(got, [...got].sort(), 'in order');
          assert.ok(new Set(got).size === got.length, 'no duplicates');
        }
        a.emit('broadcast', 'after-volatile', 1);
        assert.deepEqual(await b.inbox.take('after-volatile'), [1]);
        assert.ok(a.connected && b.connected);
      });

      it('broadcast with acks: every socket answers → {error:null, responses}', async (t) => {
        const c = new Clients(server, t);
        const sockets = await group(c, mode, 3);
        sockets.forEach((s, i) => s.on('q', (n, cb) => cb(`s${i}:${n}`)));
        const res = await ask(sockets[0], 'broadcast-ack', 2000, 'q', 5);
        assert.equal(res.error, null);
        assert.deepEqual([...res.responses].sort(), ['s0:5', 's1:5', 's2:5']);
      });

      it('broadcast with acks: one socket never answers → "operation has timed out" with the partial responses', async (t) => {
        const c = new Clients(server, t);
        const [a, b, silent] = await group(c, mode, 3);
        a.on('q', (cb) => cb('a'));
        b.on('q', (cb) => cb({ b: [Buffer.from([1])] }));
        const start = Date.now();
        const res = await ask(a, 'broadcast-ack', 300, 'q');
        assert.ok(Date.now() - start >= 250, 'waited for the timeout');
        assert.equal(res.error, 'operation has timed out');
        assert.equal(res.responses.length, 2);
        const norm = normalizeBinary(res.responses);
        assert.ok(norm.some((r) => r === 'a'));
        assert.ok(norm.some((r) => r?.b?.[0]?.equals?.(Buffer.from([1]))));
        assert.equal(silent.inbox.count('q'), 1, 'the silent socket did get the event');
      });

      it('join / leave / rooms acks return the rooms; leaving a room stops its events', async (t) => {
        const c = new Clients(server, t);
        const [a, b] = await group(c, mode, 2);
        assert.deepEqual((await ask(a, 'join', 'x')).sort(), [a.id, 'x'].sort());
        assert.deepEqual((await ask(a, 'join', 'y')).sort(), [a.id, 'x', 'y'].sort());
        assert.deepEqual((await ask(a, 'join', 'y')).sort(), [a.id, 'x', 'y'].sort(), 'joining twice is a no-op');
        assert.deepEqual((await ask(a, 'leave', 'x')).sort(), [a.id, 'y'].sort());
        assert.deepEqual((await ask(a, 'leave', 'not-a-member')).sort(), [a.id, 'y'].sort());
        assert.deepEqual((await ask(a, 'rooms')).sort(), [a.id, 'y'].sort());
        b.emit('to-room', 'x', 'gone', 1);
        b.emit('to-room', 'y', 'kept', 2);
        assert.deepEqual(await a.inbox.take('kept'), [2]);
        assert.equal(a.inbox.count('gone'), 0);
        // join without an ack callback works too.
        a.emit('join', 'z');
        assert.deepEqual((await ask(a, 'rooms')).sort(), [a.id, 'y', 'z'].sort());
      });

      it('a socket in many rooms: every room reaches it, joining twice and leaving down to one keep the set right', async (t) => {
        // Past eight rooms sioc indexes a socket's rooms by name; at two it keeps them inline.
        const c = new Clients(server, t);
        const [a, b] = await group(c, mode, 2);
        const names = Array.from({ length: 12 }, (_, i) => `m${i}`);
        for (const name of names) await ask(a, 'join', name);
        assert.deepEqual((await ask(a, 'join', 'm7')).sort(), [a.id, ...names].sort(), 'joining twice is a no-op');
        assert.deepEqual((await ask(a, 'rooms')).sort(), [a.id, ...names].sort());
        for (const name of ['m0', 'm7', 'm11']) b.emit('to-room', name, 'many', name);
        assert.deepEqual(await a.inbox.take('many'), ['m0']);
        assert.deepEqual(await a.inbox.take('many'), ['m7']);
        assert.deepEqual(await a.inbox.take('many'), ['m11']);
        for (const name of names.slice(0, 11)) await ask(a, 'leave', name);
        assert.deepEqual((await ask(a, 'rooms')).sort(), [a.id, 'm11'].sort());
        b.emit('to-room', 'm3', 'left', 1);
        b.emit('to-room', 'm11', 'still', 2);
        assert.deepEqual(await a.inbox.take('still'), [2]);
        assert.equal(a.inbox.count('left'), 0);
        for (const name of ['p', 'q']) await ask(a, 'join', name);
        assert.deepEqual((await ask(a, 'rooms')).sort(), [a.id, 'm11', 'p', 'q'].sort());
      });
    });
  }
});
