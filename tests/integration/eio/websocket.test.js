// WebSocket framing and handshake bad inputs with a raw client. Each test
// checks the exact close frame the server sends, that it then closes the
// TCP connection, and that a new client still works.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEioEcho } from '../lib/server.js';
import { openConnection, buildRequest } from '../lib/http.js';
import { OP, encodeFrame, closePayload, wsConnect } from '../lib/ws.js';
import { eioPath, wsOpen, assertAlive, sleep } from '../lib/eio.js';

const CLOSE_BOUND_MS = 3000;

/**
 * After `act(ws)` on a fresh Engine.IO WebSocket, the server must send a close
 * frame with `code` (payload = the 2 code bytes, optionally a reason) and
 * then close the connection.
 */
async function expectCloseCode(server, code, act) {
  const ws = await wsOpen(server);
  try {
    await act(ws);
    const close = await ws.readClose(CLOSE_BOUND_MS);
    assert.ok(close, `connection ended without a close frame (want ${code})`);
    assert.equal(close.code, code, `close frame ${close.raw.toString('hex')}`);
    assert.equal(close.fin, true);
    assert.equal(close.masked, false, 'server frames must not be masked');
    assert.ok(await ws.waitEnd(CLOSE_BOUND_MS), 'TCP connection not closed after the close frame');
  } finally {
    ws.close();
  }
  await assertAlive(server, 'websocket');
}

const upgradeHeaders = (key = 'dGhlIHNhbXBsZSBub25jZQ==') => [
  ['Connection', 'Upgrade'], ['Upgrade', 'websocket'], ['Sec-WebSocket-Version', '13'], ['Sec-WebSocket-Key', key],
];

