// Per-socket packet middleware (socket.use) with socket.io-client. The echo servers refuse an
// event "forbidden" (next(new Error("forbidden event"))), let "slow" through after 100 ms and
// report the server-side socket's "error" event as "middleware-error".
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSiocEcho, Clients, MODES, ask, askAll } from '../lib/sio.js';

describe('socket.use (packet middleware)', () => {
  let server;
  before(async () => {
    server = await startSiocEcho([]);
  });
  after(async () => {
    await server?.stopChecked();
  });

  for (const mode of Object.keys(MODES)) {
    describe(mode, () => {
      it('a refused event never reaches its handler; the server-side socket gets the error', async (t) => {
        const c = new Clients(server, t);
        const s = await c.connect(mode, '/');
        let acked = false;
        s.emit('forbidden', 'x', () => {
          acked = true;
        });
        assert.deepEqual(await s.inbox.take('middleware-error'), ['forbidden event']);
        await s.inbox.none('message-back', 200);
        assert.equal(acked, false);
        assert.ok(s.connected, 'the socket stays connected');
        assert.deepEqual(await askAll(s, 'message-with-ack', 'after'), ['after']);
      });

      it('an event let through later reaches its handler, and its ack works', async (t) => {
        const c = new Clients(server, t);
        const s = await c.connect(mode, '/custom');
        const started = Date.now();
        assert.deepEqual(await askAll(s, 'slow', 1, { two: [2] }), [1, { two: [2] }]);
        assert.ok(Date.now() - started >= 90, 'answered before the middleware let it through');
      });

      it('the catch-all still counts refused events (onAny runs before the middleware)', async (t) => {
        const c = new Clients(server, t);
        const s = await c.connect(mode, '/');
        s.emit('forbidden');
        await s.inbox.take('middleware-error');
        assert.equal(await ask(s, 'count'), 1);
      });

      it('binary arguments survive the wait', async (t) => {
        const c = new Clients(server, t);
        const s = await c.connect(mode, '/');
        const blob = Buffer.from([0, 1, 2, 254, 255]);
        const [got] = await askAll(s, 'slow', blob);
        assert.deepEqual(Buffer.from(got), blob);
      });
    });
  }
});
