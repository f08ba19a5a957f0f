// Events and acknowledgements with socket.io-client: message-back with every
// JSON type and with binary (attachments at any depth), client → server acks
// (callback, emitWithAck, timeout, retries + ackTimeout), server → client
// acks with a timeout, socket.data, the catch-all counter, and events that
// must not break anything ("error", serverSideEmit). Over polling only,
// WebSocket only and the default upgrade.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSiocEcho, Clients, MODES, ask, askAll, normalizeBinary, sleep } from '../lib/sio.js';

const JSON_ARGS = [
  'plain',
  '',
  'quotes " \\ / and control \u0001\n\t',
  'héllo wörld — 日本語 — 🎉',
  0,
  -1,
  3.14,
  1e21,
  -2.5e-7,
  9007199254740991,
  true,
  false,
  null,
  [],
  {},
  [1, 'a', null, [2, [3]], { b: false }],
  { nested: { deep: { deeper: [{ x: 1 }, 'y'] } }, '': 'empty key', 'ü': 'unicode key' },
];

describe('sio messages and acks', () => {
  let server;
  before(async () => {
    server = await startSiocEcho([]);
  });
  after(async () => {
    await server?.stopChecked();
  });

  for (const mode of Object.keys(MODES)) {
    describe(mode, () => {
      it('message → message-back with strings, numbers, booleans, nulls, arrays, objects, unicode', async (t) => {
        const c = new Clients(server, t);
        const s = await c.connect(mode, '/');
        s.emit('message', ...JSON_ARGS);
        assert.deepEqual(await s.inbox.take('message-back'), JSON_ARGS);
        // One argument at a time as well, and no argument at all.
        for (const arg of [null, 'x', 7, { k: [] }]) {
          s.emit('message', arg);
          assert.deepEqual(await s.inbox.take('message-back'), [arg]);
        }
        s.emit('message');
        assert.deepEqual(await s.inbox.take('message-back'), []);
      });

      it('message-back on /custom and in order', async (t) => {
        const c = new Clients(server, t);
        const s = await c.connect(mode, '/custom');
        for (let i = 0; i < 20; i++) s.emit('message', i, `n${i}`);
        const got = await s.inbox.takeN('message-back', 20);
        assert.deepEqual(got, Array.from({ length: 20 }, (_, i) => [i, `n${i}`]));
      });

      it('binary: a Buffer, an empty Buffer, nested binary in objects/arrays, several attachments', async (t) => {
        const c = new Clients(server, t);
        const s = await c.connect(mode, '/');
        const one = Buffer.from([0, 1, 2, 3, 254, 255]);
        s.emit('message', one);
        assert.deepEqual(normalizeBinary(await s.inbox.take('message-back')), [one]);

        s.emit('message', Buffer.alloc(0));
        assert.deepEqual(normalizeBinary(await s.inbox.take('message-back')), [Buffer.alloc(0)]);

        const big = Buffer.alloc(100_000, 7);
        const nested = {
          text: 'with binary',
          bin: Buffer.from('first'),
          list: [Buffer.from('second'), 'plain', { deeper: Buffer.from([9, 8, 7]) }],
          nil: null,
        };
        const args = ['lead', nested, [Buffer.from('fourth'), [Buffer.from('fifth')]], big, 12];
        s.emit('message', ...args);
        const back = await s.inbox.take('message-back');
        assert.deepEqual(normalizeBinary(back), args);
        assert.ok(Buffer.isBuffer(back[1].bin) || back[1].bin instanceof ArrayBuffer, 'binary comes back as binary');

        // Typed arrays are sent as their bytes.
        s.emit('message', new Uint8Array([5, 6, 7]));
        assert.deepEqual(normalizeBinary(await s.inbox.take('message-back')), [Buffer.from([5, 6, 7])]);
      });

      it('ack round trip: callback gets every argument back (message-with-ack)', async (t) => {
        const c = new Clients(server, t);
        const s = await c.connect(mode, '/');
        assert.deepEqual(await askAll(s, 'message-with-ack', ...JSON_ARGS), JSON_ARGS);
        assert.deepEqual(await askAll(s, 'message-with-ack'), []);
        // emitWithAck resolves with the first argument.
        assert.equal(await s.emitWithAck('message-with-ack', 'first', 'second'), 'first');
      });

      it('ack round trip with binary (BINARY_ACK)', async (t) => {
        const c = new Clients(server, t);
        const s = await c.connect(mode, '/custom');
        const args = [Buffer.from([1, 2, 3]), { b: Buffer.from('x'), l: [Buffer.alloc(0)] }, 'tail'];
        assert.deepEqual(normalizeBinary(await askAll(s, 'message-with-ack', ...args)), args);
      });

      it('many acks in flight resolve each with its own value', async (t) => {
        const c = new Clients(server, t);
        const s = await c.connect(mode, '/');
        const values = await Promise.all(Array.from({ length: 30 }, (_, i) => ask(s, 'message-with-ack', i)));
        assert.deepEqual(values, Array.from({ length: 30 }, (_, i) => i));
      });

      it('client timeout().emitWithAck: resolves when acked, rejects "operation has timed out" when not', async (t) => {
        const c = new Clients(server, t);
        const s = await c.connect(mode, '/');
        assert.equal(await s.timeout(2000).emitWithAck('message-with-ack', 'in time'), 'in time');
        const start = Date.now();
        await assert.rejects(s.timeout(200).emitWithAck('no-handler-for-this', 1), { message: 'operation has timed out' });
        assert.ok(Date.now() - start >= 150);
        // The connection is fine afterwards.
        assert.equal(await ask(s, 'message-with-ack', 'after'), 'after');
      });

      it('client retries + ackTimeout: an acknowledged event is delivered once; an unacknowledged one retries+1 times', async (t) => {
        const c = new Clients(server, t);
        const s = await c.connect(mode, '/', { retries: 2, ackTimeout: 1000 });
        // No callback: the client adds an implicit ack; the server acks it.
        s.emit('message-with-ack', 'implicit');
        const withCb = await new Promise((resolve) => s.emit('message-with-ack', 'explicit', (err, value) => resolve([err, value])));
        assert.deepEqual(withCb, [null, 'explicit']);
        assert.equal(await s.emitWithAck('count'), 2, 'each event received exactly once');

        const r = await c.connect(mode, '/custom', { retries: 1, ackTimeout: 200 });
        await assert.rejects(r.emitWithAck('no-handler-for-this'), { message: 'operation has timed out' });
        assert.equal(await r.emitWithAck('count'), 2, 'an event nobody acks is sent retries + 1 = 2 times');
      });

      it('server → client ack with timeout: the client answers (values, several, binary)', async (t) => {
        const c = new Clients(server, t);
        const s = await c.connect(mode, '/');
        s.on('add', (a, b, cb) => cb(a + b));
        s.on('many', (cb) => cb('one', 2, { three: [3] }, null));
        s.on('bin', (x, cb) => cb(Buffer.from([x, x + 1])));
        s.on('later', (cb) => setTimeout(() => cb('late but in time'), 100));
        assert.deepEqual(await ask(s, 'server-ack', 2000, 'add', 2, 3), { response: [5] });
        assert.deepEqual(await ask(s, 'server-ack', 2000, 'many'), { response: ['one', 2, { three: [3] }, null] });
        assert.deepEqual(normalizeBinary(await ask(s, 'server-ack', 2000, 'bin', 7)), { response: [Buffer.from([7, 8])] });
        assert.deepEqual(await ask(s, 'server-ack', 2000, 'later'), { response: ['late but in time'] });
      });

      it('server → client ack: a client that never answers → {error:"operation has timed out"}', async (t) => {
        const c = new Clients(server, t);
        const s = await c.connect(mode, '/custom');
        const start = Date.now();
        assert.deepEqual(await ask(s, 'server-ack', 300, 'silent', 'x'), { error: 'operation has timed out' });
        assert.ok(Date.now() - start >= 250, 'the server waited for its timeout');
        // The event itself did reach the client, with an ack function.
        const [arg, fn] = await s.inbox.take('silent');
        assert.equal(arg, 'x');
        assert.equal(typeof fn, 'function');
        // Answering after the timeout is harmless.
        fn('too late');
        assert.equal(await ask(s, 'message-with-ack', 'ok'), 'ok');
      });

      it('socket.data: get-data is {} at first; set-data / get-data round trip', async (t) => {
        const c = new Clients(server, t);
        const s = await c.connect(mode, '/');
        assert.deepEqual(await ask(s, 'get-data'), {});
        const data = { user: 'ann', n: [1, 2, { x: null }], flag: true };
        assert.equal(await ask(s, 'set-data', data), undefined);
        assert.deepEqual(await askAll(s, 'set-data', data), []);
        assert.deepEqual(await ask(s, 'get-data'), data);
        await ask(s, 'set-data', { replaced: 1 });
        assert.deepEqual(await ask(s, 'get-data'), { replaced: 1 });
      });

      it('catch-all: count = events received by this socket before the count event (each namespace separately)', async (t) => {
        const c = new Clients(server, t);
        const m = c.manager(mode);
        const s = await c.connect(mode, '/', { manager: m });
        const other = await c.connect(mode, '/custom', { manager: m });
        assert.equal(await ask(s, 'count'), 0);
        s.emit('message', 1);
        s.emit('whatever-unhandled', 2);
        s.emit('message-with-ack', 3);
        await s.inbox.take('message-back');
        assert.equal(await ask(s, 'count'), 4, 'message, whatever-unhandled, message-with-ack, count');
        assert.equal(await ask(other, 'count'), 0);
      });

      it('socket.emit("error") from the client breaks nothing and is counted like any event', async (t) => {
        const c = new Clients(server, t);
        const s = await c.connect(mode, '/');
        s.emit('error');
        s.emit('error', { message: 'not really' });
        assert.equal(await ask(s, 'count'), 2);
        assert.equal(await ask(s, 'message-with-ack', 'alive'), 'alive');
        assert.ok(s.connected);
        await sleep(50);
        assert.equal(s.inbox.count('disconnect'), 0);
      });

      it('server-side-emit acks "ok" and does not disturb the connection', async (t) => {
        const c = new Clients(server, t);
        const s = await c.connect(mode, '/custom');
        assert.equal(await ask(s, 'server-side-emit'), 'ok');
        assert.equal(await ask(s, 'message-with-ack', 'alive'), 'alive');
        assert.ok(server.alive);
      });
    });
  }
});
