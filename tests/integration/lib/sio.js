// Socket.IO helpers for sio/*.test.js: start the server under test
// (SIOC_ECHO), socket.io-client connections with an event inbox, and raw
// Engine.IO sessions (polling or WebSocket) on /socket.io/ for bad-input
// tests. Built on the Engine.IO helpers (server.js, http.js, ws.js, eio.js),
// which are not changed.
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Manager } from 'socket.io-client';
import { startServer, splitCommand } from './server.js';
import { openConnection, buildRequest, readResponse, request, TimeoutError, ClosedError } from './http.js';
import { wsConnect, OP } from './ws.js';
import { eioPath, decodePayload, parseOpenPacket, SEP, sleep } from './eio.js';
import { MODES } from './client.js';

export { MODES, sleep, SEP };

const here = path.dirname(fileURLToPath(import.meta.url));
export const REF_SIOC_ECHO = path.resolve(here, '../ref/sioc-echo.js');
export const SIO_PATH = '/socket.io/';

/** The Socket.IO echo server command (SIOC_ECHO, else the Node reference), as argv. */
export function siocEchoCommand() {
  const line = process.env.SIOC_ECHO;
  if (line && line.trim()) return splitCommand(line.trim());
  return [process.execPath, REF_SIOC_ECHO];
}

/** True when the server under test is ref/sioc-echo.js (SIOC_ECHO_IS_REFERENCE=1/0 overrides). */
export function isSioReference() {
  const forced = process.env.SIOC_ECHO_IS_REFERENCE;
  if (forced === '1') return true;
  if (forced === '0') return false;
  return siocEchoCommand().some((word) => path.resolve(word) === REF_SIOC_ECHO);
}

/** Start the Socket.IO echo server under test with `flags`. */
export function startSiocEcho(flags = []) {
  return startServer(siocEchoCommand(), flags);
}

/** Bytes of a Buffer / ArrayBuffer / typed array as a Buffer (for comparisons). */
export function toBuffer(x) {
  if (Buffer.isBuffer(x)) return x;
  if (x instanceof ArrayBuffer) return Buffer.from(x);
  if (ArrayBuffer.isView(x)) return Buffer.from(x.buffer, x.byteOffset, x.byteLength);
  throw new Error(`not binary: ${Object.prototype.toString.call(x)}`);
}

/** Deep copy with every binary value turned into a Buffer (so deepEqual compares bytes). */
export function normalizeBinary(value) {
  if (value instanceof ArrayBuffer || ArrayBuffer.isView(value)) return Buffer.from(toBuffer(value));
  if (Array.isArray(value)) return value.map(normalizeBinary);
  if (value && typeof value === 'object') {
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = normalizeBinary(v);
    return out;
  }
  return value;
}

// ---------------------------------------------------------------------------
// socket.io-client with an inbox

/**
 * Records what a socket.io-client Socket receives: every event (via onAny,
 * as [event, ...args] — a trailing ack function is kept) plus the reserved
 * `connect`, `disconnect` and `connect_error` events.
 */
export class Inbox {
  constructor(socket) {
    this.socket = socket;
    this.items = [];
    this.waiters = new Set();
    socket.onAny((...args) => this.push(args));
    socket.on('connect', () => this.push(['connect']));
    socket.on('disconnect', (reason, details) => this.push(['disconnect', reason, details]));
    socket.on('connect_error', (err) => this.push(['connect_error', err]));
  }

  push(item) {
    this.items.push(item);
    for (const w of [...this.waiters]) w();
  }

  /** Names of the recorded events so far (not consumed). */
  names() {
    return this.items.map((i) => i[0]);
  }

  /**
   * Remove and return the args (without the name) of the first recorded
   * `event`, waiting up to `timeoutMs` for it.
   */
  take(event, timeoutMs = 5000) {
    return this.takeMatching(event, () => true, timeoutMs);
  }

