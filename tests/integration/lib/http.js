// Raw HTTP/1.1 over `net`: requests are written byte for byte and responses
// parsed by hand, so that tests see exactly what the server sends (and can
// send what no well-behaved client would).
import net from 'node:net';

export const DEFAULT_TIMEOUT_MS = 5000;

export class ClosedError extends Error {
  constructor(what, cause) {
    super(`connection closed while waiting for ${what}${cause ? ` (${cause.code || cause.message})` : ''}`);
    this.name = 'ClosedError';
    this.cause = cause;
  }
}

export class TimeoutError extends Error {
  constructor(what, ms) {
    super(`timed out after ${ms} ms waiting for ${what}`);
    this.name = 'TimeoutError';
  }
}

/**
 * Buffers what a socket receives and lets callers wait for a condition on
 * the bytes not consumed yet. A socket error (ECONNRESET, EPIPE) counts as
 * the end of the stream and is kept in `error`.
 */
export class SocketReader {
  constructor(socket) {
    this.socket = socket;
    this.buf = Buffer.alloc(0);
    this.ended = false;
    this.error = null;
    this.waiters = new Set();
    socket.on('data', (chunk) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
      this.wake();
    });
    const end = () => {
      this.ended = true;
      this.wake();
    };
    socket.on('end', end);
    socket.on('close', end);
    socket.on('error', (err) => {
      this.error ??= err;
      end();
    });
  }

  wake() {
    for (const waiter of [...this.waiters]) waiter();
  }

  /** Remove and return the first `n` buffered bytes. */
  take(n) {
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /**
   * Resolve with the first non-undefined result of `check()`, called now and
   * after each arrival of data; reject with ClosedError if the stream ends
   * first, TimeoutError after `timeoutMs`.
   */
  wait(check, what, timeoutMs = DEFAULT_TIMEOUT_MS) {
    return new Promise((resolve, reject) => {
      let timer = null;
      const done = () => {
        this.waiters.delete(waiter);
        clearTimeout(timer);
      };
      const waiter = () => {
        let result;
        try {
          result = check();
        } catch (err) {
          done();
          reject(err);
          return;
        }
        if (result !== undefined) {
          done();
          resolve(result);
        } else if (this.ended) {
          done();
          reject(new ClosedError(what, this.error));
        }
      };
      timer = setTimeout(() => {
        done();
        reject(new TimeoutError(what, timeoutMs));
      }, timeoutMs);
      this.waiters.add(waiter);
      waiter();
    });
  }

  /** Resolve true once the peer has closed (or reset), false after `timeoutMs`. */
  async waitEnd(timeoutMs = DEFAULT_TIMEOUT_MS) {
    try {
      await this.wait(() => (this.ended ? true : undefined), 'end of stream', timeoutMs);
      return true;
    } catch (err) {
      if (err instanceof ClosedError) return true;
      if (err instanceof TimeoutError) return false;
      throw err;
    }
  }
}

/** Open a TCP connection to 127.0.0.1:`port`. */
export function connect(port, host = '127.0.0.1', timeoutMs = DEFAULT_TIMEOUT_MS) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new TimeoutError(`TCP connect to ${host}:${port}`, timeoutMs));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', reject);
      socket.setNoDelay(true);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** Open a connection and wrap it: { socket, reader, write(bytes), close() }. */
export async function openConnection(port, host = '127.0.0.1') {
  const socket = await connect(port, host);
  const reader = new SocketReader(socket);
  return {
    socket,
    reader,
    write(bytes) {
      // Errors (EPIPE, ECONNRESET) surface through reader.error.
      if (!socket.destroyed) socket.write(bytes, () => {});
    },
    close() {
      socket.destroy();
    },
  };
}

/**
 * Build request bytes. `headers` is an array of [name, value] pairs (or an
 * object) written in order; Host comes first unless given; Content-Length is
 * added for a body unless given.
 */
export function buildRequest({ method = 'GET', path = '/', headers = [], body = null, host = 'localhost' }) {
  const list = Array.isArray(headers) ? [...headers] : Object.entries(headers);
  const has = (name) => list.some(([n]) => n.toLowerCase() === name.toLowerCase());
  if (!has('host')) list.unshift(['Host', host]);
  const bodyBuf = body === null || body === undefined ? null : Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
  if (bodyBuf && !has('content-length') && !has('transfer-encoding')) list.push(['Content-Length', String(bodyBuf.length)]);
  const head = `${method} ${path} HTTP/1.1\r\n${list.map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n`;
  return bodyBuf ? Buffer.concat([Buffer.from(head, 'latin1'), bodyBuf]) : Buffer.from(head, 'latin1');
}

