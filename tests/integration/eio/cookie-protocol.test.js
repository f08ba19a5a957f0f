// engine.io's `cookie` option (Set-Cookie with the session id on the handshake, written as the
// cookie npm module writes it) and Sec-WebSocket-Protocol answered as ws 8 answers it.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEioEcho, referenceSkip } from '../lib/server.js';
import { handshake, poll, send, wsOpen, eioPath } from '../lib/eio.js';
import { wsConnect } from '../lib/ws.js';
import { openClient } from '../lib/client.js';

async function cookieOf(flags) {
  const server = await startEioEcho(flags);
  try {
    const { sid, res } = await handshake(server);
    return { sid, cookie: res.header('set-cookie') };
  } finally {
    await server.stopChecked();
  }
}

describe('the cookie option', () => {
  it('is off by default: no Set-Cookie', async () => {
    const { cookie } = await cookieOf([]);
    assert.equal(cookie, undefined);
  });

  it('--cookie io: "io=<sid>; Path=/; HttpOnly; SameSite=Lax" (engine.io defaults)', async () => {
    const { sid, cookie } = await cookieOf(['--cookie', 'io']);
    assert.equal(cookie, `io=${sid}; Path=/; HttpOnly; SameSite=Lax`);
  });

  it('every attribute, in the cookie module order', async () => {
    const { sid, cookie } = await cookieOf(['--cookie', 'sid', '--cookie-path', '/app', '--cookie-domain', 'example.com',
      '--cookie-max-age', '3600', '--cookie-same-site', 'strict', '--cookie-secure', 'true', '--cookie-http-only', 'false']);
    assert.equal(cookie, `sid=${sid}; Max-Age=3600; Domain=example.com; Path=/app; Secure; SameSite=Strict`);
  });

  it('path and sameSite turned off', async () => {
    const { sid, cookie } = await cookieOf(['--cookie', 'io', '--cookie-path', 'false', '--cookie-same-site', 'false']);
    assert.equal(cookie, `io=${sid}; HttpOnly`);
  });

  it('a name that is not a token is refused at start', { skip: referenceSkip('Node throws at the first handshake') }, async () => {
    await assert.rejects(startEioEcho(['--cookie', 'a b']), /exited before listening \(code 1/);
    await assert.rejects(startEioEcho(['--cookie', 'io', '--cookie-path', '/a;b']), /exited before listening \(code 1/);
  });

  describe('only on the handshake', () => {
    let server;
    before(async () => {
      server = await startEioEcho(['--cookie', 'io']);
    });
    after(async () => {
      await server?.stopChecked();
    });

    it('not on later polls of the session', async () => {
      const { sid } = await handshake(server);
      await send(server, sid, '4x');
      const res = await poll(server, sid);
      assert.equal(res.text, '4x');
      assert.equal(res.header('set-cookie'), undefined);
      await send(server, sid, '1');
    });

    it('not on a WebSocket handshake (ws writes the 101 before engine.io has a session)', async () => {
      const ws = await wsOpen(server);
      try {
        assert.equal(ws.response.header('set-cookie'), undefined);
      } finally {
        ws.close();
      }
    });
  });
});

const WS_PATH = eioPath({ transport: 'websocket' });

describe('Sec-WebSocket-Protocol', () => {
  let server;
  before(async () => {
    server = await startEioEcho();
  });
  after(async () => {
    await server?.stopChecked();
  });

  async function offer(values) {
    const ws = await wsConnect(server.port, WS_PATH, { headers: values.map((v) => ['Sec-WebSocket-Protocol', v]) });
    ws.close();
    return ws.response;
  }

  it('none offered: none answered', async () => {
    const res = await offer([]);
    assert.equal(res.status, 101);
    assert.equal(res.header('sec-websocket-protocol'), undefined);
  });

  for (const [value, first] of [['chat, superchat', 'chat'], ['chat,superchat', 'chat'], [' chat', 'chat'],
    ['chat ', 'chat'], ['a,\tb', 'a'], ['a ,b', 'a']]) {
    it(`${JSON.stringify(value)} → 101 with the first, ${first}`, async () => {
      const res = await offer([value]);
      assert.equal(res.status, 101);
      assert.equal(res.header('sec-websocket-protocol'), first);
    });
  }

  it('two headers are one list: the first of the first', async () => {
    const res = await offer(['x', 'y']);
    assert.equal(res.status, 101);
    assert.equal(res.header('sec-websocket-protocol'), 'x');
  });

  for (const values of [['a,,b'], ['a,a'], ['a b'], ['a;b'], [''], ['a,'], ['x', 'x']]) {
    it(`${JSON.stringify(values)} → 400 "Invalid Sec-WebSocket-Protocol header"`, async () => {
      const res = await offer(values);
      assert.equal(res.status, 400);
      assert.equal(res.text, 'Invalid Sec-WebSocket-Protocol header');
    });
  }

  it('engine.io-client with protocols: ["chat", "x"] connects and echoes', async () => {
    const client = await openClient(server, 'websocket', { protocols: ['chat', 'x'] });
    try {
      client.send('hello');
      assert.deepEqual(await client.next(), ['hello']);
      assert.equal(client.socket.transport.ws.protocol, 'chat');
    } finally {
      client.close();
    }
  });
});