  /** Like take(), for the first `event` whose args satisfy `predicate(args)`. */
  takeMatching(event, predicate, timeoutMs = 5000) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const i = this.items.findIndex((it) => it[0] === event && predicate(it.slice(1)));
        if (i < 0) return false;
        const [item] = this.items.splice(i, 1);
        done();
        resolve(item.slice(1));
        return true;
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no "${event}" event within ${timeoutMs} ms (got: ${JSON.stringify(this.names())})`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Take `n` events named `event`, in order. */
  async takeN(event, n, timeoutMs = 5000) {
    const deadline = Date.now() + timeoutMs;
    const out = [];
    for (let i = 0; i < n; i++) out.push(await this.take(event, Math.max(1, deadline - Date.now())));
    return out;
  }

  /** Assert that no `event` is recorded within `ms` (and none is pending). */
  async none(event, ms = 300) {
    await sleep(ms);
    const got = this.items.filter((it) => it[0] === event);
    assert.equal(got.length, 0, `unexpected "${event}" events: ${JSON.stringify(got.map((g) => g.slice(1)))}`);
  }

  count(event) {
    return this.items.filter((it) => it[0] === event).length;
  }
}

/**
 * Tracks the managers / sockets / raw sessions a test opens and closes them
 * all in `close()`; with a node:test context, `close` runs after the test
 * whatever its outcome.
 */
export class Clients {
  constructor(server, t) {
    this.server = server;
    this.managers = [];
    this.raws = [];
    if (t) t.after(() => this.close());
  }

  get url() {
    return `http://127.0.0.1:${this.server.port}`;
  }

  /** A new Manager (own Engine.IO connection) in `mode` (MODES key). reconnection off unless given. */
  manager(mode, opts = {}) {
    const m = new Manager(this.url, { ...MODES[mode], reconnection: false, timeout: 5000, ...opts });
    this.managers.push(m);
    return m;
  }

  /** A Socket of `manager` for `nsp` with an `inbox`; not awaited. */
  socket(manager, nsp = '/', opts = {}) {
    const socket = manager.socket(nsp, opts);
    socket.inbox = new Inbox(socket);
    return socket;
  }

  /**
   * Connect a socket (new manager unless opts.manager) to `nsp`; resolves
   * once connected (rejects on connect_error / timeout).
   */
  async connect(mode, nsp = '/', { manager, managerOpts, ...socketOpts } = {}) {
    const m = manager ?? this.manager(mode, managerOpts);
    const socket = this.socket(m, nsp, socketOpts);
    await connected(socket);
    return socket;
  }

  /** Open a raw Engine.IO session on /socket.io/ (`polling` or `websocket`). */
  async raw(transport, opts = {}) {
    const session = await RawSession.open(this.server, transport, opts);
    this.raws.push(session);
    return session;
  }

  close() {
    for (const m of this.managers) {
      try {
        for (const s of Object.values(m.nsps ?? {})) s.disconnect();
        m._close?.();
        m.engine?.close();
      } catch {
        // already closed
      }
    }
    for (const r of this.raws) r.stop();
    this.managers = [];
    this.raws = [];
  }
}

/** Resolve once `socket` is connected; reject with the connect_error (or after `timeoutMs`). */
export function connected(socket, timeoutMs = 5000) {
  if (socket.connected) return Promise.resolve(socket);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`socket ${socket.nsp} not connected within ${timeoutMs} ms`));
    }, timeoutMs);
    const onConnect = () => {
      cleanup();
      resolve(socket);
    };
    const onError = (err) => {
      cleanup();
      reject(err);
    };
    const cleanup = () => {
      clearTimeout(timer);
      socket.off('connect', onConnect);
      socket.off('connect_error', onError);
    };
    socket.on('connect', onConnect);
    socket.on('connect_error', onError);
  });
}

