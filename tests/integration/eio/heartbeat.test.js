// Server-driven heartbeat (Engine.IO v4): the server pings, the client must
// answer within pingTimeout. Raw clients, --ping-interval 200 --ping-timeout 200.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEioEcho } from '../lib/server.js';
import { OP } from '../lib/ws.js';
import { handshake, poll, send, decodePayload, wsOpen, assertSessionGone, assertAlive } from '../lib/eio.js';

describe('heartbeat (raw clients)', () => {
  let server;
  before(async () => {
    server = await startEioEcho(['--ping-interval', '200', '--ping-timeout', '200']);
  });
  after(async () => {
    await server?.stopChecked();
  });

  it('polling: a client that never answers pings loses its session (later GET → 400 code 1)', async () => {
    const { sid } = await handshake(server);
    const first = await poll(server, sid, { timeoutMs: 3000 });
    assert.equal(first.status, 200);
    assert.deepEqual(decodePayload(first.text).map((p) => p.type), ['2'], `first GET got ${JSON.stringify(first.text)}`);
    // No pong: the session must disappear (pingTimeout 200 ms; generous bound).
    await assertSessionGone(server, sid, 3000);
    await assertAlive(server);
  });

  it('polling: answering every ping with "3" keeps the session past several ping periods', async () => {
    const { sid } = await handshake(server);
    let pings = 0;
    const until = Date.now() + 1200;
    while (Date.now() < until) {
      const res = await poll(server, sid, { timeoutMs: 3000 });
      assert.equal(res.status, 200, `GET ${res.status} ${res.text}`);
      for (const p of decodePayload(res.text)) {
        assert.ok(['2', '6'].includes(p.type), `unexpected packet ${p.type}${p.data ?? ''}`);
        if (p.type === '2') {
          assert.equal(p.data, '', 'a server ping carries no data');
          pings++;
          await send(server, sid, '3');
        }
      }
    }
    assert.ok(pings >= 2 && pings <= 12, `${pings} pings in 1.2 s with pingInterval 200`);
    await send(server, sid, '4alive');
    const res = await poll(server, sid, { timeoutMs: 3000 });
    assert.ok(decodePayload(res.text).some((p) => p.type === '4' && p.data === 'alive'), `got ${JSON.stringify(res.text)}`);
    await send(server, sid, '1');
  });

  it('websocket: a client that never answers pings is disconnected', async () => {
    const ws = await wsOpen(server);
    try {
      const ping = await ws.readFrame(3000);
      assert.equal(ping.opcode, OP.TEXT);
      assert.equal(ping.text, '2');
      // Not answering: expect a close frame (answered, to finish the closing
      // handshake) or the end of the connection.
      const close = await ws.readClose(3000).catch((err) => err);
      assert.ok(close === null || close?.opcode === OP.CLOSE, `no close within 3 s: ${close}`);
      if (close) ws.sendClose(close.code ?? undefined);
      assert.ok(await ws.waitEnd(3000), 'TCP connection not closed');
      await assertSessionGone(server, ws.open.sid);
    } finally {
      ws.close();
    }
    await assertAlive(server, 'websocket');
  });
});
