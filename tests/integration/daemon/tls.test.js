// TLS on both listeners (docs/operations.md "TLS"): the test makes its own CA and server
// certificates with the openssl CLI, then drives the daemon with the official socket.io-client
// over https polling, wss and the upgrade between them, curl over https to the API, and Node's
// tls module for what a client library hides (the served certificate's serial, ALPN, the
// version). A SIGHUP rotation is seen by a new connection while an old one stays; a file that no
// longer loads keeps the running certificate; plaintext HTTP and garbage records on the TLS port
// are closed cleanly (stopChecked fails on any sanitizer report).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { Duplex } from 'node:stream';
import { io } from 'socket.io-client';
import {
  requireBin, tempDir, baseConfig, startDaemon, makeUser, tokenFor, sleep, writeConfig, API_KEY,
} from '../lib/daemon.js';

const haveOpenssl = (() => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

const openssl = (dir, args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });

/** A CA (ca.pem) in dir, once. */
function makeCa(dir) {
  openssl(dir, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=sioc test CA']);
  return fs.readFileSync(path.join(dir, 'ca.pem'));
}

/** A server certificate for 127.0.0.1 signed by dir's CA, with `serial` (hex), written to
 * dir/<name>.pem and dir/<name>.key; returns their paths. */
function makeServerCert(dir, name, serial) {
  fs.writeFileSync(path.join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl(dir, ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', '/CN=localhost']);
  openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key',
    '-set_serial', `0x${serial}`, '-days', '2', '-extfile', 'san.ext', '-out', `${name}.pem`]);
  return { cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}.key`) };
}

/** A TLS connection to port; resolves to the socket once the handshake is done. */
function tlsConnect(port, ca, options = {}) {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost', ...options }, () => resolve(socket));
    socket.once('error', reject);
  });
}

async function servedSerial(port, ca) {
  const socket = await tlsConnect(port, ca);
  const serial = socket.getPeerCertificate().serialNumber;
  socket.destroy();
  return serial;
}

/** Resolves once the raw TCP connection is closed by the server, with what it sent before. */
function rawExchange(port, bytes) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    const socket = net.connect(port, '127.0.0.1', () => socket.write(bytes));
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', () => {}); // a reset is a close too
    socket.on('close', () => resolve(Buffer.concat(chunks)));
    setTimeout(() => {
      socket.destroy();
      reject(new Error('the server did not close the connection within 5 s'));
    }, 5000).unref();
  });
}

function connect(port, ca, user, transports) {
  const socket = io(`https://127.0.0.1:${port}/`, {
    ca, transports, auth: { token: tokenFor(user) }, reconnection: false, forceNew: true, timeout: 5000,
  });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (error) => {
      socket.close();
      reject(error);
    });
  });
}

const waitFor = async (daemon, pattern) => {
  for (let i = 0; i < 100 && !pattern.test(daemon.stderr); i++) await sleep(50);
  assert.match(daemon.stderr, pattern);
};

