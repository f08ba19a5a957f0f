// The Socket.IO wire format as Node writes it, byte for byte, over a raw
// Engine.IO session (polling and WebSocket): the Engine.IO handshake on
// /socket.io/, CONNECT replies, events and acks with and without namespace
// and ack id, binary packets (placeholder numbering follows the depth-first
// order of the re-encoded arguments), JSON re-encoding exactly like
// JSON.parse + JSON.stringify (numbers, strings, key order), the server →
// client ack flow, several packets in one polling POST. Plus --path and
// --cors.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSiocEcho, Clients, ask, sioPath, isSioReference } from '../lib/sio.js';
import { request } from '../lib/http.js';

const PH = (n) => `{"_placeholder":true,"num":${n}}`;
const ID_RE = /^[A-Za-z0-9_-]{20}$/;

// [sent after the ack id 1 of "message-with-ack" args, expected ack payload]
const JSON_CASES = [
  ['numbers',
    '[1.0,1e2,-0,0.1,1e21,1e-7,5e-324,1.7976931348623157e308,0.000001,1.5e-6,-12.50,9007199254740991,-9007199254740991]',
    '[1,100,0,0.1,1e+21,1e-7,5e-324,1.7976931348623157e+308,0.000001,0.0000015,-12.5,9007199254740991,-9007199254740991]'],
  ['integers beyond 2^53 are doubles (rounded)', '[9007199254740993,100000000000000000000,18446744073709551617,123456789012345678901234567890,-99999999999999999999999]',
    '[9007199254740992,100000000000000000000,18446744073709552000,1.2345678901234568e+29,-1e+23]'],
  // The fourth element is what sioc answers where it differs (docs/compatibility.md): it refuses
  // numbers beyond a double (jansson holds no infinities; JSON.stringify never writes one) and
  // closes the connection as for any payload it cannot parse; it reads a lone surrogate (a client
  // that cut an emoji in two: JSON.stringify writes "\ud83d") as U+FFFD, which UTF-8 can hold.
  ['numbers beyond the double range become Infinity → null', '[1e400,-1e400,[2e308]]', '[null,null,[null]]', 'closes'],
  ['string escapes',
    '["\\u00e9\\ud83c\\udf89","\\u2028\\u2029","\\u0001\\u001f\\u007f","\\/","\\b\\f\\n\\r\\t","\\"\\\\","\\u0000"]',
    '["é🎉","\u2028\u2029","\\u0001\\u001f\u007f","/","\\b\\f\\n\\r\\t","\\"\\\\","\\u0000"]'],
  ['lone surrogates are kept (written as lower-case \\u escapes)', '["\\ud800","\\udc00x","a\\uDBFF"]', '["\\ud800","\\udc00x","a\\udbff"]', '["\ufffd","\ufffdx","a\ufffd"]'],
  ['raw UTF-8 strings', '["é🎉日本","\u007f"]', '["é🎉日本","\u007f"]'],
  ['object keys: last duplicate wins; integer-like keys first, ascending; then insertion order',
    '[{"a":1,"a":2},{"__proto__":1},{"b":1,"a":2,"10":3,"1":4,"01":5,"-1":6}]',
    '[{"a":2},{"__proto__":1},{"1":4,"10":3,"b":1,"a":2,"01":5,"-1":6}]'],
  ['whitespace is dropped', '[ 1 , [ ] , { } , { "k" : [ null , true ] } ]', '[1,[],{},{"k":[null,true]}]'],
  ['a placeholder-like object in a non-binary packet is plain data',
    `[${PH(0)},{"_placeholder":true,"num":0,"x":1},{"_placeholder":false,"num":0}]`,
    `[${PH(0)},{"_placeholder":true,"num":0,"x":1},{"_placeholder":false,"num":0}]`],
  ['no arguments', '[]', '[]'],
];

// Read a binary packet `<type><n>-[...]` (type '5' or '6', namespace `/`,
// no ack id) and its n attachments; returns the payload with every
// placeholder replaced by its attachment (checking the placeholders).
async function readBinaryEvent(raw, type) {
  const text = await raw.nextText();
  const m = new RegExp(`^${type}(\\d+)-(\\[.*)$`).exec(text);
  assert.ok(m, `expected a binary packet of type ${type}, got ${text}`);
  const n = Number(m[1]);
  const attachments = [];
  for (let i = 0; i < n; i++) attachments.push(await raw.nextBinary());
  const used = new Set();
  const fill = (v) => {
    if (Array.isArray(v)) return v.map(fill);
    if (v && typeof v === 'object') {
      if (v._placeholder === true) {
        assert.deepEqual(Object.keys(v), ['_placeholder', 'num']);
        assert.ok(Number.isInteger(v.num) && v.num >= 0 && v.num < n, `placeholder ${JSON.stringify(v)} of ${n}`);
        used.add(v.num);
        return attachments[v.num];
      }
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fill(x)]));
    }
    return v;
  };
  const payload = fill(JSON.parse(m[2]));
  assert.equal(used.size, n, 'every attachment is referenced');
  return payload;
}

