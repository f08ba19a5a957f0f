// Error responses, exactly as Node's engine.io sends them:
// HTTP → 400 (403 for code 4), Content-Type: application/json,
// body {"code":N,"message":"..."}; refused WebSocket upgrades →
// "HTTP/1.1 400 Bad Request" and the connection closed.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEioEcho, referenceSkip } from '../lib/server.js';
import { request } from '../lib/http.js';
import { wsConnect } from '../lib/ws.js';
import { eioPath, get, post, handshake, send, wsOpen, assertHttpError, assertAlive } from '../lib/eio.js';

const UNKNOWN_SID = 'AAAAAAAAAAAAAAAAAAAA';

async function assertUpgradeRefused(server, query, opts = {}) {
  const ws = await wsConnect(server.port, eioPath({ transport: 'websocket', ...query }), opts);
  try {
    assert.equal(ws.response.status, 400, `status ${ws.response.status} ${ws.response.text}`);
    assert.equal(ws.response.statusText, 'Bad Request');
    assert.ok(await ws.waitEnd(3000), 'connection not closed after the refused upgrade');
  } finally {
    ws.close();
  }
  return ws.response;
}

describe('error responses', () => {
  let server;
  before(async () => {
    server = await startEioEcho([]);
  });
  after(async () => {
    await server?.stopChecked();
  });

  it('transport=foo → 400 {"code":0,"message":"Transport unknown"}', async () => {
    assertHttpError(await get(server, { transport: 'foo' }), 0, 'Transport unknown');
  });

  it('missing transport → code 0', async () => {
    assertHttpError(await request(server.port, { path: '/engine.io/?EIO=4' }), 0, 'Transport unknown');
  });

  it('unknown sid → 400 {"code":1,"message":"Session ID unknown"} (GET and POST)', async () => {
    assertHttpError(await get(server, { sid: UNKNOWN_SID }), 1, 'Session ID unknown');
    assertHttpError(await post(server, { sid: UNKNOWN_SID }, '4x'), 1, 'Session ID unknown');
  });

  it('transport is checked before the sid (transport=foo&sid=unknown → code 0)', async () => {
    assertHttpError(await get(server, { transport: 'foo', sid: UNKNOWN_SID }), 0, 'Transport unknown');
  });

  it('POST without sid → 400 {"code":2,"message":"Bad handshake method"}', async () => {
    assertHttpError(await post(server, {}, '4hello'), 2, 'Bad handshake method');
  });

  it('sid of a polling session with transport=websocket and no upgrade headers → code 3', async () => {
    const { sid } = await handshake(server);
    assertHttpError(await get(server, { transport: 'websocket', sid }), 3, 'Bad request');
    // The session itself is not affected.
    await send(server, sid, '4still');
    const res = await get(server, { sid });
    assert.equal(res.text, '4still');
    await send(server, sid, '1');
  });

  it('WebSocket handshake without upgrade headers → code 3', async () => {
    assertHttpError(await get(server, { transport: 'websocket' }), 3, 'Bad request');
  });

  it('EIO=3 → 400 {"code":5,"message":"Unsupported protocol version"}', async () => {
    assertHttpError(await get(server, { EIO: '3' }), 5, 'Unsupported protocol version');
  });

  it('missing EIO → code 5', async () => {
    assertHttpError(await request(server.port, { path: '/engine.io/?transport=polling' }), 5, 'Unsupported protocol version');
  });

  it('EIO=5 → code 5', async () => {
    assertHttpError(await get(server, { EIO: '5' }), 5, 'Unsupported protocol version');
  });

  it('WebSocket upgrade with transport=__proto__ → HTTP/1.1 400 Bad Request, connection closed (CVE-2023-31125)', async () => {
    await assertUpgradeRefused(server, { transport: '__proto__' });
    await assertUpgradeRefused(server, { transport: 'constructor' });
    await assertAlive(server);
  });

  it('WebSocket upgrade with an unknown sid → HTTP/1.1 400 Bad Request, connection closed', async () => {
    await assertUpgradeRefused(server, { sid: UNKNOWN_SID });
    await assertAlive(server);
  });

  it('WebSocket upgrade with EIO=3 opens no session and the connection is closed', async () => {
    const ws = await wsConnect(server.port, eioPath({ transport: 'websocket', EIO: '3' }));
    try {
      assert.ok([101, 400].includes(ws.response.status), `status ${ws.response.status}`);
      assert.ok(await ws.waitEnd(3000), 'connection not closed');
      assert.ok(!ws.reader.buf.includes('"sid"'), `an open packet was sent: ${ws.reader.buf.toString('latin1')}`);
    } finally {
      ws.close();
    }
    await assertAlive(server, 'websocket');
  });

  it('WebSocket upgrade with EIO=3 → HTTP/1.1 400 Bad Request before any 101', {
    skip: referenceSkip('Node answers 101 first, then writes a raw "HTTP/1.1 400 Bad Request" onto the upgraded socket'),
  }, async () => {
    await assertUpgradeRefused(server, { EIO: '3' });
    await assertAlive(server, 'websocket');
  });
});

describe('--reject-header (allowRequest hook)', () => {
  let server;
  before(async () => {
    server = await startEioEcho(['--reject-header', 'X-Reject-Me']);
  });
  after(async () => {
    await server?.stopChecked();
  });

  it('a handshake carrying the header → 403 {"code":4,"message":"Forbidden"}', async () => {
    assertHttpError(await get(server, {}, { headers: [['X-Reject-Me', '1']] }), 4, 'Forbidden');
    assertHttpError(await get(server, {}, { headers: [['x-reject-me', '']] }), 4, 'Forbidden');
  });

  it('a handshake without the header is accepted', async () => {
    await assertAlive(server);
    await assertAlive(server, 'websocket');
  });

  it('a WebSocket handshake carrying the header is refused (HTTP/1.1 400 Bad Request, closed)', async () => {
    await assertUpgradeRefused(server, {}, { headers: [['X-Reject-Me', '1']] });
  });

  it('a WebSocket handshake without the header is accepted', async () => {
    const ws = await wsOpen(server);
    ws.close();
    assert.match(ws.open.sid, /^[A-Za-z0-9_-]{20}$/);
  });
});
