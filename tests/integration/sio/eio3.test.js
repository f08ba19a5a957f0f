// socket.io-client 2.x (Socket.IO protocol v4 over Engine.IO v3) against a
// server with allowEIO3: over polling, WebSocket only, and polling upgraded to
// WebSocket. Connect (implicit for "/"), socket ids as Node gives them to v3
// clients ("<nsp>#<engine id>"), emits and acks both ways, binary, namespaces
// with the query as auth, a middleware error as the v2 client's 'error' event,
// rooms, disconnect. Plus the raw wire of the v4 differences (CONNECT without
// a sid, the error packet's payload). Run against ref/sioc-echo.js
// --allow-eio3 to check that every expectation is Node's.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import ioV2 from 'socket.io-client-v2';
import { startSiocEcho } from '../lib/sio.js';
import { request } from '../lib/http.js';

const TIMEOUT_MS = 5000;

const MODES = {
  polling: { transports: ['polling'] },
  websocket: { transports: ['websocket'] },
  upgrade: { transports: ['polling', 'websocket'] },
};

function once(socket, event, timeoutMs = TIMEOUT_MS) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no '${event}' within ${timeoutMs} ms`)), timeoutMs);
    socket.once(event, (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}

function ask(socket, event, ...args) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ack for '${event}' within ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
    socket.emit(event, ...args, (...response) => {
      clearTimeout(timer);
      resolve(response);
    });
  });
}

/** Engine.IO v3 polling by hand: GET, POST of one packet, and the packets received in order. */
function v3Wire(port) {
  const base = '/socket.io/?EIO=3&transport=polling';
  const get = (path) => request(port, { method: 'GET', path, timeoutMs: 3000 });
  const post = (sid, packet) =>
    request(port, {
      method: 'POST', path: `${base}&sid=${sid}`, body: `${packet.length}:${packet}`,
      headers: [['Content-Type', 'text/plain;charset=UTF-8']],
    });
  // Packets in order, whatever the batching into responses.
  const collect = async (sid, count) => {
    const packets = [];
    while (packets.length < count) {
      let text = (await get(`${base}&sid=${sid}`)).text;
      while (text.length > 0) {
        const colon = text.indexOf(':');
        const length = Number(text.slice(0, colon));
        packets.push(text.slice(colon + 1, colon + 1 + length));
        text = text.slice(colon + 1 + length);
      }
    }
    return packets;
  };
  return { base, get, post, collect };
}

describe('socket.io-client 2 (EIO3, --allow-eio3)', () => {
  let server;
  const sockets = [];
  const connect = (nsp, mode, opts = {}) => {
    const socket = ioV2(`http://127.0.0.1:${server.port}${nsp}`, {
      ...MODES[mode], forceNew: true, reconnection: false, ...opts,
    });
    sockets.push(socket);
    return socket;
  };
  before(async () => {
    server = await startSiocEcho(['--allow-eio3']);
  });
  after(async () => {
    for (const socket of sockets) socket.close();
    await server?.stopChecked();
  });

  for (const mode of Object.keys(MODES)) {
    describe(mode, () => {
      it('connects to "/" without a CONNECT packet; the socket id is the Engine.IO id', async () => {
        const socket = connect('/', mode);
        const [auth] = await once(socket, 'auth');
        assert.deepEqual(auth, {});
        assert.ok(socket.connected);
        assert.equal(socket.id, socket.io.engine.id);
        const [rooms] = await ask(socket, 'rooms');
        assert.deepEqual(rooms, [socket.id]);
        if (mode === 'upgrade') {
          await until(() => socket.io.engine.transport.name === 'websocket', 'the upgrade');
        }
        socket.close();
      });

      it('emit and ack both ways, binary included', async () => {
        const socket = connect('/', mode);
        await once(socket, 'connect');
        const bytes = Buffer.from([1, 2, 3, 0xff]);
        const back = once(socket, 'message-back');
        socket.emit('message', 'héllo 😀', { bin: bytes }, [1, 2]);
        const [text, object, list] = await back;
        assert.equal(text, 'héllo 😀');
        assert.deepEqual(Buffer.from(object.bin), bytes);
        assert.deepEqual(list, [1, 2]);
        const [acked, ackedBin] = await ask(socket, 'message-with-ack', 'x', bytes);
        assert.equal(acked, 'x');
        assert.deepEqual(Buffer.from(ackedBin), bytes);
        // The server asks, the client answers.
        socket.once('question', (value, cb) => cb(`answer to ${value}`));
        const [result] = await ask(socket, 'server-ack', 2000, 'question', 42);
        assert.deepEqual(result, { response: ['answer to 42'] });
        socket.close();
      });

      it('a namespace: CONNECT with the query as auth, the id "<nsp>#<engine id>", rooms broadcast', async () => {
        const a = connect('/custom', mode, { query: { room: 'r1' } });
        const b = connect('/custom', mode, { query: { room: 'r1' } });
        const authB = once(b, 'auth');
        const [authA] = await once(a, 'auth');
        await authB;
        assert.deepEqual(authA, { room: 'r1' });
        assert.equal(a.id, `/custom#${a.io.engine.id}`);
        const [rooms] = await ask(a, 'rooms');
        assert.deepEqual(rooms.sort(), [a.id, 'r1'].sort());
        const gotA = once(a, 'news');
        const gotB = once(b, 'news');
        a.emit('to-room', 'r1', 'news', 'for r1', Buffer.from([7]));
        for (const [text, bin] of [await gotA, await gotB]) {
          assert.equal(text, 'for r1');
          assert.deepEqual(Buffer.from(bin), Buffer.from([7]));
        }
        a.close();
        b.close();
      });

      it("a middleware error reaches the v2 client as 'error' with err.data", async () => {
        const socket = connect('/custom', mode, { query: { refuse: '1' } });
        const [error] = await once(socket, 'error');
        assert.deepEqual(error, { reason: 'test' });
        assert.equal(socket.connected, false);
        socket.close();
        const plain = connect('/custom', mode, { query: { refuse: 'no-data' } });
        assert.deepEqual(await once(plain, 'error'), ['refused']);
        plain.close();
      });

      it('disconnect: the server sees the client leave, the client sees the server disconnect it', async () => {
        const watcher = connect('/', mode);
        await once(watcher, 'connect');
        const leaving = connect('/', mode);
        await once(leaving, 'connect');
        const id = leaving.id;
        // Sockets of earlier tests may still be leaving: wait for this one.
        const left = new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`no 'left' for ${id}`)), TIMEOUT_MS);
          watcher.on('left', (who, reason) => {
            if (who !== id) return;
            clearTimeout(timer);
            resolve(reason);
          });
        });
        leaving.close();
        assert.equal(await left, 'client namespace disconnect');
        const kicked = connect('/', mode);
        await once(kicked, 'connect');
        const disconnected = once(kicked, 'disconnect');
        kicked.emit('disconnect-me', false);
        assert.deepEqual(await disconnected, ['io server disconnect']);
        watcher.close();
      });
    });
  }

  it('raw wire (polling): "40" comes unasked, CONNECT answers carry no sid, errors are v4 error packets', async () => {
    const { base, get, post, collect } = v3Wire(server.port);
    const open = await get(base);
    const m = /^(\d+):0(\{.*\})$/.exec(open.text);
    assert.ok(m, `the open packet alone: ${open.text}`);
    const { sid } = JSON.parse(m[2]);
    assert.deepEqual(await collect(sid, 2), ['40', '42["auth",{}]']);
    assert.equal((await post(sid, '40/custom?room=r2,')).text, 'ok');
    assert.deepEqual(await collect(sid, 2), ['40/custom,', '42/custom,["auth",{"room":"r2"}]']);
    await post(sid, '40/nope,');
    assert.deepEqual(await collect(sid, 1), ['44/nope,{"message":"Invalid namespace"}']);
    await post(sid, '40/dynamic-1?refuse=yes,');
    assert.deepEqual(await collect(sid, 1), ['44/dynamic-1,{"reason":"test"}']);
    // Without err.data the v4 error packet carries the message alone, as a JSON string.
    await post(sid, '40/dynamic-2?refuse=no-data,');
    assert.deepEqual(await collect(sid, 1), ['44/dynamic-2,"refused"']);
    await post(sid, '1');
  });

  // Node's _parseNamespace for protocol 3: new URL(packet.nsp, base), the query as auth through
  // Object.fromEntries(url.searchParams), as socket.handshake.query is made. The URL parser drops
  // tabs, LFs and CRs anywhere and C0 controls and spaces at the ends; the query ends at '#'.
  // Each answer is node 20's.
  for (const [nsp, auth] of [
    ['/custom?room=a%2Bb+c&room=last&x', { room: 'last', x: '' }],
    ['/custom?room=%C3&k=%&=1&&', { room: '\ufffd', k: '%', '': '1' }],
    ['/custom?room=caf\u00e9', { room: 'caf\u00e9' }],
    ['/custom#f?room=1', {}],
    ['/custom?room=1#f&x=2', { room: '1' }],
    ['/custom?room=a\tb ', { room: 'ab' }],
    ['/custom?room=a\nb\r', { room: 'ab' }],
    ['/custom?room=\u0001x\u0001', { room: '\u0001x' }],
  ]) {
    it(`raw wire (polling): CONNECT ${JSON.stringify(nsp)} gives auth ${JSON.stringify(auth)}`, async () => {
      const { base, get, post, collect } = v3Wire(server.port);
      const open = await get(base);
      const { sid } = JSON.parse(/^(\d+):0(\{.*\})$/.exec(open.text)[2]);
      assert.deepEqual(await collect(sid, 2), ['40', '42["auth",{}]']);
      assert.equal((await post(sid, `40${nsp},`)).text, 'ok');
      assert.deepEqual(await collect(sid, 2), ['40/custom,', `42/custom,${JSON.stringify(['auth', auth])}`]);
      await post(sid, '1');
    });
  }
});

async function until(predicate, what, timeoutMs = TIMEOUT_MS) {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
