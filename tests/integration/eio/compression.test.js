// httpCompression: polling answers of at least 1024 bytes are compressed when Accept-Encoding
// allows gzip or deflate, the encoding chosen by the negotiator module's rules (as Node).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import crypto from 'node:crypto';
import { startEioEcho } from '../lib/server.js';
import { handshake, send, poll, decodePayload, SEP } from '../lib/eio.js';
import { openClient } from '../lib/client.js';

/** One message of `size` payload bytes ("4" + text) echoed, then polled with `acceptEncoding`. */
async function echoPolled(server, size, acceptEncoding, body) {
  const { sid } = await handshake(server);
  const payload = body ?? `4${'a'.repeat(size - 1)}`;
  await send(server, sid, payload);
  const headers = acceptEncoding === null ? [] : [['Accept-Encoding', acceptEncoding]];
  const res = await poll(server, sid, { headers });
  await send(server, sid, '1');
  return { res, payload };
}

function decoded(res) {
  const encoding = res.header('content-encoding');
  if (encoding === 'gzip') return zlib.gunzipSync(res.body).toString('utf8');
  if (encoding === 'deflate') return zlib.inflateSync(res.body).toString('utf8');
  assert.equal(encoding, undefined);
  return res.body.toString('utf8');
}

describe('httpCompression (on by default, threshold 1024)', () => {
  let server;
  before(async () => {
    server = await startEioEcho();
  });
  after(async () => {
    await server?.stopChecked();
  });

  for (const encoding of ['gzip', 'deflate']) {
    it(`Accept-Encoding: ${encoding} → Content-Encoding: ${encoding}, the payload inflates back`, async () => {
      const { res, payload } = await echoPolled(server, 5000, encoding);
      assert.equal(res.status, 200);
      assert.equal(res.header('content-encoding'), encoding);
      assert.ok(res.body.length < 200, `compressed to ${res.body.length} bytes`);
      assert.equal(decoded(res), payload);
    });
  }

  it('no Accept-Encoding: sent as it is', async () => {
    const { res, payload } = await echoPolled(server, 5000, null);
    assert.equal(res.header('content-encoding'), undefined);
    assert.equal(res.text, payload);
  });

  it('1023 bytes are not compressed, 1024 are', async () => {
    assert.equal((await echoPolled(server, 1023, 'gzip')).res.header('content-encoding'), undefined);
    assert.equal((await echoPolled(server, 1024, 'gzip')).res.header('content-encoding'), 'gzip');
  });

  it('a payload of several packets, binary ones too, inflates to the same packets', async () => {
    const bin = crypto.randomBytes(600);
    const body = [`4${'x'.repeat(700)}`, `b${bin.toString('base64')}`, `4${'y'.repeat(300)}`].join(SEP);
    const { res } = await echoPolled(server, 0, 'gzip, deflate', body);
    assert.equal(res.header('content-encoding'), 'gzip');
    const packets = decodePayload(decoded(res));
    assert.deepEqual(packets.map((p) => p.type), ['4', 'b', '4']);
    assert.equal(packets[0].data, 'x'.repeat(700));
    assert.deepEqual(packets[1].data, bin);
  });

  // The negotiator module's answers, which Node gives (checked against the reference).
  const table = [
    ['', null], ['gzip, deflate', 'gzip'], ['deflate, gzip', 'deflate'], ['gzip;q=0.5, deflate', 'deflate'],
    ['gzip;q=0', null], ['*', 'gzip'], ['*;q=0, gzip', 'gzip'], ['identity', null], ['br', null], ['GZIP', 'gzip'],
    ['deflate;q=0.5, *', 'gzip'], ['gzip;q=abc, deflate;q=0.1', 'deflate'], ['gzip;q=0.5, deflate;q=0.5', 'gzip'],
    ['x;q=1,gzip;q=0.2;q=0.9', 'gzip'], ['gzip x', null], ['gzip;q', null], ['deflate;q=1e0, gzip;q=0.9', 'deflate'],
    ['gzip;q=-1, deflate;q=.5', 'deflate'], [' ,gzip', 'gzip'],
  ];
  for (const [acceptEncoding, expected] of table) {
    it(`Accept-Encoding ${JSON.stringify(acceptEncoding)} → ${expected ?? 'none'}`, async () => {
      const { res, payload } = await echoPolled(server, 2000, acceptEncoding);
      assert.equal(res.header('content-encoding'), expected ?? undefined);
      assert.equal(decoded(res), payload);
    });
  }

  it('engine.io-client over polling still echoes large messages', async () => {
    const client = await openClient(server, 'polling');
    try {
      const big = 'z'.repeat(50_000);
      client.send(big);
      assert.deepEqual(await client.next(), [big]);
    } finally {
      client.close();
    }
  });
});

describe('httpCompression options', () => {
  it('--http-compression false: never compressed', async () => {
    const server = await startEioEcho(['--http-compression', 'false']);
    try {
      const { res } = await echoPolled(server, 5000, 'gzip');
      assert.equal(res.header('content-encoding'), undefined);
    } finally {
      await server.stopChecked();
    }
  });

  it('--http-compression-threshold 100: 100 bytes are compressed', async () => {
    const server = await startEioEcho(['--http-compression-threshold', '100']);
    try {
      assert.equal((await echoPolled(server, 99, 'gzip')).res.header('content-encoding'), undefined);
      const { res, payload } = await echoPolled(server, 100, 'deflate');
      assert.equal(res.header('content-encoding'), 'deflate');
      assert.equal(decoded(res), payload);
    } finally {
      await server.stopChecked();
    }
  });
});