/** Resolve with the connect_error of `socket` (rejects if it connects instead). */
export function connectError(socket, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no connect_error for ${socket.nsp} within ${timeoutMs} ms`));
    }, timeoutMs);
    const onConnect = () => {
      cleanup();
      reject(new Error(`${socket.nsp} connected, a connect_error was expected`));
    };
    const onError = (err) => {
      cleanup();
      resolve(err);
    };
    const cleanup = () => {
      clearTimeout(timer);
      socket.off('connect', onConnect);
      socket.off('connect_error', onError);
    };
    socket.on('connect', onConnect);
    socket.on('connect_error', onError);
  });
}

/** emitWithAck bounded by 5 s (socket.timeout): resolves with the ack's first argument. */
export function ask(socket, event, ...args) {
  return socket.timeout(5000).emitWithAck(event, ...args);
}

/** emit with an ack callback; resolves with all the ack's arguments (bounded). */
export function askAll(socket, event, ...args) {
  return new Promise((resolve, reject) => {
    socket.timeout(5000).emit(event, ...args, (err, ...resp) => (err ? reject(err) : resolve(resp)));
  });
}

/** Wait for `predicate()` (or the promise it returns) to be true, checking every 20 ms, at most `timeoutMs`. */
export async function until(predicate, what, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

let dynamicCounter = 0;
/** A fresh dynamic namespace name (`/dynamic-<n>`), unique in this process. */
export function freshNamespace() {
  dynamicCounter++;
  return `/dynamic-${process.pid}${String(dynamicCounter).padStart(4, '0')}`;
}

// ---------------------------------------------------------------------------
// Raw Engine.IO sessions on /socket.io/

/** `/socket.io/?EIO=4&transport=...&sid=...` */
export function sioPath(query = {}) {
  return eioPath(query, SIO_PATH);
}

/** Engine.IO payload text for polling: strings as they are, Buffers as `b<base64>`. */
export function encodePollingPayload(packets) {
  return packets.map((p) => (Buffer.isBuffer(p) ? `b${p.toString('base64')}` : p)).join(SEP);
}

/** JSON text of a Socket.IO CONNECT reply for `nsp`, or null. */
export function parseConnect(text, nsp = '/') {
  const prefix = nsp === '/' ? '0' : `0${nsp},`;
  if (!text.startsWith(prefix)) return null;
  return JSON.parse(text.slice(prefix.length));
}

/**
 * A raw Engine.IO v4 session on /socket.io/ over polling or WebSocket.
 * A background reader answers pings ("2" → "3")
 * (unless opened with autoPong: false; `pings` counts them), drops noops and
 * queues the other packets: { type: '4', data: <text after the 4> } for text messages,
 * { type: 'b', data: Buffer } for binary ones. When the server ends the
 * session, `closed` holds how: { how: 'close-packet' } (polling `1`),
 * { how: 'close-frame', code } (WebSocket close frame), { how: 'eof' }
 * (TCP end without a close frame), { how: 'http', status, text } (a GET
 * answered with an error status).
 */
export class RawSession {
  // extraQuery: raw text appended to the handshake's query ("&k=v", sent as it is).
  static async open(server, transport, { headers, autoPong = true, extraQuery = '' } = {}) {
    const s = new RawSession(server, transport);
    s.autoPong = autoPong;
    if (transport === 'websocket') {
      const ws = await wsConnect(server.port, sioPath({ transport: 'websocket' }) + extraQuery, { headers });
      assert.equal(ws.response.status, 101, `WebSocket handshake status ${ws.response.status}: ${ws.response.text}`);
      const frame = await ws.readFrame();
      assert.equal(frame.opcode, OP.TEXT);
      s.ws = ws;
      s.handshake = parseOpenPacket(frame.text);
    } else {
      const res = await request(server.port, { method: 'GET', path: sioPath() + extraQuery, headers });
      assert.equal(res.status, 200, `handshake status ${res.status}: ${res.text}`);
      s.handshake = parseOpenPacket(res.text);
    }
    s.sid = s.handshake.sid;
    s.openedAt = Date.now();
    s.loop = transport === 'websocket' ? s.wsLoop() : s.pollLoop();
    return s;
  }

  constructor(server, transport) {
    this.server = server;
    this.transport = transport;
    this.queue = [];
    this.waiters = new Set();
    this.closed = null;
    this.closedAt = null;
    this.stopped = false;
    this.getConn = null;
    this.autoPong = true;
    this.pings = 0;
  }

  wake() {
    for (const w of [...this.waiters]) w();
  }

  markClosed(info) {
    if (this.closed) return;
    this.closed = info;
    this.closedAt = Date.now();
    this.wake();
  }

  push(packet) {
    this.queue.push(packet);
    this.wake();
  }

  async pollLoop() {
    while (!this.stopped && !this.closed) {
      let res;
      const conn = await openConnection(this.server.port).catch(() => null);
      if (!conn) {
        if (!this.stopped) this.markClosed({ how: 'eof', detail: 'cannot connect' });
        break;
      }
      this.getConn = conn;
      try {
        conn.write(buildRequest({
          method: 'GET',
          path: sioPath({ sid: this.sid }),
          headers: [['Connection', 'close']],
          host: `127.0.0.1:${this.server.port}`,
        }));
        res = await readResponse(conn.reader, { timeoutMs: 60000 });
      } catch (err) {
        if (!this.stopped) this.markClosed({ how: 'eof', detail: `GET failed: ${err.message}` });
        break;
      } finally {
        conn.close();
        this.getConn = null;
      }
      if (res.status !== 200) {
        this.markClosed({ how: 'http', status: res.status, text: res.text });
        break;
      }
      for (const p of decodePayload(res.text)) {
        if (p.type === '2') {
          this.pings++;
          if (this.autoPong) this.sendPacketsNow(['3']).catch(() => {});
        } else if (p.type === '6') continue;
        else if (p.type === '1') this.markClosed({ how: 'close-packet' });
        else this.push(p);
      }
    }
  }

  async wsLoop() {
    while (!this.stopped && !this.closed) {
      let frame;
      try {
        frame = await this.ws.readFrame(1000);
      } catch (err) {
        if (err instanceof TimeoutError) continue;
        if (!this.stopped) this.markClosed({ how: 'eof', detail: err.message });
        break;
      }
      if (frame.opcode === OP.TEXT) {
        if (frame.text === '2') {
          this.pings++;
          if (this.autoPong) this.ws.sendText('3');
        } else if (frame.text === '6') continue;
        else if (frame.text === '1') this.markClosed({ how: 'close-packet' });
        else this.push({ type: frame.text[0], data: frame.text.slice(1) });
      } else if (frame.opcode === OP.BINARY) {
        this.push({ type: 'b', data: frame.payload });
      } else if (frame.opcode === OP.CLOSE) {
        this.markClosed({ how: 'close-frame', code: frame.code, reason: frame.reason });
        break;
      } else if (frame.opcode === OP.PING) {
        this.ws.sendFrame({ opcode: OP.PONG, payload: frame.payload });
      }
    }
  }

  // Polling: one POST with all packets. Resolves to { status, text } or
  // { status: null, error } when the server drops the request unanswered.
  async sendPacketsNow(packets) {
    try {
      const res = await request(this.server.port, {
        method: 'POST',
        path: sioPath({ sid: this.sid }),
        headers: [['Content-Type', 'text/plain;charset=UTF-8']],
        body: encodePollingPayload(packets),
      });
      return { status: res.status, text: res.text };
    } catch (err) {
      return { status: null, error: err };
    }
  }

  /**
   * Send Engine.IO packets (strings like `42["x"]`, Buffers for binary
   * messages). Polling: one POST carrying them all, resolves to its outcome
   * ({status, text} or {status: null, error}); WebSocket: one frame each.
   */
  async send(...packets) {
    if (this.transport === 'websocket') {
      for (const p of packets) {
        if (Buffer.isBuffer(p)) this.ws.sendBinary(p);
        else this.ws.sendText(p);
      }
      return { status: 'sent' };
    }
    return this.sendPacketsNow(packets);
  }

  /** Next queued packet ({type, data}); rejects when the session closes first or after `timeoutMs`. */
  next(timeoutMs = 5000) {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.queue.length) {
          done();
          resolve(this.queue.shift());
        } else if (this.closed) {
          done();
          reject(new Error(`session closed (${JSON.stringify(this.closed)}) while a packet was expected`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no packet within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Next text message (Socket.IO packet text, without the Engine.IO `4`). */
  async nextText(timeoutMs = 5000) {
    const p = await this.next(timeoutMs);
    assert.equal(p.type, '4', `expected a text message, got ${JSON.stringify(p)}`);
    return p.data;
  }

  /** Next binary message (Buffer). */
  async nextBinary(timeoutMs = 5000) {
    const p = await this.next(timeoutMs);
    assert.equal(p.type, 'b', `expected a binary message, got ${JSON.stringify(p)}`);
    return p.data;
  }

  /** Resolve with `closed` once the session ends; rejects after `timeoutMs`. */
  waitClosed(timeoutMs = 5000) {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.closed) {
          done();
          resolve(this.closed);
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`session not closed within ${timeoutMs} ms (queued: ${JSON.stringify(this.queue)})`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Assert nothing arrives and the session stays open for `ms`. */
  async assertQuiet(ms = 300) {
    await sleep(ms);
    assert.equal(this.closed, null, `session closed: ${JSON.stringify(this.closed)}`);
    assert.deepEqual(this.queue, [], 'unexpected packets');
  }

  /** Send a Socket.IO CONNECT for `nsp` (with `auth`) and return the reply's JSON ({sid, ...}). */
  async connect(nsp = '/', auth) {
    const prefix = nsp === '/' ? '40' : `40${nsp},`;
    await this.send(prefix + (auth === undefined ? '' : JSON.stringify(auth)));
    const text = await this.nextText();
    const data = parseConnect(text, nsp);
    assert.ok(data, `expected a CONNECT reply for ${nsp}, got ${JSON.stringify(text)}`);
    return data;
  }

  /** After a close: polling GETs with this sid get 400 {"code":1,"message":"Session ID unknown"}. */
  async assertGone(timeoutMs = 3000) {
    if (this.transport !== 'polling') return;
    const deadline = Date.now() + timeoutMs;
    let last;
    for (;;) {
      const res = await request(this.server.port, { method: 'GET', path: sioPath({ sid: this.sid }), timeoutMs: Math.max(1, deadline - Date.now()) });
      last = `${res.status} ${res.text}`;
      if (res.status === 400) {
        assert.equal(res.text, '{"code":1,"message":"Session ID unknown"}');
        return;
      }
      assert.ok(Date.now() < deadline, `session ${this.sid} still known after ${timeoutMs} ms (last: ${last})`);
      await sleep(100);
    }
  }

  /**
   * Stop reading and drop the connection. A polling session still open is
   * ended with a close packet (best effort) so that the server forgets it;
   * a WebSocket session is just dropped (TCP).
   */
  stop() {
    const wasOpen = !this.stopped && !this.closed;
    this.stopped = true;
    if (this.ws) this.ws.close();
    if (this.getConn) this.getConn.close();
    if (wasOpen && this.transport === 'polling' && this.sid) this.sendPacketsNow(['1']).catch(() => {});
  }
}

export { ClosedError, TimeoutError };
