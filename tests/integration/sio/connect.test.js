// Connecting with socket.io-client: namespaces multiplexed on one Manager,
// the auth payload, middleware refusal and delay, unknown and dynamic
// namespaces. Every test runs over polling only, WebSocket only and the
// default polling → WebSocket upgrade.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSiocEcho, Clients, MODES, ask, connected, connectError, freshNamespace, until, normalizeBinary } from '../lib/sio.js';

const ID_RE = /^[A-Za-z0-9_-]{20}$/;

describe('sio connect', () => {
  let server;
  before(async () => {
    server = await startSiocEcho([]);
  });
  after(async () => {
    await server?.stopChecked();
  });

  for (const mode of Object.keys(MODES)) {
    describe(mode, () => {
      it('connects to / and /custom on one Manager; each gets its own id and an "auth" event with {}', async (t) => {
        const c = new Clients(server, t);
        const m = c.manager(mode);
        const root = c.socket(m, '/');
        const custom = c.socket(m, '/custom');
        await Promise.all([connected(root), connected(custom)]);
        assert.equal(root.io, custom.io);
        assert.match(root.id, ID_RE);
        assert.match(custom.id, ID_RE);
        assert.notEqual(root.id, custom.id);
        assert.deepEqual(await root.inbox.take('auth'), [{}]);
        assert.deepEqual(await custom.inbox.take('auth'), [{}]);
        // Both namespaces answer, each with its own socket.
        assert.deepEqual(await ask(root, 'message-with-ack', 'root'), 'root');
        assert.deepEqual(await ask(custom, 'message-with-ack', 'custom'), 'custom');
        const [rootRooms, customRooms] = await Promise.all([ask(root, 'rooms'), ask(custom, 'rooms')]);
        assert.deepEqual(rootRooms, [root.id]);
        assert.deepEqual(customRooms, [custom.id]);
      });

      if (mode === 'upgrade') {
        it('upgrades from polling to WebSocket; both namespaces keep working across the upgrade', async (t) => {
          const c = new Clients(server, t);
          const m = c.manager(mode);
          const root = c.socket(m, '/');
          const custom = c.socket(m, '/custom');
          await Promise.all([connected(root), connected(custom)]);
          const acks = [];
          for (let i = 0; i < 5; i++) acks.push(ask(root, 'message-with-ack', i), ask(custom, 'message-with-ack', `c${i}`));
          await until(() => m.engine?.transport?.name === 'websocket', 'the upgrade to websocket');
          assert.deepEqual(await Promise.all(acks), [0, 'c0', 1, 'c1', 2, 'c2', 3, 'c3', 4, 'c4']);
          root.emit('message', Buffer.from([1, 2]), 'after upgrade');
          assert.deepEqual(normalizeBinary(await root.inbox.take('message-back')), [Buffer.from([1, 2]), 'after upgrade']);
          assert.equal(await ask(custom, 'message-with-ack', 'custom'), 'custom');
        });
      }

      it('echoes the auth payload exactly (handshake.auth)', async (t) => {
        const c = new Clients(server, t);
        const auth = {
          token: 'abc', n: 42, f: 1.5, ok: true, nil: null, list: [1, 'two', { three: 3 }], uni: 'héllo 日本 🎉',
          // what the server keeps as text and parses again: escapes, reals, nesting, empties
          esc: 'q"u\\o/\n\t\u0001\u2028\u0000end', reals: [0.1, -2.5e-7, 1e21, 123456789012345680000], big: -9007199254740991,
          deep: { a: { b: [[], {}, ''] } }, '': 'empty key', 'k\u00e9y': 'x',
        };
        const m = c.manager(mode);
        const root = c.socket(m, '/', { auth });
        const custom = c.socket(m, '/custom', { auth: { other: 'x' } });
        await Promise.all([connected(root), connected(custom)]);
        assert.deepEqual(await root.inbox.take('auth'), [auth]);
        assert.deepEqual(await custom.inbox.take('auth'), [{ other: 'x' }]);
      });

      it('auth.room is joined on connection', async (t) => {
        const c = new Clients(server, t);
        const s = await c.connect(mode, '/custom', { auth: { room: 'lobby' } });
        assert.deepEqual((await ask(s, 'rooms')).sort(), [s.id, 'lobby'].sort());
      });

      it('middleware refusal → connect_error "refused" with data {reason:"test"}; /custom on the same Manager still connects', async (t) => {
        const c = new Clients(server, t);
        const m = c.manager(mode);
        const refused = c.socket(m, '/', { auth: { refuse: true } });
        const err = await connectError(refused);
        assert.equal(err.message, 'refused');
        assert.deepEqual(err.data, { reason: 'test' });
        assert.equal(refused.connected, false);
        const custom = await c.connect(mode, '/custom', { manager: m });
        assert.equal(await ask(custom, 'message-with-ack', 1), 1);
        assert.equal(refused.inbox.count('auth'), 0);
      });

      it('refusal on /custom too (middleware runs on every namespace)', async (t) => {
        const c = new Clients(server, t);
        const err = await connectError(c.socket(c.manager(mode), '/custom', { auth: { refuse: 1 } }));
        assert.equal(err.message, 'refused');
        assert.deepEqual(err.data, { reason: 'test' });
      });

      it('asynchronous middleware: auth.delay 300 delays the connection', async (t) => {
        const c = new Clients(server, t);
        const m = c.manager(mode);
        // The Engine.IO connection first, so that only the middleware delay is measured.
        const first = await c.connect(mode, '/custom', { manager: m });
        assert.ok(first.connected);
        const start = Date.now();
        const s = await c.connect(mode, '/', { manager: m, auth: { delay: 300 } });
        const elapsed = Date.now() - start;
        assert.ok(elapsed >= 250, `connected after ${elapsed} ms, want ≥ 250`);
        assert.ok(elapsed < 4000, `connected after ${elapsed} ms`);
        assert.deepEqual(await s.inbox.take('auth'), [{ delay: 300 }]);
        assert.equal(await ask(s, 'message-with-ack', 'late'), 'late');
      });

      it('unknown namespace → connect_error "Invalid namespace" (no data); / on the same Manager stays connected', async (t) => {
        const c = new Clients(server, t);
        const m = c.manager(mode);
        const root = await c.connect(mode, '/', { manager: m });
        const bad = c.socket(m, '/nope');
        const err = await connectError(bad);
        assert.equal(err.message, 'Invalid namespace');
        assert.equal(err.data, undefined);
        assert.ok(root.connected);
        assert.equal(await ask(root, 'message-with-ack', 'still'), 'still');
      });

      it('dynamic namespace /dynamic-<digits> connects with the same handlers; /dynamic-x is refused', async (t) => {
        const c = new Clients(server, t);
        const m = c.manager(mode);
        const nsp = freshNamespace();
        const dyn = await c.connect(mode, nsp, { manager: m, auth: { d: 1 } });
        assert.match(dyn.id, ID_RE);
        assert.deepEqual(await dyn.inbox.take('auth'), [{ d: 1 }]);
        assert.equal(await ask(dyn, 'message-with-ack', 'dyn'), 'dyn');
        const err = await connectError(c.socket(m, '/dynamic-x'));
        assert.equal(err.message, 'Invalid namespace');
        const err2 = await connectError(c.socket(m, '/dynamic-'));
        assert.equal(err2.message, 'Invalid namespace');
        assert.ok(dyn.connected);
      });

      it('middleware refusal applies to dynamic namespaces too', async (t) => {
        const c = new Clients(server, t);
        const err = await connectError(c.socket(c.manager(mode), freshNamespace(), { auth: { refuse: 'yes' } }));
        assert.equal(err.message, 'refused');
        assert.deepEqual(err.data, { reason: 'test' });
      });
    });
  }
});
