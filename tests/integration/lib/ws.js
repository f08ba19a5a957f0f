// Minimal raw WebSocket client on `net` for bad-input tests: frames are built
// by hand (mask or not, RSV bits, fragments, control frames, lying lengths)
// and the server's frames are parsed byte for byte.
import crypto from 'node:crypto';
import { openConnection, buildRequest, readResponse, DEFAULT_TIMEOUT_MS } from './http.js';

export const OP = { CONT: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa };

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export function acceptFor(key) {
  return crypto.createHash('sha1').update(key + GUID).digest('base64');
}

/**
 * Encode one frame. `rsv` is the 3-bit RSV1..RSV3 field (4 = RSV1, 2 = RSV2,
 * 1 = RSV3). `length` overrides the advertised payload length (the payload
 * bytes sent are still `payload`).
 */
export function encodeFrame({ fin = true, rsv = 0, opcode, payload = Buffer.alloc(0), mask = true, maskKey, length }) {
  const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'utf8');
  const len = length ?? data.length;
  let head;
  if (len < 126) {
    head = Buffer.alloc(2);
    head[1] = len;
  } else if (len < 0x10000) {
    head = Buffer.alloc(4);
    head[1] = 126;
    head.writeUInt16BE(len, 2);
  } else {
    head = Buffer.alloc(10);
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  head[0] = (fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0x0f);
  if (!mask) return Buffer.concat([head, data]);
  head[1] |= 0x80;
  const key = maskKey ?? crypto.randomBytes(4);
  const masked = Buffer.alloc(data.length);
  for (let i = 0; i < data.length; i++) masked[i] = data[i] ^ key[i & 3];
  return Buffer.concat([head, key, masked]);
}

export function closePayload(code, reason = '') {
  const buf = Buffer.alloc(2 + Buffer.byteLength(reason));
  buf.writeUInt16BE(code, 0);
  buf.write(reason, 2, 'utf8');
  return buf;
}

// Parse one frame at the start of `buf`: { frame, used } or undefined.
export function parseFrame(buf) {
  if (buf.length < 2) return undefined;
  let len = buf[1] & 0x7f;
  let pos = 2;
  if (len === 126) {
    if (buf.length < 4) return undefined;
    len = buf.readUInt16BE(2);
    pos = 4;
  } else if (len === 127) {
    if (buf.length < 10) return undefined;
    const big = buf.readBigUInt64BE(2);
    if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error('server frame length too large');
    len = Number(big);
    pos = 10;
  }
  const masked = (buf[1] & 0x80) !== 0;
  let key = null;
  if (masked) {
    if (buf.length < pos + 4) return undefined;
    key = buf.subarray(pos, pos + 4);
    pos += 4;
  }
  if (buf.length < pos + len) return undefined;
  const payload = Buffer.from(buf.subarray(pos, pos + len));
  if (key) for (let i = 0; i < payload.length; i++) payload[i] ^= key[i & 3];
  const frame = {
    fin: (buf[0] & 0x80) !== 0,
    rsv: (buf[0] >> 4) & 7,
    opcode: buf[0] & 0x0f,
    masked,
    payload,
    raw: Buffer.from(buf.subarray(0, pos + len)),
  };
  if (frame.opcode === OP.CLOSE) {
    frame.code = payload.length >= 2 ? payload.readUInt16BE(0) : null;
    frame.reason = payload.length > 2 ? payload.subarray(2).toString('utf8') : '';
  }
  if (frame.opcode === OP.TEXT) frame.text = payload.toString('utf8');
  return { frame, used: pos + len };
}

/** A raw WebSocket connection after a 101 (or the failed attempt). */
export class RawWebSocket {
  constructor(conn, response) {
    this.conn = conn;
    this.reader = conn.reader;
    this.response = response;
  }

  get socket() {
    return this.conn.socket;
  }

  send(bytes) {
    this.conn.write(bytes);
  }

