// Disconnections: the reason the client sees, and the reason the server
// reports (the `left` event that sioc-echo broadcasts on `/` when a socket of
// `/` disconnects: ["left", id, reason]); ping timeout with short ping
// settings; connectTimeout for a connection that never joins a namespace.
// Bounds are generous: this is not a speed test.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSiocEcho, Clients, MODES, ask, sleep, until, RawSession } from '../lib/sio.js';

const QUIET_MS = 250;

// The `left` event about `id` seen by `observer`: [reason].
async function leftReason(observer, id, timeoutMs = 5000) {
  const args = await observer.inbox.takeMatching('left', (a) => a[0] === id, timeoutMs);
  assert.equal(args.length, 2, `left carries (id, reason): ${JSON.stringify(args)}`);
  return args[1];
}

describe('sio disconnect reasons', () => {
  let server;
  before(async () => {
    server = await startSiocEcho([]);
  });
  after(async () => {
    await server?.stopChecked();
  });

  for (const mode of Object.keys(MODES)) {
    describe(mode, () => {
      it('client socket.disconnect(): client sees "io client disconnect", server "client namespace disconnect"', async (t) => {
        const c = new Clients(server, t);
        const observer = await c.connect(mode, '/');
        const s = await c.connect(mode, '/');
        const id = s.id;
        s.disconnect();
        assert.deepEqual(await s.inbox.take('disconnect'), ['io client disconnect', undefined]);
        assert.equal(await leftReason(observer, id), 'client namespace disconnect');
      });

      it('disconnect-me(false): client sees "io server disconnect", server "server namespace disconnect"; /custom on the same Manager stays', async (t) => {
        const c = new Clients(server, t);
        const observer = await c.connect(mode, '/');
        const m = c.manager(mode);
        const s = await c.connect(mode, '/', { manager: m });
        const sibling = await c.connect(mode, '/custom', { manager: m });
        const id = s.id;
        s.emit('disconnect-me', false);
        assert.deepEqual(await s.inbox.take('disconnect'), ['io server disconnect', undefined]);
        assert.equal(await leftReason(observer, id), 'server namespace disconnect');
        assert.equal(await ask(sibling, 'message-with-ack', 'alive'), 'alive');
        assert.equal(sibling.inbox.count('disconnect'), 0);
      });

      it('disconnect-me(true): every namespace of the connection gets "io server disconnect"; the connection closes', async (t) => {
        const c = new Clients(server, t);
        const observer = await c.connect(mode, '/');
        const m = c.manager(mode);
        const s = await c.connect(mode, '/', { manager: m });
        const sibling = await c.connect(mode, '/custom', { manager: m });
        const id = s.id;
        s.emit('disconnect-me', true);
        assert.deepEqual(await s.inbox.take('disconnect'), ['io server disconnect', undefined]);
        assert.deepEqual(await sibling.inbox.take('disconnect'), ['io server disconnect', undefined]);
        assert.equal(await leftReason(observer, id), 'server namespace disconnect');
        await until(() => m.engine?.readyState !== 'open', 'the Engine.IO connection to close');
      });

      it('the client closes its Engine.IO connection: server reason "transport close"', async (t) => {
        const c = new Clients(server, t);
        const observer = await c.connect(mode, '/');
        const s = await c.connect(mode, '/');
        const id = s.id;
        s.io.engine.close();
        assert.equal(await leftReason(observer, id), 'transport close');
        assert.deepEqual(await s.inbox.take('disconnect'), ['forced close', undefined]);
      });

      it('only sockets of / produce `left`: disconnecting /custom broadcasts nothing', async (t) => {
        const c = new Clients(server, t);
        const observer = await c.connect(mode, '/');
        const custom = await c.connect(mode, '/custom');
        const id = custom.id;
        custom.disconnect();
        await sleep(QUIET_MS);
        assert.equal(observer.inbox.items.filter((it) => it[0] === 'left' && it[1] === id).length, 0);
      });

      it('`left` reaches every socket of / (the sockets of /custom get nothing)', async (t) => {
        const c = new Clients(server, t);
        const o1 = await c.connect(mode, '/');
        const o2 = await c.connect(mode, '/');
        const custom = await c.connect(mode, '/custom');
        const s = await c.connect(mode, '/');
        const id = s.id;
        s.disconnect();
        assert.equal(await leftReason(o1, id), 'client namespace disconnect');
        assert.equal(await leftReason(o2, id), 'client namespace disconnect');
        await sleep(QUIET_MS);
        assert.equal(custom.inbox.count('left'), 0);
      });
    });
  }

  for (const transport of ['polling', 'websocket']) {
    describe(`raw ${transport}`, () => {
      it('the client ends the Engine.IO session (polling `1` / WebSocket close frame): "transport close"', async (t) => {
        const c = new Clients(server, t);
        const observer = await c.connect('websocket', '/');
        const raw = await c.raw(transport);
        const { sid } = await raw.connect('/');
        if (transport === 'polling') {
          const res = await raw.send('1');
          assert.equal(res.status, 200);
          assert.equal(res.text, 'ok');
        } else {
          raw.ws.sendClose(1000);
        }
        assert.equal(await leftReason(observer, sid), 'transport close');
        await raw.assertGone();
      });

      if (transport === 'websocket') {
        it('the TCP connection of a WebSocket session drops: "transport close"', async (t) => {
          const c = new Clients(server, t);
          const observer = await c.connect('websocket', '/');
          const raw = await c.raw(transport);
          const { sid } = await raw.connect('/');
          raw.stop();
          assert.equal(await leftReason(observer, sid), 'transport close');
        });
      }
    });
  }
});

