// --parser msgpack: socket.io-msgpack-parser on both sides (every Socket.IO
// packet is one msgpack-encoded Engine.IO binary message: a map {type, nsp,
// data, id?}; binary values are msgpack bin, no attachments).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import msgpackParser from 'socket.io-msgpack-parser';
import { startSiocEcho, Clients, MODES, ask, askAll, connected, connectError, normalizeBinary, freshNamespace } from '../lib/sio.js';

const PARSER = { parser: msgpackParser };

const encode = (packet) => new msgpackParser.Encoder().encode(packet)[0];
function decode(buf) {
  let out;
  const d = new msgpackParser.Decoder();
  d.on('decoded', (p) => {
    out = p;
  });
  d.add(buf);
  return out;
}

describe('sio msgpack parser (--parser msgpack)', () => {
  let server;
  before(async () => {
    server = await startSiocEcho(['--parser', 'msgpack']);
  });
  after(async () => {
    await server?.stopChecked();
  });

  for (const mode of Object.keys(MODES)) {
    describe(mode, () => {
      it('connects to / and /custom on one Manager; auth echoed', async (t) => {
        const c = new Clients(server, t);
        const m = c.manager(mode, PARSER);
        const root = c.socket(m, '/', { auth: { token: 'mp', n: 1 } });
        const custom = c.socket(m, '/custom');
        await Promise.all([connected(root), connected(custom)]);
        assert.deepEqual(await root.inbox.take('auth'), [{ token: 'mp', n: 1 }]);
        assert.deepEqual(await custom.inbox.take('auth'), [{}]);
      });

      it('message-back with JSON values and binary (top level and nested)', async (t) => {
        const c = new Clients(server, t);
        const s = await c.connect(mode, '/', { managerOpts: PARSER });
        const args = ['héllo 🎉', 0, -1, 3.5, true, null, [1, [2]], { k: { deep: 'v' } }];
        s.emit('message', ...args);
        assert.deepEqual(await s.inbox.take('message-back'), args);
        const bin = [Buffer.from([0, 1, 2, 255]), { nested: Buffer.from('nested'), list: [Buffer.alloc(0)] }, 'tail'];
        s.emit('message', ...bin);
        assert.deepEqual(normalizeBinary(await s.inbox.take('message-back')), bin);
      });

      it('acks (with binary) and server → client acks', async (t) => {
        const c = new Clients(server, t);
        const s = await c.connect(mode, '/custom', { managerOpts: PARSER });
        assert.deepEqual(normalizeBinary(await askAll(s, 'message-with-ack', 'a', Buffer.from([9]), { x: 1 })), ['a', Buffer.from([9]), { x: 1 }]);
        s.on('add', (a, b, cb) => cb(a + b));
        assert.deepEqual(await ask(s, 'server-ack', 2000, 'add', 20, 22), { response: [42] });
        assert.deepEqual(await ask(s, 'server-ack', 200, 'silent'), { error: 'operation has timed out' });
      });

      it('middleware refusal (message + data) and unknown namespace', async (t) => {
        const c = new Clients(server, t);
        const m = c.manager(mode, PARSER);
        const err = await connectError(c.socket(m, '/', { auth: { refuse: true } }));
        assert.equal(err.message, 'refused');
        assert.deepEqual(err.data, { reason: 'test' });
        const err2 = await connectError(c.socket(m, '/nope'));
        assert.equal(err2.message, 'Invalid namespace');
      });

      it('rooms and broadcast', async (t) => {
        const c = new Clients(server, t);
        const nsp = freshNamespace();
        const a = await c.connect(mode, nsp, { managerOpts: PARSER, auth: { room: 'r' } });
        const b = await c.connect(mode, nsp, { managerOpts: PARSER });
        b.emit('to-room', 'r', 'ev', Buffer.from('x'), 2);
        assert.deepEqual(normalizeBinary(await a.inbox.take('ev')), [Buffer.from('x'), 2]);
        a.emit('broadcast', 'bc', 1);
        assert.deepEqual(await b.inbox.take('bc'), [1]);
      });
    });
  }

  for (const transport of ['polling', 'websocket']) {
    describe(`raw ${transport}`, () => {
      it('each packet is one binary Engine.IO message holding a msgpack map {type, nsp, data, id?}', async (t) => {
        const c = new Clients(server, t);
        const raw = await c.raw(transport);
        await raw.send(encode({ type: 0, nsp: '/custom', data: { a: 1 } }));
        const reply = decode(await raw.nextBinary());
        assert.equal(reply.type, 0);
        assert.equal(reply.nsp, '/custom');
        assert.match(reply.data.sid, /^[A-Za-z0-9_-]{20}$/);
        assert.equal(reply.data.pid, undefined);
        assert.deepEqual(decode(await raw.nextBinary()), { type: 2, nsp: '/custom', data: ['auth', { a: 1 }] });
        await raw.send(encode({ type: 2, nsp: '/custom', id: 5, data: ['message-with-ack', Buffer.from([1, 2]), 'x'] }));
        const ack = decode(await raw.nextBinary());
        assert.deepEqual(normalizeBinary(ack), { id: 5, type: 3, nsp: '/custom', data: [Buffer.from([1, 2]), 'x'] });
      });

      it('a text message (JSON parser format) to a msgpack server closes the connection', async (t) => {
        const c = new Clients(server, t);
        const raw = await c.raw(transport);
        await raw.send('40');
        const closed = await raw.waitClosed(2000);
        assert.equal(closed.how, transport === 'polling' ? 'close-packet' : 'close-frame');
        assert.deepEqual(raw.queue, []);
        const s = await c.connect('websocket', '/', { managerOpts: PARSER });
        assert.equal(await ask(s, 'message-with-ack', 'alive'), 'alive');
      });

      it('bytes that are not msgpack (0xc1) close the connection', async (t) => {
        const c = new Clients(server, t);
        const raw = await c.raw(transport);
        await raw.send(Buffer.from([0xc1]));
        const closed = await raw.waitClosed(2000);
        assert.equal(closed.how, transport === 'polling' ? 'close-packet' : 'close-frame');
        const s = await c.connect('websocket', '/', { managerOpts: PARSER });
        assert.equal(await ask(s, 'message-with-ack', 'alive'), 'alive');
      });
    });
  }
});
