// Issue 15: one unauthenticated connection must not crash or exhaust the server. Pipelined
// requests, NUL bytes in query values, request smuggling (Node's answers: 400 and close), the
// three floods (memory bounded by --max-buffered-bytes) and a bounded SIGTERM shutdown.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { startEioEcho, referenceSkip } from '../lib/server.js';
import { openConnection, buildRequest, readResponse } from '../lib/http.js';
import { eioPath, handshake, get, assertHttpError, assertAlive, wsOpen } from '../lib/eio.js';
import { wsConnect } from '../lib/ws.js';
import { pipelinedRequests, pipelinedRequestsFlood, pingFlood, pipelinedNoReadFlood, isSanitized } from '../lib/floods.js';

const HANDSHAKE = eioPath({ transport: 'polling' });
const SMUGGLED = `GET ${HANDSHAKE} HTTP/1.1\r\nHost: x\r\n\r\n`;

/** Writes raw bytes, collects everything until the server closes (or 3 s). */
async function exchange(port, bytes) {
  const conn = await openConnection(port);
  try {
    conn.write(Buffer.from(bytes, 'latin1'));
    const closed = await conn.reader.waitEnd(3000);
    return { text: conn.reader.buf.toString('latin1'), closed };
  } finally {
    conn.close();
  }
}

// 27 bytes: a 64 KiB read holds 2,427 of them (the crash needed about 2,300 in one read).
const TINY = Buffer.from('GET /e/ HTTP/1.1\r\nHost:\r\n\r\n');

describe('pipelining', () => {
  let server;
  before(async () => {
    server = await startEioEcho(['--path', '/e/']);
  });
  after(async () => {
    await server?.stopChecked();
  });

  it('one write of 20,000 tiny pipelined requests (540 KB) is answered in full', async () => {
    const { answered } = await pipelinedRequests(server.port, { count: 20_000, request: TINY });
    assert.equal(answered, 20_000);
    assert.ok(server.alive, server.describeExit());
  });

  it('pipelined handshakes each get their own session, in order', async () => {
    const conn = await openConnection(server.port);
    try {
      const one = buildRequest({ path: eioPath({}, '/e/'), host: `127.0.0.1:${server.port}` });
      conn.write(Buffer.concat(Array.from({ length: 100 }, () => one)));
      const sids = new Set();
      for (let i = 0; i < 100; i++) {
        const res = await readResponse(conn.reader);
        assert.equal(res.status, 200);
        sids.add(JSON.parse(res.text.slice(1)).sid);
      }
      assert.equal(sids.size, 100);
    } finally {
      conn.close();
    }
  });
});

describe('NUL bytes in query values (Node compares JavaScript strings)', () => {
  let server;
  before(async () => {
    server = await startEioEcho();
  });
  after(async () => {
    await server?.stopChecked();
  });

  it('transport=polling%00junk → 400 {"code":0,"message":"Transport unknown"}', async () => {
    const res = await get(server, {}, { path: '/engine.io/?EIO=4&transport=polling%00junk' });
    assertHttpError(res, 0, 'Transport unknown');
  });

  it('transport=websocket%00junk on an upgrade → 400 Transport unknown, closed, no 101', async () => {
    const ws = await wsConnect(server.port, '/engine.io/?EIO=4&transport=websocket%00junk');
    try {
      assert.equal(ws.response.status, 400);
      assert.equal(ws.response.text, 'Transport unknown');
      assert.ok(await ws.waitEnd(3000));
    } finally {
      ws.close();
    }
  });

  it('sid=<sid>%00junk → 400 {"code":1,"message":"Session ID unknown"}', async () => {
    const { sid } = await handshake(server);
    const res = await get(server, {}, { path: `/engine.io/?EIO=4&transport=polling&sid=${sid}%00junk` });
    assertHttpError(res, 1, 'Session ID unknown');
  });

  it('EIO=4%00 → 400 {"code":5,"message":"Unsupported protocol version"}', async () => {
    const res = await get(server, {}, { path: '/engine.io/?EIO=4%00&transport=polling' });
    assertHttpError(res, 5, 'Unsupported protocol version');
  });
});

// Each is a way for a proxy and this server to disagree on where a request ends. Node answers
// 400 and closes (sometimes after answering the head it could read); the request smuggled
// behind is never answered.
const SMUGGLING = {
  'Content-Length and Transfer-Encoding both': `POST ${HANDSHAKE} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
  'two Content-Length headers': `POST ${HANDSHAKE} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n0\r\n\r\n`,
  'two Transfer-Encoding headers': `POST ${HANDSHAKE} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
  'a space before the colon (Transfer-Encoding : chunked)': `POST ${HANDSHAKE} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n`,
  'obs-fold in Transfer-Encoding': `POST ${HANDSHAKE} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n`,
  'obs-fold in another header': `GET ${HANDSHAKE} HTTP/1.1\r\nHost: x\r\nX-Foo: a\r\n b\r\n\r\n`,
  'junk instead of the CRLF after chunk data': `POST ${HANDSHAKE} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXY0\r\n\r\n`,
  'junk after chunk data': `POST ${HANDSHAKE} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n0\r\n\r\n`,
  'a chunk size that is not hex': `POST ${HANDSHAKE} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n`,
  'a space after the chunk size': `POST ${HANDSHAKE} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n`,
  'a bare LF after the chunk size': `POST ${HANDSHAKE} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n`,
  'bare LF line ends': `GET ${HANDSHAKE} HTTP/1.1\nHost: x\n\n`,
  'HTTP/1.1 without Host (Node\'s requireHostHeader)': `GET ${HANDSHAKE} HTTP/1.1\r\nX-Host: x\r\n\r\n`,
};

