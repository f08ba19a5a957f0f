// Bad Socket.IO input over a raw Engine.IO session (polling and WebSocket):
// the exact outcome Node's socket.io 4.8 gives, then another client still
// works. Cases come from the CVE history (protocol-notes §7): event names
// that are not strings/numbers (CVE-2023-32695), placeholder injection
// (CVE-2022-2421), attachment counts (CVE-2026-33151), a client "error"
// event (CVE-2024-38355), plus protocol-state violations.
//
// What Node does when it closes (every "close" case below):
// - nothing is sent back first (no CONNECT_ERROR, no ack), but for a decoding error
//   (socket.io-parser's message in `error`) every socket of the connection gets an "error"
//   event first, which the echo server answers with "middleware-error" and that message;
// - polling: the POST that carried the packet is answered 200 "ok", the
//   pending GET gets the Engine.IO close packet `1`, the sid is then unknown
//   (400 {"code":1,"message":"Session ID unknown"});
// - WebSocket: a close frame with an empty payload (no status code);
// - every socket of the connection is disconnected; server-side reason
//   "forced close" (Socket.IO-level errors), "parse error" (bad Engine.IO
//   packet type), "transport error" (a ping from the client).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSiocEcho, Clients, ask, RawSession, sleep } from '../lib/sio.js';

const bin = (...bytes) => Buffer.from(bytes);
const PH = (n) => `{"_placeholder":true,"num":${n}}`;

// Sent on a session connected to `/` (and /custom when `custom` is set).
const CLOSING = [
  { name: 'event name is an object: 42[{"toString":"foo"}]', send: ['42[{"toString":"foo"}]'], error: 'invalid payload' },
  { name: 'event name is true: 42[true,"foo"]', send: ['42[true,"foo"]'], error: 'invalid payload' },
  { name: 'event name is null: 42[null,"bar"]', send: ['42[null,"bar"]'], error: 'invalid payload' },
  { name: 'placeholder num "splice" (+1 binary)', send: [`451-["x",${PH('"splice"')}]`, bin(1, 2, 3)], error: 'illegal attachments' },
  { name: 'placeholder num out of range (1 of 1 attachment)', send: [`451-["x",${PH(1)}]`, bin(1, 2, 3)], error: 'illegal attachments' },
  { name: 'placeholder num negative', send: [`451-["x",${PH(-1)}]`, bin(1)], error: 'illegal attachments' },
  { name: 'attachment count 99999999999', send: [`4599999999999-["x",${PH(0)}]`], error: 'too many attachments' },
  { name: 'attachment count 11 (> maxAttachments 10)', send: [`4511-["x",${PH(0)}]`], error: 'too many attachments' },
  { name: 'attachment count 0', send: ['450-["x"]'], error: 'Illegal attachments' },
  { name: 'attachment count not a number', send: [`45a-["x",${PH(0)}]`], error: 'Illegal attachments' },
  { name: 'binary event without the "-"', send: [`451["x",${PH(0)}]`], error: 'Illegal attachments' },
  { name: 'payload is an object: 42{}', send: ['42{}'], error: 'invalid payload' },
  { name: 'payload is a string: 42"x"', send: ['42"x"'], error: 'invalid payload' },
  { name: 'payload is an empty array: 42[]', send: ['42[]'], error: 'invalid payload' },
  { name: 'payload is not JSON: 4abc', send: ['4abc'], error: 'unknown packet type NaN' },
  { name: 'truncated JSON: 42["message",', send: ['42["message",'], error: 'invalid payload' },
  { name: 'empty Socket.IO packet (Engine.IO message "4")', send: ['4'], error: "Cannot read properties of undefined (reading 'base64')" },
  { name: 'unknown packet type 7', send: ['47'], error: 'unknown packet type 7' },
  { name: 'reserved event name "connect"', send: ['42["connect"]'], error: 'invalid payload' },
  { name: 'reserved event name "disconnect"', send: ['42["disconnect"]'], error: 'invalid payload' },
  { name: 'reserved event name "disconnecting"', send: ['42["disconnecting"]'], error: 'invalid payload' },
  { name: 'ACK payload not an array: 431{}', send: ['431{}'], error: 'invalid payload' },
  { name: 'DISCONNECT with a payload: 41[]', send: ['41[]'], error: 'invalid payload' },
  { name: 'binary message without a pending binary packet', send: [bin(1, 2)], error: 'got binary data when not reconstructing a packet' },
  { name: 'text while a binary packet waits for its attachments', send: [`452-["message",${PH(0)},${PH(1)}]`, bin(1), '42["message",1]'], error: 'got plaintext data when reconstructing a packet' },
  { name: 'second CONNECT to the same namespace: 40', send: ['40'] },
  { name: 'second CONNECT with auth: 40{"a":1}', send: ['40{"a":1}'] },
  { name: 'second CONNECT to /custom (already joined)', send: ['40/custom,'], custom: true },
  { name: 'CONNECT payload not an object: 40/custom,[1]', send: ['40/custom,[1]'], error: 'invalid payload' },
  { name: 'CONNECT payload a string: 40/custom,"x"', send: ['40/custom,"x"'], error: 'invalid payload' },
  { name: 'EVENT for a namespace not joined: 42/custom,["message",1]', send: ['42/custom,["message",1]'] },
  { name: 'ACK for a namespace not joined: 43/custom,1[]', send: ['43/custom,1[]'] },
  { name: 'DISCONNECT for a namespace not joined: 41/custom,', send: ['41/custom,'] },
  { name: 'EVENT for an unknown namespace: 42/nope,["x"]', send: ['42/nope,["x"]'] },
  { name: 'CONNECT_ERROR from the client: 44{"message":"x"}', send: ['44{"message":"x"}'] },
  { name: 'a bad packet for / also ends /custom on the same connection', send: ['42{}'], custom: true, error: 'invalid payload' },
  { name: 'Engine.IO packet type 9 (reason "parse error")', send: [{ eio: '9' }], reason: 'parse error' },
  { name: 'Engine.IO ping from the client (reason "transport error")', send: [{ eio: '2' }], reason: 'transport error' },
];