describe('TLS listeners', { skip: haveOpenssl ? false : 'the openssl CLI is not installed' }, () => {
  let dir, ca, daemon, files, config;
  before(async () => {
    requireBin();
    dir = tempDir('tls');
    ca = makeCa(dir);
    const first = makeServerCert(dir, 'first', '5101');
    // The daemon reads live.pem / live.key; a rotation replaces them in place, as renewals do.
    files = { cert: path.join(dir, 'live.pem'), key: path.join(dir, 'live.key') };
    fs.copyFileSync(first.cert, files.cert);
    fs.copyFileSync(first.key, files.key);
    const base = baseConfig(dir);
    config = {
      ...base,
      listen: { ...base.listen, tls: files },
      api: { ...base.api, listen: { ...base.api.listen, tls: files } },
    };
    daemon = await startDaemon(dir, config);
  });
  after(async () => {
    await daemon?.stopChecked();
  });

  it('socket.io-client connects over https long-polling and gets acknowledgements', async () => {
    const socket = await connect(daemon.port, ca, makeUser('Poll'), ['polling']);
    try {
      assert.equal(socket.io.engine.transport.name, 'polling');
      const joined = await socket.timeout(5000).emitWithAck('room:join', 'tls-room');
      assert.equal(joined.ok, true, JSON.stringify(joined));
    } finally {
      socket.close();
    }
  });

  it('socket.io-client connects over wss, and upgrades from https polling to wss', async () => {
    const direct = await connect(daemon.port, ca, makeUser('Wss'), ['websocket']);
    const upgrading = await connect(daemon.port, ca, makeUser('Upgrade'), ['polling', 'websocket']);
    try {
      assert.equal(direct.io.engine.transport.name, 'websocket');
      assert.equal((await direct.timeout(5000).emitWithAck('room:join', 'tls-ws')).ok, true);
      for (let i = 0; i < 100 && upgrading.io.engine.transport.name !== 'websocket'; i++) await sleep(20);
      assert.equal(upgrading.io.engine.transport.name, 'websocket');
      const text = 'x'.repeat(1500);
      const sent = await upgrading.timeout(5000).emitWithAck('room:join', 'tls-big');
      assert.equal(sent.ok, true);
      const message = await upgrading.timeout(5000).emitWithAck('message:send', { roomId: 'tls-big', text });
      assert.equal(message.ok, true, JSON.stringify(message));
    } finally {
      direct.close();
      upgrading.close();
    }
  });

  it('negotiates TLS 1.3 with ALPN http/1.1 (also for a client offering h2 first), and TLS 1.2', async () => {
    const modern = await tlsConnect(daemon.port, ca, { ALPNProtocols: ['h2', 'http/1.1'] });
    assert.equal(modern.getProtocol(), 'TLSv1.3');
    assert.equal(modern.alpnProtocol, 'http/1.1');
    modern.destroy();
    const older = await tlsConnect(daemon.port, ca, { maxVersion: 'TLSv1.2' });
    assert.equal(older.getProtocol(), 'TLSv1.2');
    older.destroy();
  });

  it('the API answers curl over https', () => {
    const out = execFileSync('curl', ['-sS', '--cacert', path.join(dir, 'ca.pem'), '-H', `Authorization: Bearer ${API_KEY}`,
      '-w', '\n%{http_code}', `https://127.0.0.1:${daemon.apiPort}/readyz`], { encoding: 'utf8' });
    const [body, status] = out.split('\n');
    assert.equal(status, '200');
    assert.equal(JSON.parse(body).status, 'ok');
  });

  it('answers 100 pipelined requests arriving as 100 records in one read (input held while paused is kept)', async () => {
    // Each /readyz is answered later (a store read), and the HTTP layer pauses reading until
    // then: the records that came in the same read must wait, in order, and nothing is lost.
    // Node's TLS socket runs on a stream of ours that sends its 100 records in one TCP write.
    const raw = net.connect(daemon.apiPort, '127.0.0.1');
    await new Promise((resolve) => raw.once('connect', resolve));
    let held = null;
    const wire = new Duplex({
      write(chunk, encoding, callback) {
        if (held) held.push(chunk);
        else raw.write(chunk);
        callback();
      },
      read() {},
    });
    raw.on('data', (chunk) => wire.push(chunk));
    raw.on('close', () => wire.push(null));
    const socket = tls.connect({ socket: wire, ca, servername: 'localhost' });
    await new Promise((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    });
    const count = 100;
    let received = '';
    const done = new Promise((resolve, reject) => {
      socket.on('data', (chunk) => {
        received += chunk.toString('latin1');
        if ((received.match(/HTTP\/1\.1 200 OK/g) ?? []).length === count) resolve();
      });
      socket.on('close', () => reject(new Error(`closed after ${(received.match(/HTTP\/1\.1 /g) ?? []).length} answers`)));
      setTimeout(() => reject(new Error('no full answer within 5 s')), 5000).unref();
    });
    held = [];
    for (let i = 0; i < count; i++) {
      // One at a time: writes made while one is pending would be joined into one record.
      await new Promise((resolve) => socket.write('GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n', resolve));
    }
    const records = Buffer.concat(held);
    let recordCount = 0;
    for (let at = 0; at + 5 <= records.length; at += 5 + records.readUInt16BE(at + 3)) recordCount++;
    assert.ok(recordCount >= count, `${recordCount} records`);
    raw.write(records);
    held = null;
    await done;
    assert.equal((received.match(/\{"status":"ok","checks":\{"listening":"ok","store":"ok"\}\}/g) ?? []).length, count);
    socket.destroy();
    raw.destroy();
  });

  it('plaintext HTTP and garbage records on a TLS port are closed, and the next handshake works', async () => {
    const plain = await rawExchange(daemon.port, 'GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.ok(!plain.toString('latin1').startsWith('HTTP/'), 'no plaintext answer');
    // A handshake record whose body is not a ClientHello: OpenSSL's alert (type 21), then a close.
    const bogus = Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x00, 0x20]), Buffer.alloc(0x20, 0xee)]);
    const alert = await rawExchange(daemon.port, bogus);
    assert.equal(alert[0], 21, `an alert record: ${alert.toString('hex')}`);
    // A record length over the TLS maximum, and random bytes.
    await rawExchange(daemon.port, Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff, 1, 2, 3]));
    await rawExchange(daemon.port, Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7919) & 0xff)));
    await rawExchange(daemon.apiPort, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.equal(await servedSerial(daemon.port, ca), '5101');
  });

  it('SIGHUP: a rotated certificate serves new connections, open ones stay; a bad file keeps the running one', async () => {
    const old = await connect(daemon.port, ca, makeUser('Old'), ['websocket']);
    const oldApi = await tlsConnect(daemon.apiPort, ca);
    try {
      assert.equal(await servedSerial(daemon.port, ca), '5101');
      const second = makeServerCert(dir, 'second', '5202');
      fs.copyFileSync(second.cert, files.cert);
      fs.copyFileSync(second.key, files.key);
      process.kill(daemon.child.pid, 'SIGHUP');
      await waitFor(daemon, /SIGHUP: api\.listen\.tls: \S+live\.pem loaded \(for new connections\)/);
      assert.match(daemon.stderr, /SIGHUP: listen\.tls: \S+live\.pem loaded/);
      assert.doesNotMatch(daemon.stderr, /takes a restart/);
      assert.equal(await servedSerial(daemon.port, ca), '5202');
      assert.equal(await servedSerial(daemon.apiPort, ca), '5202');
      // The connection opened on the first certificate is still up and served.
      assert.equal(old.connected, true);
      assert.equal((await old.timeout(5000).emitWithAck('room:join', 'after-rotation')).ok, true);
      oldApi.write(`GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n`);
      const answer = await new Promise((resolve) => oldApi.once('data', resolve));
      assert.match(answer.toString(), /^HTTP\/1\.1 200 /);

      fs.writeFileSync(files.cert, 'not a certificate\n');
      process.kill(daemon.child.pid, 'SIGHUP');
      await waitFor(daemon, /error SIGHUP: api\.listen\.tls: certificate \S+live\.pem: .+; the running certificate stays/);
      assert.match(daemon.stderr, /error SIGHUP: listen\.tls: certificate \S+live\.pem: .+; the running certificate stays/);
      assert.equal(await servedSerial(daemon.port, ca), '5202');
      const fresh = await connect(daemon.port, ca, makeUser('Fresh'), ['websocket']);
      fresh.close();
    } finally {
      old.close();
      oldApi.destroy();
      fs.copyFileSync(path.join(dir, 'second.pem'), files.cert);
    }
  });
});