describe('request smuggling: Node answers 400 and closes', () => {
  let server;
  before(async () => {
    server = await startEioEcho();
  });
  after(async () => {
    await server?.stopChecked();
  });

  for (const [name, request] of Object.entries(SMUGGLING)) {
    it(name, async () => {
      const { text, closed } = await exchange(server.port, request + SMUGGLED);
      const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
      assert.ok(closed, `the connection stayed open; got ${JSON.stringify(text.slice(0, 300))}`);
      assert.ok(statuses.length > 0, 'no answer at all');
      assert.ok(!statuses.includes(200), `the smuggled request was answered: ${statuses}`);
      assert.equal(statuses.at(-1), 400);
    });
  }

  it('chunk extensions and trailers are still accepted', async () => {
    const { sid } = await handshake(server);
    const body = '4hello';
    const request = `POST ${eioPath({ sid })} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n` +
      `Transfer-Encoding: chunked\r\n\r\n${body.length.toString(16)};ext="a b"\r\n${body}\r\n0\r\nX-T: 1\r\n\r\n`;
    const conn = await openConnection(server.port);
    try {
      conn.write(Buffer.from(request));
      const res = await readResponse(conn.reader, { method: 'POST' });
      assert.equal(res.status, 200);
      assert.equal(res.text, 'ok');
    } finally {
      conn.close();
    }
  });
});

// The cap on unsent bytes per connection (--max-buffered-bytes, 1 MiB here) bounds what one
// connection costs. The bound asserted is loose (allocator overhead, read buffers); before the
// fix the floods grew the server by 100 MB and more, or crashed it.
const CAP = 1 << 20;
const GROWTH_BOUND = 12 * CAP;

/** The RSS bound; under AddressSanitizer (freed memory stays quarantined) only survival. */
function assertBounded(server, result, what) {
  if (isSanitized(server.child.pid)) return;
  assert.ok(result.growth < GROWTH_BOUND, `RSS grew by ${result.growth} bytes${what}`);
}

describe('floods: memory bounded by --max-buffered-bytes', { skip: referenceSkip('--max-buffered-bytes is a sioc flag') }, () => {
  let server;
  before(async () => {
    server = await startEioEcho(['--max-buffered-bytes', String(CAP)]);
  });
  after(async () => {
    await server?.stopChecked();
  });
  it('pipelined requests, answers read', async () => {
    const result = await pipelinedRequestsFlood(server.child.pid, server.port, { count: 2300 });
    assert.equal(result.answered, 2300);
    assertBounded(server, result, '');
    await assertAlive(server);
  });

  it('WebSocket pings, pongs never read', async () => {
    const result = await pingFlood(server.child.pid, server.port, eioPath({ transport: 'websocket' }),
      { totalBytes: 48 << 20, durationMs: 4000 });
    assertBounded(server, result, ` (${result.sent} bytes of pings taken)`);
    await assertAlive(server, 'websocket');
  });

  it('pipelined requests, answers never read', async () => {
    const result = await pipelinedNoReadFlood(server.child.pid, server.port, { totalBytes: 48 << 20, durationMs: 4000 });
    assertBounded(server, result, ` (${result.sent} bytes of requests taken)`);
    await assertAlive(server);
  });
});

describe('SIGTERM shutdown is bounded (--shutdown-timeout)', () => {
  const skip = referenceSkip('--shutdown-timeout is a sioc flag');

  it('peers that neither read nor close hold the exit no longer than the bound', { skip }, async () => {
    const server = await startEioEcho(['--shutdown-timeout', '1000']);
    const peers = [];
    try {
      for (let i = 0; i < 20; i++) {
        const ws = await wsOpen(server);
        ws.socket.pause(); /* never reads again: our FIN and the close frame wait in its buffer */
        peers.push(ws);
      }
      const started = Date.now();
      const exited = once(server.child, 'exit');
      process.kill(server.child.pid, 'SIGTERM');
      const [code] = await Promise.race([
        exited,
        new Promise((resolve) => setTimeout(() => resolve([null]), 4500)),
      ]);
      const took = Date.now() - started;
      assert.equal(code, 0, `no clean exit within 4.5 s (took ${took} ms)`);
      assert.ok(took < 3000, `shutdown took ${took} ms with a 1000 ms bound`);
    } finally {
      for (const ws of peers) ws.close();
      await server.stop();
    }
  });
});
