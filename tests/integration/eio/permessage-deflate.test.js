// permessage-deflate (RFC 7692) as ws 8 negotiates it under engine.io's perMessageDeflate option
// (off by default). sioc always answers server_no_context_takeover and client_no_context_takeover;
// the reference runs with the same two ws options (ref/eio-echo.js), so every answer below is
// Node's exact Sec-WebSocket-Extensions value.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import crypto from 'node:crypto';
import { startEioEcho } from '../lib/server.js';
import { wsOpen, eioPath, assertAlive } from '../lib/eio.js';
import { wsConnect, OP } from '../lib/ws.js';
import { openClient } from '../lib/client.js';

const WS_PATH = eioPath({ transport: 'websocket' });
const MAX_PAYLOAD = 100_000;
const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);
const BOTH = 'server_no_context_takeover; client_no_context_takeover';

/** A message compressed as a client does it (no context takeover): deflate-raw, sync flush, tail cut. */
function deflate(data) {
  const out = zlib.deflateRawSync(Buffer.isBuffer(data) ? data : Buffer.from(data, 'utf8'), {
    finishFlush: zlib.constants.Z_SYNC_FLUSH,
  });
  assert.deepEqual(out.subarray(out.length - 4), TAIL);
  return out.subarray(0, out.length - 4);
}