describe('sio wire format (raw)', () => {
  let server;
  before(async () => {
    server = await startSiocEcho([]);
  });
  after(async () => {
    await server?.stopChecked();
  });

  for (const transport of ['polling', 'websocket']) {
    describe(transport, () => {
      async function session(t) {
        const c = new Clients(server, t);
        return c.raw(transport);
      }

      it('Engine.IO handshake on /socket.io/ with the default settings', async (t) => {
        const raw = await session(t);
        assert.deepEqual(Object.keys(raw.handshake), ['sid', 'upgrades', 'pingInterval', 'pingTimeout', 'maxPayload']);
        assert.match(raw.handshake.sid, ID_RE);
        assert.deepEqual(raw.handshake.upgrades, transport === 'polling' ? ['websocket'] : []);
        assert.equal(raw.handshake.pingInterval, 25000);
        assert.equal(raw.handshake.pingTimeout, 20000);
        assert.equal(raw.handshake.maxPayload, 1000000);
      });

      it('CONNECT → 0{"sid":<20 chars>} (≠ the Engine.IO sid), then the "auth" event', async (t) => {
        const raw = await session(t);
        await raw.send('40');
        const text = await raw.nextText();
        const m = /^0\{"sid":"([A-Za-z0-9_-]{20})"\}$/.exec(text);
        assert.ok(m, `CONNECT reply ${text}`);
        assert.notEqual(m[1], raw.sid);
        assert.equal(await raw.nextText(), '2["auth",{}]');
      });

      it('CONNECT with auth and to /custom (with and without the comma), /dynamic-<n>', async (t) => {
        const raw = await session(t);
        await raw.send('40{"token":"x","n":[1,{"d":null}]}');
        assert.match(await raw.nextText(), /^0\{"sid":"[A-Za-z0-9_-]{20}"\}$/);
        assert.equal(await raw.nextText(), '2["auth",{"token":"x","n":[1,{"d":null}]}]');
        await raw.send('40/custom,{"c":1}');
        assert.match(await raw.nextText(), /^0\/custom,\{"sid":"[A-Za-z0-9_-]{20}"\}$/);
        assert.equal(await raw.nextText(), '2/custom,["auth",{"c":1}]');
        await raw.send('40/dynamic-42');
        assert.match(await raw.nextText(), /^0\/dynamic-42,\{"sid":"[A-Za-z0-9_-]{20}"\}$/);
        assert.equal(await raw.nextText(), '2/dynamic-42,["auth",{}]');
        await raw.send('40/dynamic-43,{"room":"r"}');
        assert.match(await raw.nextText(), /^0\/dynamic-43,\{"sid":"[A-Za-z0-9_-]{20}"\}$/);
        assert.equal(await raw.nextText(), '2/dynamic-43,["auth",{"room":"r"}]');
      });

      it('middleware refusal → 4{"message":"refused","data":{"reason":"test"}}', async (t) => {
        const raw = await session(t);
        await raw.send('40{"refuse":true}');
        assert.equal(await raw.nextText(), '4{"message":"refused","data":{"reason":"test"}}');
        await raw.send('40{"refuse":0}');
        assert.match(await raw.nextText(), /^0\{"sid":"[A-Za-z0-9_-]{20}"\}$/, 'refuse: 0 is falsy');
      });

      it('events and acks: 2[...], 2/custom,[...], ack ids, ACK 3<id>[...]', async (t) => {
        const raw = await session(t);
        await raw.connect('/');
        await raw.nextText();
        await raw.connect('/custom');
        await raw.nextText();
        await raw.send('42["message","a",1,{"b":[true,null]}]');
        assert.equal(await raw.nextText(), '2["message-back","a",1,{"b":[true,null]}]');
        await raw.send('42/custom,["message"]');
        assert.equal(await raw.nextText(), '2/custom,["message-back"]');
        await raw.send('4212345["message-with-ack","x"]');
        assert.equal(await raw.nextText(), '312345["x"]');
        await raw.send('42/custom,0["message-with-ack",1,2]');
        assert.equal(await raw.nextText(), '3/custom,0[1,2]');
        await raw.send('427["get-data"]');
        assert.equal(await raw.nextText(), '37[{}]');
        await raw.send('428["set-data",[1]]');
        assert.equal(await raw.nextText(), '38[]', 'cb() → empty ACK payload');
      });

      for (const [name, args, expected, siocDiffers] of JSON_CASES) {
        it(`JSON re-encoding: ${name}`, async (t) => {
          const raw = await session(t);
          await raw.connect('/');
          await raw.nextText();
          await raw.send(`421["message-with-ack"${args === '[]' ? '' : `,${args.trim().slice(1, -1)}`}]`);
          if (siocDiffers && !isSioReference() && siocDiffers !== 'closes') {
            assert.equal(await raw.nextText(), `31${siocDiffers}`);
            return;
          }
          if (siocDiffers && !isSioReference()) {
            assert.ok(await raw.waitClosed(3000), 'sioc closes the connection on a payload it cannot represent');
            // as on any decoding error, the socket's error handler heard it first
            assert.deepEqual(raw.queue, [{ type: '4', data: '2["middleware-error","invalid payload"]' }]);
            return;
          }
          assert.equal(await raw.nextText(), `31${expected}`);
        });
      }

      it('binary event → 51-["message-back",<placeholder>] + the attachment', async (t) => {
        const raw = await session(t);
        await raw.connect('/');
        await raw.nextText();
        await raw.send(`451-["message",${PH(0)}]`, Buffer.from([0, 1, 255]));
        assert.equal(await raw.nextText(), `51-["message-back",${PH(0)}]`);
        assert.deepEqual(await raw.nextBinary(), Buffer.from([0, 1, 255]));
        await raw.send(`451-["message",${PH(0)}]`, Buffer.alloc(0));
        assert.equal(await raw.nextText(), `51-["message-back",${PH(0)}]`);
        assert.deepEqual(await raw.nextBinary(), Buffer.alloc(0));
      });

      it('binary arguments at any depth come back in place (placeholders + attachments)', async (t) => {
        // Node re-deconstructs the arguments: placeholders are renumbered in
        // depth-first order and an attachment referenced twice is sent twice,
        // e.g. 52-["message",{"a":<1>},<0>] + b0 + b1 → 52-["message-back",
        // {"a":<0>},<1>] + b1 + b0. Only the reconstructed values are
        // checked here (any numbering that decodes the same is fine).
        const raw = await session(t);
        await raw.connect('/');
        await raw.nextText();
        await raw.send(`452-["message",{"a":${PH(1)}},${PH(0)}]`, Buffer.from('b0'), Buffer.from('b1'));
        assert.deepEqual(await readBinaryEvent(raw, '5'), ['message-back', { a: Buffer.from('b1') }, Buffer.from('b0')]);
        await raw.send(`451-["message",${PH(0)},[${PH(0)}]]`, Buffer.from('x'));
        assert.deepEqual(await readBinaryEvent(raw, '5'), ['message-back', Buffer.from('x'), [Buffer.from('x')]]);
        await raw.send(`453-["message",[${PH(2)},{"k":[${PH(0)}]}],"s",${PH(1)}]`, Buffer.from('0'), Buffer.from('1'), Buffer.from('2'));
        assert.deepEqual(await readBinaryEvent(raw, '5'),
          ['message-back', [Buffer.from('2'), { k: [Buffer.from('0')] }], 's', Buffer.from('1')]);
      });

      it('binary ack: 51-3[...] → 61-3[<placeholder>]; binary event on /custom → 51-/custom,[...]', async (t) => {
        const raw = await session(t);
        await raw.connect('/');
        await raw.nextText();
        await raw.send(`451-3["message-with-ack",${PH(0)},"t"]`, Buffer.from('b0'));
        assert.equal(await raw.nextText(), `61-3[${PH(0)},"t"]`);
        assert.deepEqual(await raw.nextBinary(), Buffer.from('b0'));
        await raw.connect('/custom');
        await raw.nextText();
        await raw.send(`451-/custom,["message",${PH(0)}]`, Buffer.from('c'));
        assert.equal(await raw.nextText(), `51-/custom,["message-back",${PH(0)}]`);
        assert.deepEqual(await raw.nextBinary(), Buffer.from('c'));
        await raw.send(`451-/custom,9["message-with-ack",${PH(0)}]`, Buffer.from('d'));
        assert.equal(await raw.nextText(), `61-/custom,9[${PH(0)}]`);
        assert.deepEqual(await raw.nextBinary(), Buffer.from('d'));
      });

      it('server → client ack: 2<id>["q",…] with the server\'s own id; the client\'s 3<id>[…] completes it', async (t) => {
        const raw = await session(t);
        await raw.connect('/');
        await raw.nextText();
        await raw.send('421["server-ack",2000,"q",5]');
        const m = /^2(\d+)\["q",5\]$/.exec(await raw.nextText());
        assert.ok(m, 'the event carries an ack id');
        await raw.send(`43${m[1]}[10,"ten"]`);
        assert.equal(await raw.nextText(), '31[{"response":[10,"ten"]}]');
        // A binary answer (BINARY_ACK from the client).
        await raw.send('422["server-ack",2000,"q",6]');
        const m2 = /^2(\d+)\["q",6\]$/.exec(await raw.nextText());
        assert.ok(m2);
        await raw.send(`461-${m2[1]}[${PH(0)}]`, Buffer.from('bin'));
        assert.equal(await raw.nextText(), `61-2[{"response":[${PH(0)}]}]`);
        assert.deepEqual(await raw.nextBinary(), Buffer.from('bin'));
        // No answer → timeout.
        await raw.send('423["server-ack",200,"q",7]');
        assert.match(await raw.nextText(), /^2\d+\["q",7\]$/);
        assert.equal(await raw.nextText(2000), '33[{"error":"operation has timed out"}]');
      });

      it('several packets in one batch (polling: one POST) are all processed in order', async (t) => {
        // (After the CONNECT reply: Node runs the namespace middleware on a
        // later tick, so an EVENT in the same POST as its CONNECT finds no
        // socket yet and closes the connection — a race no client relies on.)
        const raw = await session(t);
        await raw.connect('/');
        assert.equal(await raw.nextText(), '2["auth",{}]');
        await raw.send('421["message-with-ack",1]', '422["message-with-ack",2]', '42["message",3]', '40/custom,');
        assert.equal(await raw.nextText(), '31[1]');
        assert.equal(await raw.nextText(), '32[2]');
        assert.equal(await raw.nextText(), '2["message-back",3]');
        assert.match(await raw.nextText(), /^0\/custom,\{"sid":/);
        assert.equal(await raw.nextText(), '2/custom,["auth",{}]');
      });
    });
  }
});

describe('sio --path /other/', () => {
  let server;
  before(async () => {
    server = await startSiocEcho(['--path', '/other/']);
  });
  after(async () => {
    await server?.stopChecked();
  });

  it('socket.io-client with path /other/ connects; /socket.io/ is not served', async (t) => {
    const c = new Clients(server, t);
    const s = await c.connect('polling', '/', { managerOpts: { path: '/other/' } });
    assert.equal(await ask(s, 'message-with-ack', 'other'), 'other');
    const res = await request(server.port, { path: sioPath() });
    assert.notEqual(res.status, 200);
    const ok = await request(server.port, { path: sioPath().replace('/socket.io/', '/other/') });
    assert.equal(ok.status, 200);
    assert.ok(ok.text.startsWith('0{"sid":'));
  });
});

describe('sio --cors', () => {
  const origin = 'https://app.example';

  it('explicit origins: the listed origin is reflected with credentials; others get no Access-Control-Allow-Origin', async () => {
    const server = await startSiocEcho(['--cors', origin, '--cors', 'https://other.example']);
    try {
      const res = await request(server.port, { path: sioPath(), headers: [['Origin', origin]] });
      assert.equal(res.status, 200);
      assert.equal(res.header('access-control-allow-origin'), origin);
      assert.equal(res.header('access-control-allow-credentials'), 'true');
      const denied = await request(server.port, { path: sioPath(), headers: [['Origin', 'https://evil.example']] });
      assert.equal(denied.header('access-control-allow-origin'), undefined);
      const preflight = await request(server.port, {
        method: 'OPTIONS',
        path: sioPath(),
        headers: [['Origin', origin], ['Access-Control-Request-Method', 'POST']],
      });
      assert.equal(preflight.status, 204);
      assert.equal(preflight.header('access-control-allow-origin'), origin);
    } finally {
      await server.stop();
    }
  });

  it('"*": any origin, no credentials', async () => {
    const server = await startSiocEcho(['--cors', '*']);
    try {
      const res = await request(server.port, { path: sioPath(), headers: [['Origin', origin]] });
      assert.equal(res.status, 200);
      assert.equal(res.header('access-control-allow-origin'), '*');
      assert.equal(res.header('access-control-allow-credentials'), undefined);
    } finally {
      await server.stop();
    }
  });

  it('no --cors: no CORS headers', async () => {
    const server = await startSiocEcho([]);
    try {
      const res = await request(server.port, { path: sioPath(), headers: [['Origin', origin]] });
      assert.equal(res.status, 200);
      assert.equal(res.header('access-control-allow-origin'), undefined);
    } finally {
      await server.stop();
    }
  });
});

