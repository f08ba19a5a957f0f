// Upgrade from polling to WebSocket, driven by hand:
// 2probe → 3probe (+ noop "6" to the pending GET) → 5.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEioEcho } from '../lib/server.js';
import { OP, wsConnect } from '../lib/ws.js';
import { eioPath, handshake, poll, post, send, wsOpen, assertHttpError, assertAlive } from '../lib/eio.js';

const UPGRADE_TIMEOUT = 500;

// The server must close `ws` (close frame, answered, then TCP end; or just TCP end).
async function assertWsClosedByServer(ws, timeoutMs) {
  const close = await ws.readClose(timeoutMs);
  if (close) ws.sendClose(close.code ?? undefined);
  assert.ok(await ws.waitEnd(2000), 'TCP connection not closed by the server');
}

async function probe(ws) {
  ws.sendText('2probe');
  const reply = await ws.readFrame(3000);
  assert.equal(reply.opcode, OP.TEXT);
  assert.equal(reply.text, '3probe');
}

describe('upgrade dance (raw)', () => {
  let server;
  before(async () => {
    server = await startEioEcho(['--upgrade-timeout', String(UPGRADE_TIMEOUT)]);
  });
  after(async () => {
    await server?.stopChecked();
  });

  it('2probe → 3probe, the pending GET gets noop "6", 5 completes; messages then flow over the WebSocket', async () => {
    const { sid } = await handshake(server);
    const pending = poll(server, sid);
    const ws = await wsOpen(server, { sid });
    try {
      await probe(ws);
      const released = await pending;
      assert.equal(released.status, 200);
      assert.equal(released.text, '6');
      ws.sendText('5');
      ws.sendText('4over websocket');
      assert.equal((await ws.readText()).text, '4over websocket');
      ws.sendBinary(Buffer.from([9, 8, 7]));
      const bin = await ws.readText();
      assert.equal(bin.opcode, OP.BINARY);
      assert.deepEqual(bin.payload, Buffer.from([9, 8, 7]));
    } finally {
      ws.close();
    }
  });

  it('after the upgrade, polling GET/POST with that sid → 400 code 3 and a second WebSocket is closed', async () => {
    const { sid } = await handshake(server);
    const ws = await wsOpen(server, { sid });
    try {
      await probe(ws);
      ws.sendText('5');
      ws.sendText('4sync');
      assert.equal((await ws.readText()).text, '4sync');

      assertHttpError(await poll(server, sid), 3, 'Bad request');
      assertHttpError(await post(server, { sid }, '4x'), 3, 'Bad request');

      const second = await wsConnect(server.port, eioPath({ transport: 'websocket', sid }));
      try {
        if (second.response.status === 101) await assertWsClosedByServer(second, 3000);
        else assert.ok(await second.waitEnd(3000), `second WebSocket got ${second.response.status} and stayed open`);
      } finally {
        second.close();
      }

      // The upgraded session is unaffected.
      ws.sendText('4still upgraded');
      assert.equal((await ws.readText()).text, '4still upgraded');
    } finally {
      ws.close();
    }
  });

  it('no "5" within --upgrade-timeout: the WebSocket is closed and the polling session continues', async () => {
    const { sid } = await handshake(server);
    const ws = await wsOpen(server, { sid });
    try {
      await probe(ws);
      await assertWsClosedByServer(ws, UPGRADE_TIMEOUT + 3000);
    } finally {
      ws.close();
    }
    await send(server, sid, '4polling lives');
    // GETs may first drain noops written during the probe.
    let res;
    for (let i = 0; i < 5; i++) {
      res = await poll(server, sid);
      assert.equal(res.status, 200);
      if (res.text !== '6') break;
    }
    assert.equal(res.text, '4polling lives');
    await send(server, sid, '1');
  });

  it('a packet other than 2probe/5 during the upgrade closes the new WebSocket; polling continues', async () => {
    const { sid } = await handshake(server);
    const ws = await wsOpen(server, { sid });
    try {
      ws.sendText('4too early');
      await assertWsClosedByServer(ws, 3000);
    } finally {
      ws.close();
    }
    await send(server, sid, '4after');
    assert.equal((await poll(server, sid)).text, '4after');
    await send(server, sid, '1');
    await assertAlive(server);
  });
});
