// Handshake details over raw HTTP and a raw WebSocket.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEioEcho } from '../lib/server.js';
import { request } from '../lib/http.js';
import { eioPath, get, handshake, parseOpenPacket, wsOpen, assertHttpError, assertAlive } from '../lib/eio.js';

const SID_RE = /^[A-Za-z0-9_-]{20}$/;
const OPEN_KEYS = ['maxPayload', 'pingInterval', 'pingTimeout', 'sid', 'upgrades'];

describe('handshake, both transports enabled', () => {
  let server;
  before(async () => {
    server = await startEioEcho(['--ping-interval', '3000', '--ping-timeout', '2000', '--max-payload', '54321']);
  });
  after(async () => {
    await server?.stopChecked();
  });

  it('polling handshake: 200, text/plain; charset=UTF-8, open packet with exactly the five keys', async () => {
    const res = await get(server, {});
    assert.equal(res.status, 200);
    assert.equal(res.header('content-type'), 'text/plain; charset=UTF-8');
    assert.ok(res.text.startsWith('0{'), `body ${JSON.stringify(res.text)}`);
    assert.equal(res.text.indexOf('\x1e'), -1, 'the handshake response holds only the open packet');
    const open = parseOpenPacket(res.text);
    assert.deepEqual(Object.keys(open).sort(), OPEN_KEYS);
    assert.match(open.sid, SID_RE);
    assert.deepEqual(open.upgrades, ['websocket']);
    assert.equal(open.pingInterval, 3000);
    assert.equal(open.pingTimeout, 2000);
    assert.equal(open.maxPayload, 54321);
    assert.equal(Number(res.header('content-length')), res.body.length);
  });

  it('polling responses are not cacheable (cache-control: no-store)', async () => {
    const res = await get(server, {});
    assert.equal(res.header('cache-control'), 'no-store');
  });

  it('accepts the query in python-engineio order with a cache-buster (transport=polling&EIO=4&t=...)', async () => {
    const res = await request(server.port, { path: '/engine.io/?transport=polling&EIO=4&t=1718000000.123' });
    assert.equal(res.status, 200);
    assert.match(parseOpenPacket(res.text).sid, SID_RE);
  });

  it('direct WebSocket handshake (no sid): open packet with "upgrades":[]', async () => {
    const ws = await wsOpen(server);
    try {
      assert.deepEqual(Object.keys(ws.open).sort(), OPEN_KEYS);
      assert.match(ws.open.sid, SID_RE);
      assert.deepEqual(ws.open.upgrades, []);
      assert.equal(ws.open.pingInterval, 3000);
      assert.equal(ws.open.pingTimeout, 2000);
      assert.equal(ws.open.maxPayload, 54321);
    } finally {
      ws.close();
    }
  });

  it('sids differ across 200 handshakes', async () => {
    const sids = new Set();
    for (let batch = 0; batch < 20; batch++) {
      const results = await Promise.all(Array.from({ length: 10 }, () => handshake(server)));
      for (const { sid } of results) {
        assert.match(sid, SID_RE);
        sids.add(sid);
      }
    }
    assert.equal(sids.size, 200);
  });
});

describe('handshake, --transports polling', () => {
  let server;
  before(async () => {
    server = await startEioEcho(['--transports', 'polling']);
  });
  after(async () => {
    await server?.stopChecked();
  });

  it('advertises "upgrades":[]', async () => {
    const { open } = await handshake(server);
    assert.deepEqual(open.upgrades, []);
  });

  it('refuses transport=websocket (no upgrade headers) with code 0 "Transport unknown"', async () => {
    assertHttpError(await get(server, { transport: 'websocket' }), 0, 'Transport unknown');
  });
});

describe('handshake, --transports websocket', () => {
  let server;
  before(async () => {
    server = await startEioEcho(['--transports', 'websocket']);
  });
  after(async () => {
    await server?.stopChecked();
  });

  it('refuses a polling handshake with code 0 "Transport unknown"', async () => {
    assertHttpError(await get(server, {}), 0, 'Transport unknown');
  });

  it('accepts a WebSocket handshake with "upgrades":[]', async () => {
    const ws = await wsOpen(server);
    ws.close();
    assert.deepEqual(ws.open.upgrades, []);
    await assertAlive(server, 'websocket');
  });
});

describe('handshake, --path /custom/', () => {
  let server;
  before(async () => {
    server = await startEioEcho(['--path', '/custom/']);
  });
  after(async () => {
    await server?.stopChecked();
  });

  it('serves Engine.IO under the configured path', async () => {
    const res = await request(server.port, { path: eioPath({}, '/custom/') });
    assert.equal(res.status, 200);
    assert.match(parseOpenPacket(res.text).sid, SID_RE);
  });
});
