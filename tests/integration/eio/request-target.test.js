// The bytes of a request target. Node's llhttp takes only visible ASCII (0x21-0x7e) there and
// answers anything else, a tab, a form feed, DEL or a byte of 0x80 or more (UTF-8 or not), with
// exactly "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n" and a close, before engine.io
// sees the request; a request pipelined behind it is never answered. Debian's http-parser 2.9
// takes most of those bytes, so sioc checks the target itself.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEioEcho } from '../lib/server.js';
import { openConnection, request } from '../lib/http.js';
import { eioPath, parseOpenPacket } from '../lib/eio.js';
import { wsConnect } from '../lib/ws.js';

const NODE_400 = 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n';
const BEHIND = `GET ${eioPath({ transport: 'polling' })} HTTP/1.1\r\nHost: x\r\n\r\n`;

/** Writes bytes, collects everything the server sends until it closes (or 3 s). */
async function exchange(port, bytes) {
  const conn = await openConnection(port);
  try {
    conn.write(bytes);
    const closed = await conn.reader.waitEnd(3000);
    return { text: conn.reader.buf.toString('latin1'), closed };
  } finally {
    conn.close();
  }
}

/** A polling handshake (or a WebSocket upgrade) whose target holds `bytes` at `where`. */
function requestWith(bytes, where, upgrade = false) {
  const transport = upgrade ? 'websocket' : 'polling';
  const [before, after] = where === 'path'
    ? [`/engine.io/a`, `/?EIO=4&transport=${transport}`]
    : [`/engine.io/?EIO=4&transport=${transport}&x=`, ''];
  const headers = upgrade
    ? 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n'
    : '';
  return Buffer.concat([
    Buffer.from(`GET ${before}`, 'latin1'),
    Buffer.from(bytes),
    Buffer.from(`${after} HTTP/1.1\r\nHost: x\r\n${headers}\r\n`, 'latin1'),
  ]);
}

const REFUSED = {
  'a byte 0x80': [0x80],
  'a byte 0xff': [0xff],
  'UTF-8 "é" (c3 a9)': [0xc3, 0xa9],
  'UTF-8 "日" (e6 97 a5)': [0xe6, 0x97, 0xa5],
  'a tab': [0x09],
  'a form feed': [0x0c],
  'DEL (0x7f)': [0x7f],
  'a control byte 0x01': [0x01],
  'NUL': [0x00],
};

describe('request target bytes outside visible ASCII: Node answers 400 and closes', () => {
  let server;
  before(async () => {
    server = await startEioEcho();
  });
  after(async () => {
    await server?.stopChecked();
  });

  for (const [name, bytes] of Object.entries(REFUSED)) {
    for (const where of ['query', 'path']) {
      it(`${name} in the ${where}: exactly Node's 400, closed, the request behind not answered`, async () => {
        const { text, closed } = await exchange(server.port, Buffer.concat([requestWith(bytes, where), Buffer.from(BEHIND)]));
        assert.equal(text, NODE_400);
        assert.ok(closed, 'the connection stayed open');
      });
    }
    it(`${name} in a WebSocket upgrade's query: exactly Node's 400, no 101`, async () => {
      const { text, closed } = await exchange(server.port, requestWith(bytes, 'query', true));
      assert.equal(text, NODE_400);
      assert.ok(closed, 'the connection stayed open');
    });
  }

  it('on a kept-alive connection, after an answered request: exactly Node\'s 400, closed', async () => {
    const conn = await openConnection(server.port);
    try {
      conn.write(BEHIND);
      await conn.reader.wait(() => (conn.reader.buf.includes('"maxPayload"') ? true : undefined), 'the open packet');
      const answered = conn.reader.buf.length;
      conn.write(requestWith([0xe9], 'query'));
      assert.ok(await conn.reader.waitEnd(3000), 'the connection stayed open');
      assert.equal(conn.reader.buf.subarray(answered).toString('latin1'), NODE_400);
    } finally {
      conn.close();
    }
  });

  it('every visible ASCII byte in the query is accepted (200, open packet)', async () => {
    // '#' starts the fragment, which would cut the query off: it is left out here.
    const visible = [];
    for (let b = 0x21; b <= 0x7e; b++) if (b !== 0x23) visible.push(b);
    const conn = await openConnection(server.port);
    try {
      conn.write(requestWith(visible, 'query'));
      const head = await conn.reader.wait(() => {
        const text = conn.reader.buf.toString('latin1');
        return text.includes('"maxPayload"') ? text : undefined;
      }, 'the open packet');
      assert.match(head, /^HTTP\/1\.1 200 OK\r\n/);
    } finally {
      conn.close();
    }
  });
});

/** A polling GET of target: status, and body's exact text (null: an open packet). */
async function assertPolling(port, target, status, body) {
  const res = await request(port, { method: 'GET', path: target });
  assert.equal(res.status, status, res.text);
  if (body !== null) assert.equal(res.text, body);
  else assert.deepEqual(parseOpenPacket(res.text).upgrades, ['websocket']);
}

