// Engine.IO v3 clients (allowEIO3), on the raw wire: the handshake, the v3
// payload framing (`<length>:<packet>`, the length in UTF-16 code units, and
// the XHR2 binary framing), the heartbeat the other way round (the client
// pings, the server pongs and times out a silent client), binary over polling
// and WebSocket (type byte first, or "b4" + base64 with b64=1), the upgrade.
// Every expected answer is engine.io 6's (run against ref/eio-echo.js
// --allow-eio3 to check). Without --allow-eio3 EIO=3 is refused (code 5).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEioEcho, referenceSkip } from '../lib/server.js';
import { OP } from '../lib/ws.js';
import { wsConnect } from '../lib/ws.js';
import { get, post, eioPath, assertHttpError, assertSessionGone } from '../lib/eio.js';

// A client silent for 1.5 s is gone: long enough for a loaded machine, short enough to wait for.
const PING_INTERVAL = 1000;
const PING_TIMEOUT = 500;

const v3 = (query = {}) => ({ EIO: '3', transport: 'polling', ...query });
// A record of a v3 text payload: a JavaScript string's length counts UTF-16 code units.
const record = (packet) => `${packet.length}:${packet}`;
const TEXT = [['Content-Type', 'text/plain;charset=UTF-8']];
const BINARY = [['Content-Type', 'application/octet-stream']];

// A record of a binary (XHR2) payload: 0 (text) | 1 (binary), the length one byte per digit, 0xff.
function binaryRecord(isBinary, bytes) {
  const digits = [...String(bytes.length)].map(Number);
  return Buffer.concat([Buffer.from([isBinary ? 1 : 0, ...digits, 0xff]), bytes]);
}

async function handshake(server, query = {}) {
  const res = await get(server, v3(query));
  assert.equal(res.status, 200, `handshake ${res.status} ${res.text}`);
  assert.equal(res.header('content-type'), 'text/plain; charset=UTF-8');
  const m = /^(\d+):(0\{.*\})$/.exec(res.text);
  assert.ok(m, `the open packet alone, framed "<length>:0{...}": ${JSON.stringify(res.text)}`);
  assert.equal(Number(m[1]), m[2].length);
  return { sid: JSON.parse(m[2].slice(1)).sid, open: JSON.parse(m[2].slice(1)) };
}

async function sendV3(server, sid, body, headers = TEXT) {
  const res = await post(server, v3({ sid }), body, { headers });
  assert.equal(res.status, 200, `POST ${res.status} ${res.text}`);
  assert.equal(res.text, 'ok');
}

const pollV3 = (server, sid) => get(server, v3({ sid }), { timeoutMs: 3000 });

describe('EIO3 off by default', () => {
  let server;
  before(async () => {
    server = await startEioEcho();
  });
  after(async () => {
    await server?.stopChecked();
  });

  it('EIO=3 and a missing EIO are refused with code 5, as Node without allowEIO3', async () => {
    assertHttpError(await get(server, v3()), 5, 'Unsupported protocol version');
    assertHttpError(await get(server, { EIO: undefined }), 5, 'Unsupported protocol version');
  });
});