describe('sio ping timeout (--ping-interval 300 --ping-timeout 200)', () => {
  let server;
  before(async () => {
    server = await startSiocEcho(['--ping-interval', '300', '--ping-timeout', '200']);
  });
  after(async () => {
    await server?.stopChecked();
  });

  for (const transport of ['polling', 'websocket']) {
    it(`raw ${transport} client that never answers pings: server reason "ping timeout", session closed`, async (t) => {
      const c = new Clients(server, t);
      const observer = await c.connect('websocket', '/');
      const raw = await c.raw(transport, { autoPong: false });
      const { sid } = await raw.connect('/');
      const start = Date.now();
      assert.equal(await leftReason(observer, sid, 5000), 'ping timeout');
      const elapsed = Date.now() - start;
      assert.ok(elapsed >= 300, `ping timeout after ${elapsed} ms, want ≥ 300 (pingInterval + pingTimeout = 500)`);
      const closed = await raw.waitClosed(3000);
      assert.ok(raw.pings >= 1, 'the server pinged');
      if (transport === 'polling') {
        assert.deepEqual(closed, { how: 'close-packet' });
        await raw.assertGone();
      } else {
        assert.equal(closed.how, 'close-frame');
      }
    });
  }

  for (const mode of Object.keys(MODES)) {
    it(`socket.io-client (${mode}) answers pings: still connected after 1.5 s, no left event`, async (t) => {
      const c = new Clients(server, t);
      const observer = await c.connect(mode, '/');
      const s = await c.connect(mode, '/');
      await sleep(1500);
      assert.ok(s.connected);
      assert.equal(await ask(s, 'message-with-ack', 'alive'), 'alive');
      assert.equal(observer.inbox.items.filter((it) => it[0] === 'left' && it[1] === s.id).length, 0);
      assert.equal(s.inbox.count('disconnect'), 0);
    });
  }
});

describe('sio connectTimeout (--connect-timeout 500)', () => {
  let server;
  before(async () => {
    server = await startSiocEcho(['--connect-timeout', '500']);
  });
  after(async () => {
    await server?.stopChecked();
  });

  async function assertClosedByTimeout(raw, transport) {
    const closed = await raw.waitClosed(4000);
    const elapsed = raw.closedAt - raw.openedAt;
    assert.ok(elapsed >= 400, `closed after ${elapsed} ms, want ≥ 400`);
    assert.ok(elapsed < 4000, `closed after ${elapsed} ms`);
    if (transport === 'polling') {
      assert.deepEqual(closed, { how: 'close-packet' });
      await raw.assertGone();
    } else {
      assert.deepEqual({ how: closed.how, code: closed.code }, { how: 'close-frame', code: null });
    }
  }

  for (const transport of ['polling', 'websocket']) {
    describe(`raw ${transport}`, () => {
      it('an Engine.IO session that never sends CONNECT is closed after the connect timeout, with nothing sent', async (t) => {
        const c = new Clients(server, t);
        const raw = await c.raw(transport);
        await assertClosedByTimeout(raw, transport);
        assert.deepEqual(raw.queue, []);
      });

      it('a session that CONNECTs in time stays open past the timeout', async (t) => {
        const c = new Clients(server, t);
        const raw = await c.raw(transport);
        await sleep(100);
        await raw.connect('/');
        assert.equal(await raw.nextText(), '2["auth",{}]');
        await raw.assertQuiet(900);
        await raw.send('421["message-with-ack","x"]');
        assert.equal(await raw.nextText(), '31["x"]');
      });

      it('a refused CONNECT (middleware) does not count: closed after the connect timeout', async (t) => {
        const c = new Clients(server, t);
        const raw = await c.raw(transport);
        await raw.send('40{"refuse":true}');
        assert.equal(await raw.nextText(), '4{"message":"refused","data":{"reason":"test"}}');
        await assertClosedByTimeout(raw, transport);
      });

      it('a CONNECT to an unknown namespace does not count: closed after the connect timeout', async (t) => {
        const c = new Clients(server, t);
        const raw = await c.raw(transport);
        await raw.send('40/nope,');
        assert.equal(await raw.nextText(), '4/nope,{"message":"Invalid namespace"}');
        await assertClosedByTimeout(raw, transport);
      });
    });
  }

  it('socket.io-client is unaffected (it connects at once)', async (t) => {
    const c = new Clients(server, t);
    const s = await c.connect('polling', '/custom');
    await sleep(800);
    assert.equal(await ask(s, 'message-with-ack', 'ok'), 'ok');
  });
});