// An Engine.IO-level packet (not wrapped in a message) is sent as { eio }.
function toEio(p) {
  if (Buffer.isBuffer(p)) return p;
  if (typeof p === 'object') return p.eio;
  return p;
}

describe('sio bad input (raw)', () => {
  let server;
  let observer;
  let clients;
  before(async () => {
    server = await startSiocEcho([]);
    clients = new Clients(server);
    observer = await clients.connect('websocket', '/');
  });
  after(async () => {
    clients?.close();
    await server?.stopChecked();
  });

  // Another client still works and the server is running.
  async function assertOthersFine() {
    assert.ok(server.alive, `server died: ${server.describeExit()}`);
    assert.equal(await ask(observer, 'message-with-ack', 'still here'), 'still here');
  }

  for (const transport of ['polling', 'websocket']) {
    describe(transport, () => {
      async function connected(t, { custom = false } = {}) {
        const c = new Clients(server, t);
        const raw = await c.raw(transport);
        const { sid } = await raw.connect('/');
        assert.equal(await raw.nextText(), '2["auth",{}]');
        let customSid = null;
        if (custom) {
          customSid = (await raw.connect('/custom')).sid;
          assert.equal(await raw.nextText(), '2/custom,["auth",{}]');
        }
        return { c, raw, sid, customSid };
      }

      async function assertClosedLikeNode(raw, postResult, expectedBeforeClose = []) {
        const closed = await raw.waitClosed(3000);
        if (transport === 'polling') {
          assert.deepEqual(postResult, { status: 200, text: 'ok' }, 'the POST itself is answered 200 ok');
          assert.deepEqual(closed, { how: 'close-packet' });
          await raw.assertGone();
        } else {
          assert.deepEqual({ how: closed.how, code: closed.code }, { how: 'close-frame', code: null });
        }
        assert.deepEqual(raw.queue, expectedBeforeClose, 'what is sent back before the close');
      }

      for (const tc of CLOSING) {
        it(`${tc.name} → connection closed`, async (t) => {
          const { raw, sid, customSid } = await connected(t, { custom: tc.custom });
          const post = await raw.send(...tc.send.map(toEio));
          // A decoding error reaches every socket of the connection first (Node's
          // Client.onerror), and the echo server's error handler answers it.
          const heard = (nsp) => ({ type: '4', data: `2${nsp}["middleware-error",${JSON.stringify(tc.error)}]` });
          const expected = tc.error ? [heard(''), ...(customSid ? [heard('/custom,')] : [])] : [];
          await assertClosedLikeNode(raw, post, expected);
          const [, reason] = await observer.inbox.takeMatching('left', (a) => a[0] === sid, 3000);
          assert.equal(reason, tc.reason ?? 'forced close');
          if (customSid) {
            // The /custom socket of that connection is gone too.
            const c = new Clients(server, t);
            const customObserver = await c.connect('websocket', '/custom');
            const list = await ask(customObserver, 'fetch-sockets', null);
            assert.ok(list.some((s) => s.id === customObserver.id));
            assert.ok(!list.some((s) => s.id === customSid), 'the /custom socket is gone');
          }
          await assertOthersFine();
        });
      }

      it('42["error"] (client "error" event): no crash, no close, nothing sent; counted as an event', async (t) => {
        const { raw } = await connected(t);
        await raw.send('42["error"]');
        await raw.send('42["error",{"message":"boom"}]');
        await raw.assertQuiet(200);
        await raw.send('421["count"]');
        assert.equal(await raw.nextText(), '31[2]');
        await assertOthersFine();
      });

      it('421["error"] (with an ack id): no ack is sent back', async (t) => {
        const { raw } = await connected(t);
        await raw.send('421["error"]');
        await raw.send('422["count"]');
        assert.equal(await raw.nextText(), '32[1]', 'the first packet back is the count ack');
        await raw.assertQuiet(200);
      });

      it('a number as event name (42[1,"x"]) is accepted: no close, counted', async (t) => {
        const { raw } = await connected(t);
        await raw.send('42[1,"x"]');
        await raw.send('421["count"]');
        assert.equal(await raw.nextText(), '31[1]');
      });

      for (const [name, blank] of [['a space', ' '], ['a tab', '\t'], ['U+00A0', '\u00a0'], ['U+FEFF', '\ufeff']]) {
        it(`${name} as packet type is read as 0 (Number() of white space): CONNECT to /custom`, async (t) => {
          const { raw } = await connected(t);
          await raw.send(`4${blank}/custom,`);
          assert.match(await raw.nextText(), /^0\/custom,\{"sid":"[\w-]{20}"\}$/);
          assert.equal(await raw.nextText(), '2/custom,["auth",{}]');
        });
      }

      it('an ACK with an unknown id (43999[1]) is ignored and not counted', async (t) => {
        const { raw } = await connected(t);
        await raw.send('43999[1]');
        await raw.send('4399["x"]');
        await raw.send('421["count"]');
        assert.equal(await raw.nextText(), '31[0]');
        await raw.assertQuiet(100);
      });

      it('10 attachments (= maxAttachments) are accepted', async (t) => {
        const { raw } = await connected(t);
        const bufs = Array.from({ length: 10 }, (_, i) => bin(i, i, i));
        const placeholders = bufs.map((_, i) => PH(i)).join(',');
        await raw.send(`4510-["message",${placeholders}]`, ...bufs);
        assert.equal(await raw.nextText(), `5${10}-["message-back",${placeholders}]`);
        for (const b of bufs) assert.deepEqual(await raw.nextBinary(), b);
      });

      it('CONNECT to an unknown namespace → 44/nope,{"message":"Invalid namespace"}; the connection stays', async (t) => {
        const { raw } = await connected(t);
        await raw.send('40/nope,');
        assert.equal(await raw.nextText(), '4/nope,{"message":"Invalid namespace"}');
        await raw.send('40/dynamic-x,{"a":1}');
        assert.equal(await raw.nextText(), '4/dynamic-x,{"message":"Invalid namespace"}');
        await raw.send('421["message-with-ack","ok"]');
        assert.equal(await raw.nextText(), '31["ok"]');
      });

      it('CONNECT refused by the middleware on a second namespace: 44/custom,{…}; / stays', async (t) => {
        const { raw } = await connected(t);
        await raw.send('40/custom,{"refuse":true}');
        assert.equal(await raw.nextText(), '4/custom,{"message":"refused","data":{"reason":"test"}}');
        await raw.send('421["message-with-ack","ok"]');
        assert.equal(await raw.nextText(), '31["ok"]');
        // A later CONNECT to /custom without refuse works.
        await raw.connect('/custom');
        assert.equal(await raw.nextText(), '2/custom,["auth",{}]');
      });

      it('DISCONNECT (41) of the only namespace keeps the Engine.IO session; CONNECT again gives a new sid', async (t) => {
        const { raw, sid } = await connected(t);
        await raw.send('41');
        const [, reason] = await observer.inbox.takeMatching('left', (a) => a[0] === sid, 3000);
        assert.equal(reason, 'client namespace disconnect');
        await raw.assertQuiet(300);
        const again = await raw.connect('/');
        assert.notEqual(again.sid, sid);
        assert.equal(await raw.nextText(), '2["auth",{}]');
      });

      it('after 41, an EVENT for / (no longer joined) closes the connection', async (t) => {
        const { raw, sid } = await connected(t);
        await raw.send('41');
        await observer.inbox.takeMatching('left', (a) => a[0] === sid, 3000);
        const post = await raw.send('42["message",1]');
        await assertClosedLikeNode(raw, post);
        await assertOthersFine();
      });
    });

    describe(`${transport}, before any CONNECT`, () => {
      for (const [name, packet] of [
        ['EVENT', '42["message",1]'],
        ['ACK', '430[]'],
        ['DISCONNECT', '41'],
        ['CONNECT_ERROR', '44{"message":"x"}'],
        ['a decoding error', '42{}'],
      ]) {
        it(`${name} before any CONNECT → connection closed at once`, async (t) => {
          const c = new Clients(server, t);
          const raw = await c.raw(transport);
          const post = await raw.send(packet);
          const closed = await raw.waitClosed(3000);
          assert.ok(raw.closedAt - raw.openedAt < 3000, 'closed at once, not by the 45 s connect timeout');
          if (transport === 'polling') {
            assert.deepEqual(post, { status: 200, text: 'ok' });
            assert.deepEqual(closed, { how: 'close-packet' });
            await raw.assertGone();
          } else {
            assert.deepEqual({ how: closed.how, code: closed.code }, { how: 'close-frame', code: null });
          }
          assert.deepEqual(raw.queue, []);
          await assertOthersFine();
        });
      }
    });
  }

  it('many bad sessions in a row leave the server healthy', async (t) => {
    const c = new Clients(server, t);
    const sessions = [];
    for (let i = 0; i < 10; i++) {
      const raw = await RawSession.open(server, i % 2 ? 'websocket' : 'polling');
      c.raws.push(raw);
      sessions.push(raw);
      await raw.send(['42{}', '4abc', '47', '42[true,"foo"]', '41'][i % 5]);
    }
    for (const raw of sessions) await raw.waitClosed(3000);
    await sleep(50);
    await assertOthersFine();
    const fresh = await c.connect('polling', '/custom');
    assert.equal(await ask(fresh, 'message-with-ack', 1), 1);
  });
});