function inflate(payload) {
  return zlib.inflateRawSync(Buffer.concat([payload, TAIL]), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
}

async function offer(server, values) {
  const ws = await wsConnect(server.port, WS_PATH, { headers: values.map((v) => ['Sec-WebSocket-Extensions', v]) });
  ws.close();
  return ws.response;
}

/** A raw Engine.IO WebSocket session that offered permessage-deflate. */
async function deflateSession(server) {
  const ws = await wsOpen(server, { headers: [['Sec-WebSocket-Extensions', 'permessage-deflate; client_max_window_bits']] });
  assert.equal(ws.response.header('sec-websocket-extensions'), `permessage-deflate; ${BOTH}`);
  return ws;
}

describe('permessage-deflate off (the default)', () => {
  let server;
  before(async () => {
    server = await startEioEcho([]);
  });
  after(async () => {
    await server?.stopChecked();
  });

  it('an offer gets no Sec-WebSocket-Extensions, and a malformed one is ignored', async () => {
    for (const value of ['permessage-deflate; client_max_window_bits', 'permessage-deflate; foo', ',']) {
      const res = await offer(server, [value]);
      assert.equal(res.status, 101, value);
      assert.equal(res.header('sec-websocket-extensions'), undefined, value);
    }
  });

  it('RSV1 on a data frame → close 1002', async () => {
    const ws = await wsOpen(server);
    try {
      ws.sendFrame({ opcode: OP.TEXT, rsv: 4, payload: deflate('4hello') });
      const close = await ws.readClose();
      assert.equal(close?.code, 1002);
    } finally {
      ws.close();
    }
  });
});

describe('permessage-deflate on', () => {
  let server;
  before(async () => {
    server = await startEioEcho(['--per-message-deflate', 'true', '--max-payload', String(MAX_PAYLOAD)]);
  });
  after(async () => {
    await server?.stopChecked();
  });

  const accepted = [
    ['permessage-deflate; client_max_window_bits', `permessage-deflate; ${BOTH}`],
    ['permessage-deflate', `permessage-deflate; ${BOTH}`],
    ['permessage-deflate; client_max_window_bits=10', `permessage-deflate; client_max_window_bits=10; ${BOTH}`],
    ['permessage-deflate; client_no_context_takeover; server_max_window_bits=12',
      'permessage-deflate; client_no_context_takeover; server_max_window_bits=12; server_no_context_takeover'],
    ['permessage-deflate;server_no_context_takeover', 'permessage-deflate; server_no_context_takeover; client_no_context_takeover'],
    ['permessage-deflate; server_max_window_bits="0x0c"', `permessage-deflate; server_max_window_bits=12; ${BOTH}`],
    ['permessage-deflate; server_max_window_bits=1e1', `permessage-deflate; server_max_window_bits=10; ${BOTH}`],
    ['x-webkit-deflate-frame, permessage-deflate; client_max_window_bits=9, permessage-deflate',
      `permessage-deflate; client_max_window_bits=9; ${BOTH}`],
    ['permessage-deflate; client_max_window_bits; server_no_context_takeover ,  permessage-deflate',
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover'],
  ];
  for (const [value, answer] of accepted) {
    it(`${JSON.stringify(value)} → ${JSON.stringify(answer)}`, async () => {
      const res = await offer(server, [value]);
      assert.equal(res.status, 101);
      assert.equal(res.header('sec-websocket-extensions'), answer);
    });
  }

  it('two Sec-WebSocket-Extensions headers are read as one list', async () => {
    const res = await offer(server, ['x-foo', 'permessage-deflate; client_max_window_bits=11']);
    assert.equal(res.status, 101);
    assert.equal(res.header('sec-websocket-extensions'), `permessage-deflate; client_max_window_bits=11; ${BOTH}`);
  });

  it('no permessage-deflate among the offers: no answer', async () => {
    const res = await offer(server, ['x-webkit-deflate-frame; no_context_takeover']);
    assert.equal(res.status, 101);
    assert.equal(res.header('sec-websocket-extensions'), undefined);
  });

  const refused = [
    'permessage-deflate; foo', 'permessage-deflate; server_max_window_bits=16', 'permessage-deflate; server_max_window_bits=7',
    'permessage-deflate; server_max_window_bits', 'permessage-deflate; client_max_window_bits=10.5',
    'permessage-deflate; client_no_context_takeover=1', 'permessage-deflate; client_no_context_takeover; client_no_context_takeover',
    'permessage-deflate,', ', permessage-deflate', 'permessage-deflate;', 'permessage-deflate; a="b c"',
    'permessage-deflate, permessage-deflate; bar', 'x-foo; a="', 'permessage-deflate; server_max_window_bits=0x',
  ];
  for (const value of refused) {
    it(`${JSON.stringify(value)} → 400 "Invalid or unacceptable Sec-WebSocket-Extensions header"`, async () => {
      const res = await offer(server, [value]);
      assert.equal(res.status, 400);
      assert.equal(res.text, 'Invalid or unacceptable Sec-WebSocket-Extensions header');
    });
  }

  it('a compressed text message is inflated; the echo of ≥ 1024 bytes comes back compressed, a shorter one plain', async () => {
    const ws = await deflateSession(server);
    try {
      const big = `4${'hello world '.repeat(200)}`;
      ws.sendFrame({ opcode: OP.TEXT, rsv: 4, payload: deflate(big) });
      const echo = await ws.readText();
      assert.equal(echo.rsv, 4);
      assert.ok(echo.payload.length < 200, `compressed to ${echo.payload.length} bytes`);
      assert.equal(inflate(echo.payload).toString('utf8'), big);

      const small = `4${'a'.repeat(1022)}`; // 1023 bytes: under the threshold
      ws.sendFrame({ opcode: OP.TEXT, rsv: 4, payload: deflate(small) });
      const plain = await ws.readText();
      assert.equal(plain.rsv, 0);
      assert.equal(plain.text, small);

      const exact = `4${'a'.repeat(1023)}`;
      ws.sendText(exact); // a plain message is fine too
      const compressed = await ws.readText();
      assert.equal(compressed.rsv, 4);
      assert.equal(inflate(compressed.payload).toString('utf8'), exact);
    } finally {
      ws.close();
    }
  });

  it('binary messages, compressed and fragmented (RSV1 on the first frame only)', async () => {
    const ws = await deflateSession(server);
    try {
      const data = Buffer.alloc(5000, 7);
      const compressed = deflate(data);
      const half = Math.floor(compressed.length / 2);
      ws.sendFrame({ opcode: OP.BINARY, rsv: 4, fin: false, payload: compressed.subarray(0, half) });
      ws.sendFrame({ opcode: OP.CONT, payload: compressed.subarray(half) });
      const echo = await ws.readText();
      assert.equal(echo.opcode, OP.BINARY);
      assert.equal(echo.rsv, 4);
      assert.deepEqual(inflate(echo.payload), data);
    } finally {
      ws.close();
    }
  });

  it('a message that inflates past maxPayload (zip bomb) → close 1009', async () => {
    const ws = await deflateSession(server);
    try {
      const bomb = deflate(Buffer.alloc(20 * MAX_PAYLOAD, 0)); // ~2 MB of zeros in ~2 KB
      assert.ok(bomb.length < MAX_PAYLOAD / 10);
      ws.sendFrame({ opcode: OP.TEXT, rsv: 4, payload: bomb });
      const close = await ws.readClose();
      assert.equal(close?.code, 1009);
    } finally {
      ws.close();
    }
    await assertAlive(server, 'websocket');
  });

  it('exactly maxPayload once inflated is accepted', async () => {
    const ws = await deflateSession(server);
    try {
      const text = `4${'z'.repeat(MAX_PAYLOAD - 1)}`;
      ws.sendFrame({ opcode: OP.TEXT, rsv: 4, payload: deflate(text) });
      const echo = await ws.readText();
      assert.equal(inflate(echo.payload).toString('utf8'), text);
    } finally {
      ws.close();
    }
  });

  for (const [what, frames, code] of [
    ['RSV1 on a ping', [{ opcode: OP.PING, rsv: 4, payload: Buffer.from('x') }], 1002],
    ['RSV1 on a continuation', [{ opcode: OP.TEXT, fin: false, payload: Buffer.from('4a') }, { opcode: OP.CONT, rsv: 4, payload: Buffer.from('b') }], 1002],
    ['RSV2 with RSV1', [{ opcode: OP.TEXT, rsv: 6, payload: deflate('4abc') }], 1002],
    ['data that is not deflate', [{ opcode: OP.TEXT, rsv: 4, payload: Buffer.from([0xff, 0xff, 0xff, 0xff]) }], 1007],
    ['text that inflates to bad UTF-8', [{ opcode: OP.TEXT, rsv: 4, payload: deflate(Buffer.from([0x34, 0xc3, 0x28])) }], 1007],
  ]) {
    it(`${what} → close ${code}`, async () => {
      const ws = await deflateSession(server);
      try {
        for (const frame of frames) ws.sendFrame(frame);
        const close = await ws.readClose();
        assert.equal(close?.code, code);
      } finally {
        ws.close();
      }
    });
  }

  it('engine.io-client (ws, permessage-deflate offered) echoes large text and binary', async () => {
    const client = await openClient(server, 'websocket');
    try {
      const text = crypto.randomBytes(3000).toString('hex');
      client.send(text);
      assert.deepEqual(await client.next(), [text]);
      const binary = Buffer.alloc(4096, 1);
      client.send(binary);
      const [echo] = await client.next();
      assert.deepEqual(Buffer.from(echo), binary);
      assert.equal(client.socket.transport.ws._extensions['permessage-deflate'] !== undefined, true);
    } finally {
      client.socket.close();
    }
  });

  it('after an upgrade from polling, the WebSocket compresses as well', async () => {
    const client = await openClient(server, 'upgrade');
    try {
      await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no upgrade within 5 s')), 5000);
        client.socket.once('upgrade', () => {
          clearTimeout(timer);
          resolve();
        });
      });
      const text = 'x'.repeat(5000);
      client.send(text);
      assert.deepEqual(await client.next(), [text]);
      assert.ok(client.socket.transport.ws._extensions['permessage-deflate']);
    } finally {
      client.socket.close();
    }
  });
});
