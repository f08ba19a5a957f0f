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

describe('socket.handshake as Node', () => {
  let server;
  before(async () => {
    server = await startSiocEcho();
  });
  after(async () => {
    await server?.stopChecked();
  });

  describe('headers: names sent more than once', () => {
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

  // socket.handshake.query is engine.io's req._query: Object.fromEntries(new URL(req.url,
  // base).searchParams) (engine.io 6.6 server.js prepare()). Each answer below is node 20's for the
  // same target. URLSearchParams: '+' is a space, a '%' without two hex digits stays, the decoded
  // bytes are read as UTF-8 with one U+FFFD per maximal invalid subpart, a name without '=' gives
  // "", '&&' is no pair, a repeated name keeps its last value (where it came first); the query ends
  // at '#'. A JS object lists array-index names first, ascending, and so does the JSON sent.
  const FFFD = '\ufffd';
  const QUERIES = [
    ['&a=1&a=2', { a: '2' }],
    ['&a=1&b=2&a=3', { a: '3', b: '2' }],
    ['&b=x+y&a+b=c+d', { b: 'x y', 'a b': 'c d' }],
    ['&v=%2B+%25', { v: '+ %' }],
    ['&c=%', { c: '%' }],
    ['&d=%G1&o=%4', { d: '%G1', o: '%4' }],
    ['&%=%%%', { '%': '%%%' }],
    ['&e=%C3', { e: FFFD }],
    ['&l=%E2%82&s=%F0%9F%98', { l: FFFD, s: FFFD }],
    ['&f=%C0%AF', { f: FFFD.repeat(2) }],
    ['&g=%ED%A0%80', { g: FFFD.repeat(3) }],
    ['&t=%F4%90%80%80', { t: FFFD.repeat(4) }],
    ['&r=%FF%FE&z=%80%BF', { r: FFFD.repeat(2), z: FFFD.repeat(2) }],
    ['&w=%E0%80%80%E0%A0%80', { w: `${FFFD.repeat(3)}\u0800` }],
    ['&x=%F0%80%80%80%F0%90%80%80', { x: `${FFFD.repeat(4)}\u{10000}` }],
    ['&m=%F0%9F%98%80&p=%e2%82%ac&u=caf%C3%A9%zz', { m: '\u{1f600}', p: '\u20ac', u: 'caf\u00e9%zz' }],
    ['&h=%00&%00=k', { h: '\u0000', '\u0000': 'k' }],
    ['&i', { i: '' }],
    ['&&&k=1&', { k: '1' }],
    ['&=x', { '': 'x' }],
    ['&k=a=b=c', { k: 'a=b=c' }],
    ['&n%20x=1', { 'n x': '1' }],
    ['&__proto__=1', { ['__proto__']: '1' }],
    ['&10=a&2=b&z=c', { 2: 'b', 10: 'a', z: 'c' }],
    ['&01=a&4294967294=b&4294967295=c&0=d&-1=e', { 0: 'd', 4294967294: 'b', '01': 'a', 4294967295: 'c', '-1': 'e' }],
    ['#frag&q=1', {}],
    ['&q=1#?r=2', { q: '1' }],
    [`&${'k'.repeat(6000)}=${'v'.repeat(6000)}`, { ['k'.repeat(6000)]: 'v'.repeat(6000) }],
  ];

  /** The handshake answer's text as it came (the "31[...]" packet). */
  async function handshakeTextOf(server, transport, extraQuery) {
    const raw = await RawSession.open(server, transport, { extraQuery });
    try {
      await raw.connect('/');
      await raw.send('421["handshake"]');
      for (;;) {
        const text = await raw.nextText();
        if (text.startsWith('31[')) return text;
      }
    } finally {
      raw.stop();
    }
  }

  describe('query: URLSearchParams into an object', () => {
    for (const transport of ['polling', 'websocket']) {
      it(`${transport}: every name and value as node 20 decodes it, the JSON's bytes as Node's`, async () => {
        for (const [extra, rest] of QUERIES) {
          // A fresh object: '__proto__' as an own name, in JS order.
          const expected = Object.fromEntries([['EIO', '4'], ['transport', transport], ...Object.entries(rest)]);
          const text = await handshakeTextOf(server, transport, extra);
          const { query } = JSON.parse(text.slice(2))[0];
          const short = extra.length > 60 ? `${extra.slice(0, 60)}...` : extra;
          assert.deepEqual(query, expected, short);
          assert.ok(text.includes(`"query":${JSON.stringify(expected)},`), `${short}: ${text.slice(0, 300)}`);
        }
      });

      it(`${transport}: 1,000 pairs, every one kept`, async () => {
        const pairs = Array.from({ length: 1000 }, (_, i) => `p${i}=${i}`);
        const got = await handshakeOf(server, transport, [], `&${pairs.join('&')}`);
        const expected = { EIO: '4', transport };
        for (let i = 0; i < 1000; i++) expected[`p${i}`] = String(i);
        assert.deepEqual(got.query, expected);
        assert.deepEqual(Object.keys(got.query), Object.keys(expected));
      });
    }
  });
});
