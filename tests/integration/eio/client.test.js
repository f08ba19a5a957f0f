// engine.io-client (Node) against the echo server: polling only, WebSocket
// only, and polling upgraded to WebSocket.
import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startEioEcho } from '../lib/server.js';
import { openClient } from '../lib/client.js';
import { assertSessionGone, sleep } from '../lib/eio.js';

const MAX_PAYLOAD = 100_000;

const asBuffer = (data) => {
  assert.ok(typeof data !== 'string', `expected binary, got text ${JSON.stringify(String(data).slice(0, 40))}`);
  if (Buffer.isBuffer(data)) return data;
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
};

for (const mode of ['polling', 'websocket', 'upgrade']) {
  describe(`engine.io-client, ${mode}`, () => {
    let server;
    let client;
    const expectedTransport = mode === 'polling' ? 'polling' : 'websocket';

    before(async () => {
      server = await startEioEcho(['--max-payload', String(MAX_PAYLOAD)]);
    });
    after(async () => {
      await server?.stopChecked();
    });
    afterEach(() => {
      client?.close();
      client = null;
    });

    async function connect() {
      client = await openClient(server, mode);
      if (mode === 'upgrade') await client.upgraded();
      assert.equal(client.transportName, expectedTransport);
      return client;
    }

    it('opens a session with a 20-character sid', async () => {
      const c = await openClient(server, mode);
      client = c;
      assert.match(c.sid, /^[A-Za-z0-9_-]{20}$/);
      if (mode === 'upgrade') {
        assert.equal(c.transportName, 'polling');
        await c.upgraded();
      }
      assert.equal(c.transportName, expectedTransport);
    });

    it('echoes text (including multi-byte UTF-8) as text', async () => {
      const c = await connect();
      const texts = ['hello', 'héllo wörld € 𝄞 日本', '{"json":[1,2,3]}', 'a\nb\rc\td'];
      for (const t of texts) c.send(t);
      assert.deepEqual(await c.next(texts.length), texts);
    });

    it('echoes binary (Buffer, ArrayBuffer, Uint8Array view) byte-exactly', async () => {
      const c = await connect();
      const bytes = crypto.randomBytes(300);
      const arrayBuffer = new Uint8Array(bytes).buffer;
      const view = new Uint8Array(arrayBuffer, 17, 100); // offset view: only these 100 bytes
      const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      c.send(bytes);
      c.send(arrayBuffer);
      c.send(view);
      c.send(all);
      c.send(Buffer.alloc(0));
      const got = (await c.next(5)).map(asBuffer);
      assert.deepEqual(got[0], bytes);
      assert.deepEqual(got[1], bytes);
      assert.deepEqual(got[2], bytes.subarray(17, 117));
      assert.deepEqual(got[3], all);
      assert.deepEqual(got[4], Buffer.alloc(0));
    });

    it('echoes 300 mixed text/binary messages in order', async () => {
      const c = await connect();
      const sent = [];
      for (let i = 0; i < 300; i++) {
        const m = i % 3 === 2 ? Buffer.from(`bin-${i}`) : `text-${i}`;
        sent.push(m);
        c.send(m);
      }
      const got = await c.next(sent.length, 10_000);
      got.forEach((m, i) => {
        if (typeof sent[i] === 'string') assert.equal(m, sent[i], `message ${i}`);
        else assert.deepEqual(asBuffer(m), sent[i], `message ${i}`);
      });
    });

    it('echoes a text message close to --max-payload', async () => {
      const c = await connect();
      // "4" + text fits in one polling POST / one WebSocket frame of MAX_PAYLOAD bytes.
      const text = 'x'.repeat(MAX_PAYLOAD - 16).replace(/x{10}$/, '0123456789');
      c.send(text);
      const [got] = await c.next(1, 10_000);
      assert.equal(got.length, text.length);
      assert.equal(got, text);
    });

    it('echoes a binary message close to --max-payload', async () => {
      const c = await connect();
      // Over polling binary travels as "b" + base64 (4/3 larger) in a POST body.
      const size = expectedTransport === 'polling' ? Math.floor((MAX_PAYLOAD - 16) / 4) * 3 : MAX_PAYLOAD - 16;
      const bytes = crypto.randomBytes(size);
      c.send(bytes);
      const [got] = await c.next(1, 10_000);
      assert.deepEqual(asBuffer(got), bytes);
    });

    it('closing from the client ends the session on the server', async () => {
      const c = await connect();
      c.send('before close');
      assert.deepEqual(await c.next(1), ['before close']);
      const sid = c.sid;
      c.close();
      await assertSessionGone(server, sid);
    });
  });
}

for (const mode of ['polling', 'websocket']) {
  describe(`heartbeat with engine.io-client, ${mode}`, () => {
    let server;
    let client;
    before(async () => {
      server = await startEioEcho(['--ping-interval', '200', '--ping-timeout', '400']);
    });
    after(async () => {
      client?.close();
      await server?.stopChecked();
    });

    it('pings arrive about every pingInterval and the answered session stays open', async () => {
      client = await openClient(server, mode);
      const windowMs = 1500; // ~7 pings at 200 ms; loose bounds, not a timing test
      await sleep(windowMs);
      assert.ok(client.pings >= 3 && client.pings <= 15, `got ${client.pings} pings in ${windowMs} ms with pingInterval 200`);
      assert.equal(client.closeReason, null, 'session closed although pongs were sent');
      client.send('still here');
      assert.deepEqual(await client.next(1), ['still here']);
    });
  });
}