describe('WebSocket frames: bad inputs', () => {
  let server;
  before(async () => {
    server = await startEioEcho([]);
  });
  after(async () => {
    await server?.stopChecked();
  });

  it('frame with RSV2/RSV3 sent together with the handshake → 101 then close 1002 (CVE-2022-21676)', async () => {
    for (const rsv of [2, 1, 3]) {
      const frame = encodeFrame({ opcode: OP.TEXT, rsv, payload: 'test' });
      const ws = await wsConnect(server.port, eioPath({ transport: 'websocket' }), { extra: frame });
      try {
        assert.equal(ws.response.status, 101);
        const close = await ws.readClose(CLOSE_BOUND_MS);
        assert.ok(close, `RSV ${rsv}: no close frame`);
        assert.equal(close.code, 1002, `RSV ${rsv}: close frame ${close.raw.toString('hex')}`);
        assert.ok(await ws.waitEnd(CLOSE_BOUND_MS));
      } finally {
        ws.close();
      }
    }
    await assertAlive(server, 'websocket');
  });

  it('RSV1 without a negotiated extension → close 1002', async () => {
    await expectCloseCode(server, 1002, (ws) => ws.sendFrame({ opcode: OP.TEXT, rsv: 4, payload: '4x' }));
  });

  it('unmasked client frame → close 1002', async () => {
    await expectCloseCode(server, 1002, (ws) => ws.sendFrame({ opcode: OP.TEXT, payload: '4x', mask: false }));
  });

  it('text message with invalid UTF-8 → close 1007', async () => {
    await expectCloseCode(server, 1007, (ws) => ws.sendFrame({ opcode: OP.TEXT, payload: Buffer.from([0x34, 0xc3, 0x28]) }));
  });

  it('overlong and surrogate UTF-8 → close 1007', async () => {
    await expectCloseCode(server, 1007, (ws) => ws.sendFrame({ opcode: OP.TEXT, payload: Buffer.from([0x34, 0xc0, 0xaf]) }));
    await expectCloseCode(server, 1007, (ws) => ws.sendFrame({ opcode: OP.TEXT, payload: Buffer.from([0x34, 0xed, 0xa0, 0x80]) }));
  });

  it('ping with a 126-byte payload → close 1002', async () => {
    await expectCloseCode(server, 1002, (ws) => ws.sendFrame({ opcode: OP.PING, payload: Buffer.alloc(126, 0x61) }));
  });

  it('fragmented ping (FIN=0 on a control frame) → close 1002', async () => {
    await expectCloseCode(server, 1002, (ws) => ws.sendFrame({ opcode: OP.PING, fin: false, payload: 'x' }));
  });

  it('a ping is answered with a pong carrying the same payload', async () => {
    const ws = await wsOpen(server);
    try {
      const payload = Buffer.from([0x61, 0x62, 0x63, 0x00, 0xff]);
      ws.sendFrame({ opcode: OP.PING, payload });
      const pong = await ws.readUntil((f) => f.opcode !== OP.TEXT, 'pong', CLOSE_BOUND_MS);
      assert.equal(pong.opcode, OP.PONG);
      assert.deepEqual(pong.payload, payload);
    } finally {
      ws.close();
    }
  });

  for (const code of [999, 1005, 1006, 2000, 5000]) {
    it(`close frame with invalid code ${code} → close 1002`, async () => {
      await expectCloseCode(server, 1002, (ws) => ws.sendFrame({ opcode: OP.CLOSE, payload: closePayload(code) }));
    });
  }

  it('close frame with a 1-byte payload → close 1002', async () => {
    await expectCloseCode(server, 1002, (ws) => ws.sendFrame({ opcode: OP.CLOSE, payload: Buffer.from([0x03]) }));
  });

  it('client close 1000 → the server answers exactly 88 02 03 e8 and closes (CVE-2016-10518, CVE-2026-45736)', async () => {
    const ws = await wsOpen(server);
    try {
      ws.sendClose(1000);
      const close = await ws.readClose(CLOSE_BOUND_MS);
      assert.ok(close, 'no close frame');
      assert.equal(close.raw.toString('hex'), '880203e8');
      assert.ok(await ws.waitEnd(CLOSE_BOUND_MS), 'TCP connection not closed');
    } finally {
      ws.close();
    }
    await assertAlive(server, 'websocket');
  });

  it('unknown opcodes (0x3 data, 0xB control) → close 1002', async () => {
    await expectCloseCode(server, 1002, (ws) => ws.sendFrame({ opcode: 0x3, payload: 'x' }));
    await expectCloseCode(server, 1002, (ws) => ws.sendFrame({ opcode: 0xb, payload: 'x' }));
  });

  it('continuation frame without a message in progress → close 1002', async () => {
    await expectCloseCode(server, 1002, (ws) => ws.sendFrame({ opcode: OP.CONT, payload: '4x' }));
  });

  it('new data frame while a fragmented message is in progress → close 1002', async () => {
    await expectCloseCode(server, 1002, (ws) => {
      ws.sendFrame({ opcode: OP.TEXT, fin: false, payload: '4a' });
      ws.sendFrame({ opcode: OP.TEXT, payload: '4b' });
    });
  });

  it('5000 empty continuation frames in one message → close 1008', async () => {
    await expectCloseCode(server, 1008, (ws) => {
      const parts = [encodeFrame({ opcode: OP.TEXT, fin: false, payload: '4' })];
      for (let i = 0; i < 5000; i++) parts.push(encodeFrame({ opcode: OP.CONT, fin: false }));
      parts.push(encodeFrame({ opcode: OP.CONT, payload: 'x' }));
      ws.send(Buffer.concat(parts));
    });
  });

  it('100 fragments (UTF-8 characters split across frames, pings in between) are reassembled', async () => {
    const ws = await wsOpen(server);
    try {
      const parts = [encodeFrame({ opcode: OP.TEXT, fin: false, payload: '4' })];
      const e = Buffer.from('é');
      for (let i = 0; i < 100; i++) {
        parts.push(encodeFrame({ opcode: OP.CONT, fin: false, payload: e.subarray(i % 2, i % 2 + 1) }));
        if (i === 50) parts.push(encodeFrame({ opcode: OP.PING, payload: 'mid' }));
      }
      parts.push(encodeFrame({ opcode: OP.CONT, payload: '!' }));
      ws.send(Buffer.concat(parts));
      const pong = await ws.readUntil((f) => f.opcode === OP.PONG, 'pong', CLOSE_BOUND_MS);
      assert.equal(pong.payload.toString(), 'mid');
      const msg = await ws.readText();
      assert.equal(msg.text, `4${'é'.repeat(50)}!`);
    } finally {
      ws.close();
    }
  });

  it('an invalid Engine.IO packet over the WebSocket closes the session', async () => {
    const ws = await wsOpen(server);
    try {
      ws.sendText('9garbage');
      const close = await ws.readClose(CLOSE_BOUND_MS);
      if (close) ws.sendClose(close.code ?? undefined);
      assert.ok(await ws.waitEnd(CLOSE_BOUND_MS), 'connection still open');
    } finally {
      ws.close();
    }
    await assertAlive(server, 'websocket');
  });
});

