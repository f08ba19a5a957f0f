// socket.handshake as Node's socket.io 4.8 on node 20 gives it, read back with the "handshake"
// event of both servers ({headers, query, url}). A header name sent more than once is what
// IncomingMessage._addHeaderLine makes of it: joined with ", " (whatever the case of the name),
// a cookie with "; ", set-cookie an array (even sent once), and the names Node keeps once
// (host, user-agent, authorization, referer, content-type, ...) with their first value.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSiocEcho, RawSession } from '../lib/sio.js';

/** socket.handshake's {headers, query, url} for a session opened with `headers` ([name, value])
 * and extraQuery (raw text after the handshake's query). */
export async function handshakeOf(server, transport, headers, extraQuery = '') {
  const raw = await RawSession.open(server, transport, { headers, extraQuery });
  try {
    await raw.connect('/');
    await raw.send('421["handshake"]');
    for (;;) {
      const text = await raw.nextText();
      if (text.startsWith('31[')) return JSON.parse(text.slice(2))[0];
    }
  } finally {
    raw.stop();
  }
}

// What the transport adds by itself (the WebSocket handshake's own headers, Connection).
const TRANSPORT_HEADERS = new Set(['connection', 'upgrade', 'sec-websocket-key', 'sec-websocket-version']);
const own = (headers) => Object.fromEntries(Object.entries(headers).filter(([name]) => !TRANSPORT_HEADERS.has(name)));

const KEPT_FIRST = ['Host', 'From', 'Age', 'ETag', 'Server', 'Expires', 'Location', 'Retry-After', 'Max-Forwards',
  'Last-Modified', 'If-Modified-Since', 'Proxy-Authorization', 'If-Unmodified-Since', 'Referer', 'User-Agent',
  'Authorization', 'Content-Type'];
const JOINED = ['Date', 'Vary', 'Origin', 'Accept', 'If-Match', 'If-None-Match', 'Cache-Control', 'Accept-Encoding',
  'Accept-Language', 'X-Forwarded-For', 'X-Forwarded-Host', 'X-Forwarded-Proto', 'Content-Encoding', 'Sec-Fetch-Mode',
  'Pragma', 'X-Real-IP', 'X-Custom'];

/** Each name twice (the second time upper-cased), and the special cases after them. */
function twice() {
  const headers = [];
  const expected = {};
  for (const name of [...KEPT_FIRST, ...JOINED]) {
    const key = name.toLowerCase();
    headers.push([name, `${key}-1`], [name.toUpperCase(), `${key}-2`]);
    expected[key] = KEPT_FIRST.includes(name) ? `${key}-1` : `${key}-1, ${key}-2`;
  }
  headers.push(['Cookie', 'a=1'], ['cookie', 'b=2'], ['COOKIE', 'c=3']);
  expected.cookie = 'a=1; b=2; c=3';
  headers.push(['Set-Cookie', 's=1'], ['set-cookie', 's=2']);
  expected['set-cookie'] = ['s=1', 's=2'];
  headers.push(['X-Empty', ''], ['X-Empty', 'v']);
  expected['x-empty'] = ', v';
  headers.push(['X-Latin', 'caf\u00e9'], ['X-Latin', '\u00ff']); // latin1 bytes e9, ff
  expected['x-latin'] = 'caf\u00e9, \u00ff';
  headers.push(['X-Once', 'a']);
  expected['x-once'] = 'a';
  return { headers, expected };
}

describe('socket.handshake.headers: names sent more than once, as Node', () => {
  let server;
  before(async () => {
    server = await startSiocEcho();
  });
  after(async () => {
    await server?.stopChecked();
  });

  for (const transport of ['polling', 'websocket']) {
    it(`${transport}: joined with ", ", cookie with "; ", set-cookie an array, the first value kept for Node's names`, async () => {
      const { headers, expected } = twice();
      const got = await handshakeOf(server, transport, headers);
      assert.deepEqual(own(got.headers), expected);
      // Node's key order: where each name came first.
      assert.deepEqual(Object.keys(own(got.headers)), Object.keys(expected));
    });

    it(`${transport}: set-cookie sent once is an array of one`, async () => {
      const got = await handshakeOf(server, transport, [['Host', 'h.example'], ['Set-Cookie', 'only']]);
      assert.deepEqual(own(got.headers), { host: 'h.example', 'set-cookie': ['only'] });
    });
  }
});