// engine.io reads its parameters from new URL(req.url, base).searchParams (server.js prepare()).
// Each answer is node 20's.
describe('the query as engine.io reads it, as Node', () => {
  let server;
  before(async () => {
    server = await startEioEcho();
  });
  after(async () => {
    await server?.stopChecked();
  });

  // The query ends at the first '#', and a '?' after a '#' is in the fragment (no query, so no
  // transport: code 0).
  describe("'#' in the request target: the fragment is no part of the query", () => {
    const TRANSPORT_UNKNOWN = '{"code":0,"message":"Transport unknown"}';
    for (const [target, status, body] of [
      ['/engine.io/?EIO=4&transport=polling#x', 200, null],
      ['/engine.io/?EIO=4&transport=polling#?EIO=5&transport=x', 200, null],
      ['/engine.io/#x?EIO=4&transport=polling', 400, TRANSPORT_UNKNOWN],
      ['/engine.io/?EIO=4#&transport=polling', 400, TRANSPORT_UNKNOWN],
    ]) {
      it(`polling ${target}: ${status}`, () => assertPolling(server.port, target, status, body));
    }

    for (const [target, status] of [
      ['/engine.io/?EIO=4&transport=websocket#x', 101],
      ['/engine.io/?EIO=4&transport=websocket#&EIO=5', 101],
      ['/engine.io/#?EIO=4&transport=websocket', 400],
    ]) {
      it(`WebSocket ${target}: ${status}`, async () => {
        const ws = await wsConnect(server.port, target);
        try {
          assert.equal(ws.response.status, status, ws.response.text);
          if (status === 400) {
            assert.equal(ws.response.text, 'Transport unknown');
          } else {
            const frame = await ws.readFrame();
            assert.deepEqual(parseOpenPacket(frame.text).upgrades, []);
          }
        } finally {
          ws.close();
        }
      });
    }
  });

  // EIO, transport, sid and b64 come from Object.fromEntries(url.searchParams): each name and value
  // decoded, the last value of a name sent twice, and a sid tested for its truth (`if (sid)`), so
  // "sid=" is a handshake. No client sends these; a proxy that appends its own copy of a parameter
  // does.
  describe('Engine.IO parameters read as URLSearchParams', () => {
    const UNSUPPORTED = '{"code":5,"message":"Unsupported protocol version"}';
    const UNKNOWN_SID = '{"code":1,"message":"Session ID unknown"}';
    const BAD_REQUEST = '{"code":3,"message":"Bad request"}';
    for (const [target, status, body] of [
      ['/engine.io/?EIO=4&transport=polling&EIO=3', 400, UNSUPPORTED],
      ['/engine.io/?EIO=3&EIO=4&transport=polling', 200, null],
      ['/engine.io/?EIO&transport=polling', 400, UNSUPPORTED],
      ['/engine.io/?EI%4F=4&transport=polling', 200, null],
      ['/engine.io/?EIO=4&transport=poll%69ng', 200, null],
      ['/engine.io/?EIO=4&tr%61nsport=polling', 200, null],
      ['/engine.io/?EIO=4&transport=polling&transport=websocket', 400, BAD_REQUEST],
      ['/engine.io/?EIO=4&transport=websocket&transport=polling', 200, null],
      ['/engine.io/?EIO=4&transport=polling&sid=', 200, null],
      ['/engine.io/?EIO=4&transport=polling&sid', 200, null],
      ['/engine.io/?EIO=4&transport=polling&sid=%', 400, UNKNOWN_SID],
      ['/engine.io/?EIO=4&transport=polling&sid=%zz', 400, UNKNOWN_SID],
      ['/engine.io/?EIO=4&transport=polling&sid=' + 'x'.repeat(100), 400, UNKNOWN_SID],
      ['/engine.io/?EIO=4&&&transport=polling&', 200, null],
    ]) {
      it(`polling ${target.length > 80 ? target.slice(0, 80) + '…' : target}: ${status}`, () =>
        assertPolling(server.port, target, status, body));
    }

    it('a session\'s sid sent twice: the last one is the session (the first is not looked at)', async () => {
      const open = await request(server.port, { method: 'GET', path: '/engine.io/?EIO=4&transport=polling' });
      const { sid } = parseOpenPacket(open.text);
      const wrongLast = await request(server.port, { method: 'GET', path: `/engine.io/?EIO=4&transport=polling&sid=${sid}&sid=unknown` });
      assert.equal(wrongLast.status, 400, wrongLast.text);
      assert.equal(wrongLast.text, UNKNOWN_SID);
      const post = await request(server.port, { method: 'POST', path: `/engine.io/?EIO=4&transport=polling&sid=unknown&sid=${sid}`, body: '1' });
      assert.equal(post.status, 200, post.text);
      assert.equal(post.text, 'ok');
    });
  });
});
