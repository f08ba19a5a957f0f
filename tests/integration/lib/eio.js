// Engine.IO v4 helpers on top of the raw HTTP and WebSocket clients.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { request } from './http.js';
import { wsConnect, OP } from './ws.js';

export const SEP = '\x1e';
export const EIO_PATH = '/engine.io/';

/** `/engine.io/?EIO=4&transport=polling&sid=...` from a query object (in order). */
export function eioPath(query = {}, path = EIO_PATH) {
  const q = { EIO: '4', transport: 'polling', ...query };
  const parts = Object.entries(q)
    .filter(([, v]) => v !== undefined && v !== null)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  return `${path}?${parts.join('&')}`;
}

/** Split a polling payload into packets { type, data } (binary: type 'b', data Buffer). */
export function decodePayload(text) {
  if (text === '') return [];
  return text.split(SEP).map((p) => {
    if (p[0] === 'b') return { type: 'b', data: Buffer.from(p.slice(1), 'base64') };
    return { type: p[0], data: p.slice(1) };
  });
}

/** Parse and check an open packet (`0{...}`); returns the handshake object. */
export function parseOpenPacket(text) {
  assert.equal(text[0], '0', `open packet must start with 0, got ${JSON.stringify(text.slice(0, 40))}`);
  return JSON.parse(text.slice(1));
}

export async function get(server, query, opts = {}) {
  return request(server.port, { method: 'GET', path: eioPath(query), ...opts });
}

export async function post(server, query, body, opts = {}) {
  const headers = opts.headers ?? [['Content-Type', 'text/plain;charset=UTF-8']];
  return request(server.port, { method: 'POST', path: eioPath(query), body, ...opts, headers });
}

/** Polling handshake; resolves to { sid, open, res }. */
export async function handshake(server, opts = {}) {
  const res = await get(server, opts.query ?? {}, opts);
  assert.equal(res.status, 200, `handshake status ${res.status}: ${res.text}`);
  const open = parseOpenPacket(res.text);
  return { sid: open.sid, open, res };
}

/** Long-poll once for `sid`. */
export function poll(server, sid, opts = {}) {
  return get(server, { sid }, opts);
}

/** POST `body` (payload string or Buffer) for `sid`; asserts 200 ok. */
export async function send(server, sid, body, opts = {}) {
  const res = await post(server, { sid }, body, opts);
  assert.equal(res.status, 200, `POST status ${res.status}: ${res.text}`);
  assert.equal(res.text, 'ok');
  return res;
}

/**
 * Poll until `count` message/binary packets arrived (answering pings,
 * skipping noops); bounded by `timeoutMs` overall. Returns the packets.
 */
export async function pollMessages(server, sid, count, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  const messages = [];
  while (messages.length < count) {
    const left = deadline - Date.now();
    assert.ok(left > 0, `only ${messages.length} of ${count} messages within ${timeoutMs} ms`);
    const res = await poll(server, sid, { timeoutMs: left });
    assert.equal(res.status, 200, `GET status ${res.status}: ${res.text}`);
    for (const p of decodePayload(res.text)) {
      if (p.type === '2') await send(server, sid, '3');
      else if (p.type === '4' || p.type === 'b') messages.push(p);
      else if (p.type === '1') assert.fail('session closed by the server while polling');
    }
  }
  return messages;
}

/** Assert an Engine.IO HTTP error response: 400 (403 for code 4), JSON body exactly. */
export function assertHttpError(res, code, message) {
  assert.equal(res.status, code === 4 ? 403 : 400, `status for code ${code} (body ${res.text})`);
  assert.equal(res.header('content-type'), 'application/json');
  assert.deepEqual(JSON.parse(res.text), { code, message });
  assert.equal(res.text, JSON.stringify({ code, message }));
}

/**
 * Wait until `sid` is unknown to the server (GET → 400 code 1), polling every
 * 100 ms for at most `timeoutMs`. Pending GETs may first get a close packet.
 */
export async function assertSessionGone(server, sid, timeoutMs = 3000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    const left = deadline - Date.now();
    assert.ok(left > 0, `session ${sid} still known after ${timeoutMs} ms (last: ${last})`);
    const res = await get(server, { sid }, { timeoutMs: left });
    last = `${res.status} ${res.text}`;
    if (res.status === 400 && res.text.includes('"code":1')) {
      assertHttpError(res, 1, 'Session ID unknown');
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Open an Engine.IO WebSocket (raw). Without sid, reads and checks the open packet. */
export async function wsOpen(server, { sid, headers } = {}) {
  const ws = await wsConnect(server.port, eioPath({ transport: 'websocket', sid }), { headers });
  assert.equal(ws.response.status, 101, `WebSocket handshake status ${ws.response.status}: ${ws.response.text}`);
  if (!sid) {
    const frame = await ws.readFrame();
    assert.equal(frame.opcode, OP.TEXT);
    ws.open = parseOpenPacket(frame.text);
  }
  return ws;
}

/**
 * A brand-new client still works: polling handshake, text + binary echo
 * (or a WebSocket session when `transport` is 'websocket'), and the server
 * process is still running.
 */
export async function assertAlive(server, transport = 'polling') {
  assert.ok(server.alive, `server is not running: ${server.describeExit()}`);
  const token = crypto.randomBytes(6).toString('hex');
  const bin = crypto.randomBytes(9);
  if (transport === 'websocket') {
    const ws = await wsOpen(server);
    try {
      ws.sendText(`4alive-${token}`);
      assert.equal((await ws.readText()).text, `4alive-${token}`);
      ws.sendBinary(bin);
      const frame = await ws.readText();
      assert.equal(frame.opcode, OP.BINARY);
      assert.deepEqual(frame.payload, bin);
    } finally {
      ws.close();
    }
  } else {
    const { sid } = await handshake(server);
    await send(server, sid, `4alive-${token}${SEP}b${bin.toString('base64')}`);
    const msgs = await pollMessages(server, sid, 2);
    assert.deepEqual(msgs[0], { type: '4', data: `alive-${token}` });
    assert.equal(msgs[1].type, 'b');
    assert.deepEqual(msgs[1].data, bin);
    await send(server, sid, '1');
  }
  assert.ok(server.alive, `server died: ${server.describeExit()}`);
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