describe('EIO3 clients (--allow-eio3, raw wire)', () => {
  let server;
  before(async () => {
    server = await startEioEcho([
      '--allow-eio3', '--ping-interval', String(PING_INTERVAL), '--ping-timeout', String(PING_TIMEOUT),
      '--max-payload', '1000',
    ]);
  });
  after(async () => {
    await server?.stopChecked();
  });

  it('handshake: the open packet alone, with sid, upgrades, pingInterval, pingTimeout and maxPayload', async () => {
    const { open } = await handshake(server);
    assert.deepEqual(Object.keys(open), ['sid', 'upgrades', 'pingInterval', 'pingTimeout', 'maxPayload']);
    assert.equal(open.sid.length, 20);
    assert.deepEqual(open.upgrades, ['websocket']);
    assert.equal(open.pingInterval, PING_INTERVAL);
    assert.equal(open.pingTimeout, PING_TIMEOUT);
    assert.equal(open.maxPayload, 1000);
    // Node counts a request without EIO as protocol 3.
    const res = await get(server, { EIO: undefined });
    assert.equal(res.status, 200);
    assert.match(res.text, /^\d+:0\{"sid":/);
  });

  it('text payloads: lengths in UTF-16 code units both ways (multi-byte, a surrogate pair), "0:" skipped', async () => {
    const { sid } = await handshake(server);
    const packets = ['4héllo', '4€uro', '4😀 smile', '4'];
    await sendV3(server, sid, `0:${packets.map(record).join('')}`);
    const res = await pollV3(server, sid);
    assert.equal(res.status, 200);
    assert.equal(res.header('content-type'), 'text/plain; charset=UTF-8');
    assert.equal(res.text, packets.map(record).join(''));
    assert.equal(res.text.slice(0, 8), '6:4héllo');
    assert.ok(res.text.includes('9:4😀 smile'), res.text);
    await sendV3(server, sid, record('1'));
  });

  it('heartbeat: the client pings ("2"), the server answers "3"; pinging keeps the session', async () => {
    const { sid } = await handshake(server);
    const until = Date.now() + 2 * (PING_INTERVAL + PING_TIMEOUT);
    let pongs = 0;
    while (Date.now() < until) {
      await sendV3(server, sid, record('2'));
      const res = await pollV3(server, sid);
      assert.equal(res.status, 200, `GET ${res.status} ${res.text}`);
      assert.equal(res.text, record('3'));
      pongs++;
      await new Promise((r) => setTimeout(r, PING_INTERVAL / 4));
    }
    assert.ok(pongs >= 3, `${pongs} pongs`);
    await sendV3(server, sid, record('4alive'));
    assert.equal((await pollV3(server, sid)).text, record('4alive'));
    await sendV3(server, sid, record('1'));
  });

  it('heartbeat: a client that stops pinging is timed out after pingInterval + pingTimeout', async () => {
    const { sid } = await handshake(server);
    const res = await pollV3(server, sid);
    // The server never pings an EIO3 client: the held GET ends with the close.
    assert.equal(res.status, 200);
    assert.equal(res.text, record('1'));
    await assertSessionGone(server, sid);
  });

  it('heartbeat: a pong from the client is the wrong direction and closes the session', async () => {
    const { sid } = await handshake(server);
    await sendV3(server, sid, record('3'));
    await assertSessionGone(server, sid);
  });

  for (const [what, body] of [
    ['a length past the end', '9:4abc'],
    ['a length that is not a number', 'x:4abc'],
    ['an empty length', ':4abc'],
    ['a huge length', '99999999999999999999:4a'],
    ['a length ending inside a surrogate pair', '1:😀'],
    ['an unknown packet type', '2:9a'],
    ['an empty body', ''],
  ]) {
    it(`bad payload (${what}): answered "ok", then the session is closed`, async () => {
      const { sid } = await handshake(server);
      await sendV3(server, sid, body);
      await assertSessionGone(server, sid);
    });
  }

  it('binary over polling (XHR2 framing): echoed with Content-Type application/octet-stream, text records framed as binary too', async () => {
    const { sid } = await handshake(server);
    const bytes = Buffer.from([1, 2, 3, 0xff, 0]);
    const body = Buffer.concat([
      binaryRecord(false, Buffer.from('4héllo', 'utf8')),
      binaryRecord(true, Buffer.concat([Buffer.from([4]), bytes])),
    ]);
    await sendV3(server, sid, body, BINARY);
    const res = await pollV3(server, sid);
    assert.equal(res.status, 200);
    assert.equal(res.header('content-type'), 'application/octet-stream');
    assert.deepEqual(res.body, body);
    await sendV3(server, sid, record('1'));
  });

  it('binary over polling with b64=1: "b4" + base64 records, as text', async () => {
    const { sid } = await handshake(server, { b64: '1' });
    const bytes = Buffer.from([1, 2, 3, 0xff, 0]);
    const packet = `b4${bytes.toString('base64')}`;
    await sendV3(server, sid, record(packet) + record('4text'));
    const res = await pollV3(server, sid);
    assert.equal(res.header('content-type'), 'text/plain; charset=UTF-8');
    assert.equal(res.text, record(packet) + record('4text'));
    await sendV3(server, sid, record('1'));
  });

  it('a binary POST without b64: a text message echoed in a text payload', async () => {
    const { sid } = await handshake(server);
    await sendV3(server, sid, binaryRecord(false, Buffer.from('4plain', 'utf8')), BINARY);
    const res = await pollV3(server, sid);
    assert.equal(res.header('content-type'), 'text/plain; charset=UTF-8');
    assert.equal(res.text, record('4plain'));
    await sendV3(server, sid, record('1'));
  });

  it('maxPayload bounds an EIO3 POST as it bounds EIO4 (413)', async () => {
    const { sid } = await handshake(server);
    const res = await post(server, v3({ sid }), record(`4${'x'.repeat(1200)}`), { headers: TEXT });
    assert.equal(res.status, 413);
  });

  it('a request with the session id and EIO=4 is a protocol mismatch (400 code 3)', async () => {
    const { sid } = await handshake(server);
    assertHttpError(await get(server, { EIO: '4', transport: 'polling', sid }), 3, 'Bad request');
  });

  it('WebSocket only: open packet, text echo, binary with its type byte, ping → pong', async () => {
    const ws = await wsConnect(server.port, eioPath(v3({ transport: 'websocket' })));
    try {
      assert.equal(ws.response.status, 101);
      const open = await ws.readFrame();
      assert.equal(open.opcode, OP.TEXT);
      const handshakeData = JSON.parse(open.text.slice(1));
      assert.equal(open.text[0], '0');
      assert.deepEqual(handshakeData.upgrades, []);
      ws.sendText('2');
      assert.equal((await ws.readFrame()).text, '3');
      ws.sendText('4héllo 😀');
      assert.equal((await ws.readFrame()).text, '4héllo 😀');
      const binary = Buffer.from([4, 1, 2, 3]);
      ws.sendBinary(binary);
      const frame = await ws.readFrame();
      assert.equal(frame.opcode, OP.BINARY);
      assert.deepEqual(frame.payload, binary);
      // A base64 text frame is binary too, and comes back as a binary frame.
      ws.sendText(`b4${Buffer.from([9, 8]).toString('base64')}`);
      const back = await ws.readFrame();
      assert.equal(back.opcode, OP.BINARY);
      assert.deepEqual(back.payload, Buffer.from([4, 9, 8]));
    } finally {
      ws.close();
    }
  });

  it('WebSocket with b64=1: binary goes as a "b4" + base64 text frame', async () => {
    const ws = await wsConnect(server.port, eioPath(v3({ transport: 'websocket', b64: '1' })));
    try {
      await ws.readFrame();
      ws.sendBinary(Buffer.from([4, 1, 2, 3]));
      const frame = await ws.readFrame();
      assert.equal(frame.opcode, OP.TEXT);
      assert.equal(frame.text, `b4${Buffer.from([1, 2, 3]).toString('base64')}`);
    } finally {
      ws.close();
    }
  });

  it('WebSocket: a client that stops pinging is closed after pingInterval + pingTimeout', async () => {
    const ws = await wsConnect(server.port, eioPath(v3({ transport: 'websocket' })));
    try {
      await ws.readFrame();
      // No ping from the server, then the close (a bare close frame, as Node's ws.close()).
      const frame = await ws.readFrame(3000);
      assert.equal(frame.opcode, OP.CLOSE);
      assert.equal(frame.payload.length, 0);
    } finally {
      ws.close();
    }
  });

  it('upgrade: 2probe → 3probe, the held GET gets a noop, then 5; polling is refused after', async () => {
    const { sid } = await handshake(server);
    const held = pollV3(server, sid);
    const ws = await wsConnect(server.port, eioPath(v3({ transport: 'websocket', sid })));
    try {
      assert.equal(ws.response.status, 101);
      ws.sendText('2probe');
      assert.equal((await ws.readFrame()).text, '3probe');
      const released = await held;
      assert.equal(released.status, 200);
      assert.equal(released.text, record('6'));
      ws.sendText('5');
      ws.sendText('4upgraded');
      assert.equal((await ws.readFrame()).text, '4upgraded');
      ws.sendText('2');
      assert.equal((await ws.readFrame()).text, '3');
      assertHttpError(await pollV3(server, sid), 3, 'Bad request');
    } finally {
      ws.close();
    }
  });
});

describe('EIO3: the buffered-bytes cap', { skip: referenceSkip('--max-buffered-bytes is a sioc flag') }, () => {
  let server;
  before(async () => {
    server = await startEioEcho(['--allow-eio3', '--max-buffered-bytes', '4000']);
  });
  after(async () => {
    await server?.stopChecked();
  });

  it('a client that POSTs without ever polling is cut off once its echoes pass the cap', async () => {
    const { sid } = await handshake(server);
    for (let i = 0; i < 5; i++) await sendV3(server, sid, record(`4${'x'.repeat(900)}`));
    await assertSessionGone(server, sid);
  });
});