describe('TLS configuration', { skip: haveOpenssl ? false : 'the openssl CLI is not installed' }, () => {
  it('refuses a tls object without key, and files that do not load, at start', async () => {
    requireBin();
    const dir = tempDir('tls-bad');
    makeCa(dir);
    const good = makeServerCert(dir, 'good', '77');
    const base = baseConfig(dir);
    await assert.rejects(startDaemon(dir, { ...base, listen: { ...base.listen, tls: { cert: good.cert } } }),
      /listen\.tls: expected both "cert" and "key" \(PEM files\)/);
    const other = makeServerCert(dir, 'other', '78');
    await assert.rejects(startDaemon(dir, { ...base, api: { ...base.api, listen: { ...base.api.listen, tls: { cert: good.cert, key: other.key } } } }),
      /api\.listen\.tls: private key \S+other\.key: .*key values mismatch/);
    await assert.rejects(startDaemon(dir, { ...base, listen: { ...base.listen, tls: { cert: path.join(dir, 'none.pem'), key: good.key } } }),
      /listen\.tls: certificate \S+none\.pem: /);
  });

  it('turning TLS on at SIGHUP is named as needing a restart', async () => {
    requireBin();
    const dir = tempDir('tls-on');
    makeCa(dir);
    const good = makeServerCert(dir, 'good', '79');
    const config = baseConfig(dir);
    const daemon = await startDaemon(dir, config);
    try {
      writeConfig(dir, { ...config, listen: { ...config.listen, tls: good } });
      process.kill(daemon.child.pid, 'SIGHUP');
      await waitFor(daemon, /warn  SIGHUP: listen changed in \S*sioc\.json: that takes a restart/);
    } finally {
      await daemon.stopChecked();
    }
  });
});