function parseHead(headBuf) {
  const lines = headBuf.toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(lines[0]);
  if (!m) throw new Error(`bad status line ${JSON.stringify(lines[0])}`);
  const headers = new Map();
  const rawHeaders = [];
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error(`bad header line ${JSON.stringify(line)}`);
    const name = line.slice(0, colon);
    const value = line.slice(colon + 1).trim();
    rawHeaders.push([name, value]);
    const key = name.toLowerCase();
    if (!headers.has(key)) headers.set(key, []);
    headers.get(key).push(value);
  }
  return { status: Number(m[1]), statusText: m[2] ?? '', headers, rawHeaders };
}

// Parse a complete chunked body at the start of `buf`: [body, bytesUsed] or undefined.
function parseChunked(buf) {
  const chunks = [];
  let pos = 0;
  for (;;) {
    const eol = buf.indexOf('\r\n', pos, 'latin1');
    if (eol < 0) return undefined;
    const size = parseInt(buf.toString('latin1', pos, eol).split(';')[0], 16);
    if (Number.isNaN(size)) throw new Error('bad chunk size');
    pos = eol + 2;
    if (size === 0) {
      // Trailers (none expected) end with an empty line.
      const end = buf.indexOf('\r\n\r\n', pos - 2, 'latin1');
      if (end < 0) return undefined;
      return [Buffer.concat(chunks), end + 4];
    }
    if (buf.length < pos + size + 2) return undefined;
    chunks.push(buf.subarray(pos, pos + size));
    pos += size + 2;
  }
}

/**
 * Read one response from `reader`. Without a length, the body runs to the end
 * of the stream. No body for HEAD, 1xx, 204 and 304. The bytes after the
 * response stay in the reader (e.g. WebSocket frames after a 101).
 */
export async function readResponse(reader, { method = 'GET', timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
  const deadline = Date.now() + timeoutMs;
  const left = () => Math.max(1, deadline - Date.now());
  const headEnd = await reader.wait(() => {
    const i = reader.buf.indexOf('\r\n\r\n', 0, 'latin1');
    return i >= 0 ? i : undefined;
  }, 'response head', left());
  const head = parseHead(reader.take(headEnd + 4).subarray(0, headEnd));
  const res = {
    ...head,
    header(name) {
      const values = head.headers.get(name.toLowerCase());
      return values ? values.join(', ') : undefined;
    },
    body: Buffer.alloc(0),
  };
  const noBody = method === 'HEAD' || (res.status >= 100 && res.status < 200) || res.status === 204 || res.status === 304;
  if (!noBody) {
    const te = res.header('transfer-encoding');
    const cl = res.header('content-length');
    if (te && /chunked/i.test(te)) {
      const [body, used] = await reader.wait(() => parseChunked(reader.buf), 'chunked body', left());
      reader.take(used);
      res.body = body;
    } else if (cl !== undefined) {
      const n = Number(cl);
      await reader.wait(() => (reader.buf.length >= n ? true : undefined), `body of ${n} bytes`, left());
      res.body = Buffer.from(reader.take(n));
    } else {
      await reader.waitEnd(left());
      res.body = Buffer.from(reader.take(reader.buf.length));
    }
  }
  res.text = res.body.toString('utf8');
  return res;
}

/**
 * One request on a new connection (Connection: close unless headers say
 * otherwise); resolves to the parsed response with `conn` still attached.
 */
export async function request(port, opts) {
  const headers = Array.isArray(opts.headers) ? [...opts.headers] : Object.entries(opts.headers ?? {});
  if (!headers.some(([n]) => n.toLowerCase() === 'connection')) headers.push(['Connection', 'close']);
  const conn = await openConnection(port);
  try {
    conn.write(buildRequest({ ...opts, headers, host: `127.0.0.1:${port}` }));
    const res = await readResponse(conn.reader, { method: opts.method, timeoutMs: opts.timeoutMs });
    res.conn = conn;
    return res;
  } finally {
    if (!opts.keepOpen) conn.close();
  }
}