describe('WebSocket handshake: bad inputs', () => {
  let server;
  before(async () => {
    server = await startEioEcho([]);
  });
  after(async () => {
    await server?.stopChecked();
  });

  async function assertRefused(opts, status = 400) {
    const ws = await wsConnect(server.port, eioPath({ transport: 'websocket' }), opts);
    try {
      assert.equal(ws.response.status, status, `status ${ws.response.status} ${ws.response.text}`);
      assert.ok(await ws.waitEnd(CLOSE_BOUND_MS), 'connection not closed');
    } finally {
      ws.close();
    }
  }

  it('missing Sec-WebSocket-Key → 400', async () => {
    await assertRefused({ omit: ['Sec-WebSocket-Key'] });
    await assertAlive(server, 'websocket');
  });

  it('invalid Sec-WebSocket-Key (not 16 bytes in base64) → 400', async () => {
    await assertRefused({ key: 'c2hvcnQ=' });
    await assertAlive(server, 'websocket');
  });

  it('Sec-WebSocket-Version other than 13 (12, 14, missing) → 400', async () => {
    await assertRefused({ version: 12 });
    await assertRefused({ version: 14 });
    await assertRefused({ omit: ['Sec-WebSocket-Version'] });
    await assertAlive(server, 'websocket');
  });

  it('Sec-WebSocket-Protocol: "b" + 30000 spaces + "x" is answered promptly (CVE-2021-32640)', async () => {
    // 30000 spaces exceed the 16 KiB header limit: 431 on both servers.
    const started = Date.now();
    await assertRefused({ headers: [['Sec-WebSocket-Protocol', `b${' '.repeat(30000)}x`]] }, 431);
    assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
    await assertAlive(server, 'websocket');
  });

  it('Sec-WebSocket-Protocol: "b" + 12000 spaces + "x" (within the header limit) is answered promptly', async () => {
    const started = Date.now();
    const ws = await wsConnect(server.port, eioPath({ transport: 'websocket' }), {
      headers: [['Sec-WebSocket-Protocol', `b${' '.repeat(12000)}x`]],
    });
    ws.close();
    assert.ok([101, 400].includes(ws.response.status), `status ${ws.response.status}`);
    assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
    await assertAlive(server, 'websocket');
  });

  it('Sec-WebSocket-Extensions naming Object.prototype members is harmless', async () => {
    const ws = await wsConnect(server.port, eioPath({ transport: 'websocket' }), {
      headers: [['Sec-WebSocket-Extensions', 'constructor, __proto__; toString=1, hasOwnProperty']],
    });
    ws.close();
    assert.ok([101, 400].includes(ws.response.status), `status ${ws.response.status}`);
    await assertAlive(server, 'websocket');
  });

  it('an Upgrade request to a foreign path is answered or closed within 3 s', async () => {
    const conn = await openConnection(server.port);
    try {
      conn.write(buildRequest({ path: '/other', headers: upgradeHeaders(), host: `127.0.0.1:${server.port}` }));
      const ended = await conn.reader.waitEnd(3000);
      const answered = conn.reader.buf.length > 0;
      assert.ok(ended || answered, 'no answer and no close within 3 s');
      if (answered) assert.doesNotMatch(conn.reader.buf.toString('latin1'), /^HTTP\/1\.1 101/, 'foreign path upgraded');
    } finally {
      conn.close();
    }
    await assertAlive(server);
  });

  it('an Upgrade request to a foreign path reset by the client does not hurt the server (CVE-2022-41940)', async () => {
    for (const [path, headers] of [
      ['/other', upgradeHeaders()],
      ['/', [['Connection', 'Upgrade, HTTP2-Settings'], ['Upgrade', 'h2c'], ['HTTP2-Settings', 'AAMAAABkAARAAAAAAAIAAAAA']]],
    ]) {
      const conn = await openConnection(server.port);
      conn.write(buildRequest({ path, headers, host: `127.0.0.1:${server.port}` }));
      await sleep(50);
      conn.socket.resetAndDestroy();
    }
    // Node's engine.io used to crash on the reset when its 1 s destroy timer fired.
    await sleep(1300);
    await assertAlive(server);
  });
});