  sendFrame(opts) {
    this.send(encodeFrame(opts));
  }

  sendText(text) {
    this.sendFrame({ opcode: OP.TEXT, payload: Buffer.from(text, 'utf8') });
  }

  sendBinary(buf) {
    this.sendFrame({ opcode: OP.BINARY, payload: buf });
  }

  sendClose(code, reason) {
    const payload = code === undefined ? Buffer.alloc(0) : closePayload(code, reason);
    this.sendFrame({ opcode: OP.CLOSE, payload });
  }

  /** Next frame from the server (rejects on close or timeout). */
  async readFrame(timeoutMs = DEFAULT_TIMEOUT_MS) {
    const { frame, used } = await this.reader.wait(() => parseFrame(this.reader.buf), 'a WebSocket frame', timeoutMs);
    this.reader.take(used);
    return frame;
  }

  /** Read frames until one satisfies `predicate`; returns it. */
  async readUntil(predicate, what, timeoutMs = DEFAULT_TIMEOUT_MS) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      const frame = await this.readFrame(left);
      if (predicate(frame)) return frame;
    }
  }

  /** Next text frame whose text is not an Engine.IO ping ("2"), answering pings with "3". */
  async readText(timeoutMs = DEFAULT_TIMEOUT_MS) {
    return this.readUntil((f) => {
      if (f.opcode === OP.TEXT && f.text === '2') {
        this.sendText('3');
        return false;
      }
      if (f.opcode === OP.CLOSE) throw new Error(`server closed the WebSocket (code ${f.code}) while a message was expected`);
      return f.opcode === OP.TEXT || f.opcode === OP.BINARY;
    }, 'a data frame', timeoutMs);
  }

  /**
   * Skip data frames until the server's close frame; resolves to it, or to
   * null when the TCP connection ends without one.
   */
  async readClose(timeoutMs = DEFAULT_TIMEOUT_MS) {
    try {
      return await this.readUntil((f) => f.opcode === OP.CLOSE, 'a close frame', timeoutMs);
    } catch (err) {
      if (err.name === 'ClosedError') return null;
      throw err;
    }
  }

  waitEnd(timeoutMs = DEFAULT_TIMEOUT_MS) {
    return this.reader.waitEnd(timeoutMs);
  }

  close() {
    this.conn.close();
  }
}

/**
 * Send an upgrade request for `path` and read the response head.
 * opts.headers: extra [name, value] pairs; opts.omit: names of default
 * headers to leave out; opts.key / opts.version override; opts.extra: bytes
 * sent in the same write right after the request head. Resolves to a
 * RawWebSocket whatever the status (check ws.response.status); the accept
 * value is checked for a 101.
 */
export async function wsConnect(port, path, opts = {}) {
  const key = opts.key ?? crypto.randomBytes(16).toString('base64');
  const omit = new Set((opts.omit ?? []).map((n) => n.toLowerCase()));
  const headers = [
    ['Connection', 'Upgrade'],
    ['Upgrade', 'websocket'],
    ['Sec-WebSocket-Version', String(opts.version ?? 13)],
    ['Sec-WebSocket-Key', key],
  ].filter(([n]) => !omit.has(n.toLowerCase()));
  headers.push(...(opts.headers ?? []));
  const conn = await openConnection(port);
  const head = buildRequest({ method: 'GET', path, headers, host: `127.0.0.1:${port}` });
  conn.write(opts.extra ? Buffer.concat([head, opts.extra]) : head);
  let response;
  try {
    response = await readResponse(conn.reader, { timeoutMs: opts.timeoutMs });
  } catch (err) {
    conn.close();
    throw err;
  }
  if (response.status === 101) {
    const accept = response.header('sec-websocket-accept');
    if (accept !== acceptFor(key)) {
      conn.close();
      throw new Error(`bad Sec-WebSocket-Accept ${accept}, want ${acceptFor(key)}`);
    }
  }
  return new RawWebSocket(conn, response);
}
