#!/usr/bin/env node
// permessage-deflate benchmark (issue 13): sioc against Node's socket.io 4.8 in the same run.
//
//   node bench/compression.mjs --sioc-echo build/sioc-echo [--quick] [--out DIR]
//
// 1. Memory: RSS of the server per connected client, each client having sent and received one
//    compressed message (so Node's ws has made its zlib streams), at --clients clients (2000;
//    quick: 100): compression off, on (sioc; Node with sioc's no_context_takeover settings), and
//    Node's default perMessageDeflate: true (context takeover).
// 2. Fan-out: one client broadcasts --messages messages (200; quick: 20) of a 2 KB chat-like JSON
//    to --fanout clients (200; quick: 20): deliveries per second and bytes on the wire per
//    delivery, compression off and on.
//
// The clients are raw WebSockets (node:net, frames by hand, zlib.inflateRawSync per message: no
// zlib state per client, so thousands fit in the generator). Servers listen on 127.0.0.1 and run
// on core 0 when taskset exists (bench/run.sh runs this on core 1); every wait is bounded.
import net from 'node:net';
import zlib from 'node:zlib';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const quick = args.includes('--quick');
const siocEcho = path.resolve(flag('--sioc-echo', path.join(here, '..', 'build', 'sioc-echo')));
const clientsWanted = Number(flag('--clients', quick ? 100 : 2000));
const fanoutClients = Number(flag('--fanout', quick ? 20 : 200));
const messages = Number(flag('--messages', quick ? 20 : 200));
const outDir = flag('--out', null);
const TAIL = Buffer.from([0, 0, 0xff, 0xff]);
const OFFER = 'permessage-deflate; client_max_window_bits';
const STEP_TIMEOUT_MS = quick ? 20000 : 120000;

// A chat message of about 2 KB: repeated keys and similar values, as JSON traffic is.
const CHAT = Array.from({ length: 12 }, (_, i) => ({
  id: `msg-${1000 + i}`, room: 'general', user: { id: 40 + (i % 3), name: ['ada', 'bob', 'cy'][i % 3] },
  text: `message number ${i} about the release plan and the benchmark figures`, sentAt: 1764669000000 + i * 1000,
}));

const log = (m) => process.stderr.write(`[compression ${new Date().toISOString().slice(11, 19)}] ${m}\n`);

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([promise, new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  })]).finally(() => clearTimeout(timer));
}

// ---- servers ---------------------------------------------------------------------------------

const hasTaskset = (() => {
  try {
    execFileSync('taskset', ['-c', '0', 'true']);
    return true;
  } catch {
    return false;
  }
})();

async function startServer(kind, deflate) {
  const argv = kind === 'sioc'
    ? [siocEcho, '--host', '127.0.0.1', '--port', '0', ...(deflate === 'off' ? [] : ['--per-message-deflate'])]
    : [process.execPath, path.join(here, 'compression-node.cjs'), '--port', '0', '--per-message-deflate', deflate];
  const [file, ...rest] = hasTaskset ? ['taskset', '-c', '0', ...argv] : argv;
  const child = spawn(file, rest, { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await withTimeout(new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const match = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
      if (match) resolve(Number(match[1]));
    });
    child.on('exit', (code) => reject(new Error(`${kind} exited with ${code}`)));
  }), 10000, `${kind} start`);
  child.stdout.resume();
  return { child, port, kind, deflate };
}

async function stopServer(server) {
  if (server.child.exitCode !== null) return;
  const exited = new Promise((resolve) => server.child.once('exit', resolve));
  server.child.kill('SIGTERM');
  const timer = setTimeout(() => server.child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

function rssKiB(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)[1]);
}

// ---- raw Socket.IO client over WebSocket -----------------------------------------------------

function frame(opcode, payload, rsv1) {
  const length = payload.length;
  const head = length < 126 ? Buffer.alloc(2) : length < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
  head[0] = 0x80 | (rsv1 ? 0x40 : 0) | opcode;
  if (length < 126) head[1] = 0x80 | length;
  else if (length < 65536) {
    head[1] = 0x80 | 126;
    head.writeUInt16BE(length, 2);
  } else {
    head[1] = 0x80 | 127;
    head.writeBigUInt64BE(BigInt(length), 2);
  }
  const key = crypto.randomBytes(4);
  const masked = Buffer.alloc(length);
  for (let i = 0; i < length; i++) masked[i] = payload[i] ^ key[i & 3];
  return Buffer.concat([head, key, masked]);
}

class Client {
  constructor(port, compress) {
    this.port = port;
    this.compress = compress;
    this.bytes = 0;
    this.buffer = Buffer.alloc(0);
    this.handshaken = false;
    this.negotiated = false;
    this.onText = null;
  }

  open() {
    return new Promise((resolve, reject) => {
      this.socket = net.connect(this.port, '127.0.0.1');
      this.socket.on('error', reject);
      this.socket.on('connect', () => {
        const key = crypto.randomBytes(16).toString('base64');
        this.socket.write(`GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\n`
          + 'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n'
          + `Sec-WebSocket-Key: ${key}\r\n${this.compress ? `Sec-WebSocket-Extensions: ${OFFER}\r\n` : ''}\r\n`);
      });
      this.socket.on('data', (chunk) => {
        this.bytes += chunk.length;
        this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
        try {
          this.parse(resolve);
        } catch (err) {
          reject(err);
        }
      });
    });
  }

  parse(opened) {
    if (!this.handshaken) {
      const end = this.buffer.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.buffer.subarray(0, end).toString('latin1');
      if (!head.startsWith('HTTP/1.1 101')) throw new Error(`handshake: ${head.split('\r\n')[0]}`);
      this.negotiated = /sec-websocket-extensions: permessage-deflate/i.test(head);
      this.takeover = this.negotiated && !/server_no_context_takeover/i.test(head);
      this.handshaken = true;
      this.buffer = this.buffer.subarray(end + 4);
    }
    for (;;) {
      if (this.buffer.length < 2) return;
      let length = this.buffer[1] & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (this.buffer.length < 4) return;
        length = this.buffer.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (this.buffer.length < 10) return;
        length = Number(this.buffer.readBigUInt64BE(2));
        offset = 10;
      }
      if (this.buffer.length < offset + length) return;
      const rsv1 = (this.buffer[0] & 0x40) !== 0;
      const opcode = this.buffer[0] & 0x0f;
      let payload = this.buffer.subarray(offset, offset + length);
      this.buffer = this.buffer.subarray(offset + length);
      if (opcode !== 1) continue;
      if (rsv1) payload = this.inflate(payload);
      const text = payload.toString('utf8');
      if (text === '2') this.send('3');
      else if (text[0] === '0') {
        this.send('40');
      } else if (text.startsWith('40')) opened();
      else if (this.onText) this.onText(text);
    }
  }

  // Without a context kept by the server (sioc, Node with no_context_takeover) every message
  // inflates alone; with Node's default the stream so far is inflated again (few messages there).
  inflate(payload) {
    const options = { finishFlush: zlib.constants.Z_SYNC_FLUSH };
    if (!this.takeover) return zlib.inflateRawSync(Buffer.concat([payload, TAIL]), options);
    this.history = Buffer.concat([this.history ?? Buffer.alloc(0), payload, TAIL]);
    const all = zlib.inflateRawSync(this.history, options);
    const message = all.subarray(this.inflated ?? 0);
    this.inflated = all.length;
    return message;
  }

  send(text) {
    const data = Buffer.from(text, 'utf8');
    if (this.negotiated && data.length >= 1024) {
      const deflated = zlib.deflateRawSync(data, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
      this.socket.write(frame(1, deflated.subarray(0, deflated.length - 4), true));
    } else {
      this.socket.write(frame(1, data, false));
    }
  }

  close() {
    this.socket.destroy();
  }
}

async function connectMany(port, count, compress) {
  const clients = [];
  const batch = 100;
  for (let i = 0; i < count; i += batch) {
    const group = Array.from({ length: Math.min(batch, count - i) }, () => new Client(port, compress));
    await withTimeout(Promise.all(group.map((c) => c.open())), STEP_TIMEOUT_MS, `connect ${count}`);
    clients.push(...group);
  }
  return clients;
}

// ---- scenarios -------------------------------------------------------------------------------

const settle = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function measureMemory(kind, deflate) {
  const server = await startServer(kind, deflate);
  try {
    await settle(300);
    const before = rssKiB(server.child.pid);
    const clients = await connectMany(server.port, clientsWanted, deflate !== 'off');
    const body = `42${JSON.stringify(['message', CHAT])}`;
    await withTimeout(Promise.all(clients.map((c) => new Promise((resolve) => {
      c.onText = (text) => {
        if (text.startsWith('42["message-back"')) resolve();
      };
      c.send(body);
    }))), STEP_TIMEOUT_MS, 'one echo per client');
    await settle(1000);
    const after = rssKiB(server.child.pid);
    const negotiated = clients.filter((c) => c.negotiated).length;
    for (const c of clients) c.close();
    return { server: kind, deflate, clients: clients.length, negotiated, rss_before_kib: before, rss_after_kib: after,
      kib_per_client: Number(((after - before) / clients.length).toFixed(2)) };
  } finally {
    await stopServer(server);
  }
}

async function measureFanout(kind, deflate) {
  const server = await startServer(kind, deflate);
  try {
    const compress = deflate !== 'off';
    const receivers = await connectMany(server.port, fanoutClients, compress);
    const [sender] = await connectMany(server.port, 1, compress);
    const body = `42${JSON.stringify(['broadcast', 'fan', CHAT])}`;
    for (const c of receivers) c.bytes = 0;
    let delivered = 0;
    const total = receivers.length * messages;
    const done = new Promise((resolve) => {
      for (const c of receivers) {
        c.onText = (text) => {
          if (text.startsWith('42["fan"') && ++delivered === total) resolve();
        };
      }
    });
    const started = process.hrtime.bigint();
    for (let i = 0; i < messages; i++) sender.send(body);
    await withTimeout(done, STEP_TIMEOUT_MS, `${total} deliveries`);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const bytes = receivers.reduce((sum, c) => sum + c.bytes, 0);
    for (const c of [...receivers, sender]) c.close();
    return { server: kind, deflate, receivers: receivers.length, messages, message_bytes: Buffer.byteLength(body) - 'broadcast'.length - 3,
      deliveries_per_second: Math.round(total / seconds), wire_bytes_per_delivery: Math.round(bytes / total) };
  } finally {
    await stopServer(server);
  }
}

const memory = [];
const fanout = [];
for (const [kind, deflate] of [['sioc', 'off'], ['sioc', 'nct'], ['node', 'off'], ['node', 'nct'], ['node', 'takeover']]) {
  log(`memory: ${kind} ${deflate}, ${clientsWanted} clients`);
  memory.push(await measureMemory(kind, deflate));
}
for (const [kind, deflate] of [['sioc', 'off'], ['sioc', 'nct'], ['node', 'off'], ['node', 'nct']]) {
  log(`fan-out: ${kind} ${deflate}, ${fanoutClients} × ${messages}`);
  fanout.push(await measureFanout(kind, deflate));
}

const label = (d) => ({ off: 'off', nct: 'on (no context takeover)', takeover: 'on (Node default: context takeover)' }[d]);
const lines = [
  '# permessage-deflate benchmark',
  '',
  `Written by \`bench/compression.mjs\` (${quick ? 'quick' : 'full'} run, ${new Date().toISOString().slice(0, 10)}; `
    + 'bench/run.sh copies a full run to docs/benchmarks-compression.md), servers on core 0 when taskset exists.',
  '',
  'sioc negotiates `server_no_context_takeover; client_no_context_takeover` and keeps one deflate and one inflate',
  'stream per loop, reset after each message, so a compressed connection costs what a plain one costs; Node\'s ws keeps',
  'a deflate and an inflate stream per socket once it has used them. sioc compresses a broadcast once for all its',
  'recipients (the compressed frame hangs off the shared buffer), Node once per recipient; sioc\'s figure with',
  'compression is bounded by this generator, which inflates every delivery on one core.',
  '',
  `Memory: server RSS growth per client, ${clientsWanted} WebSocket clients that each sent and received one 2 KB compressible message.`,
  '',
  '| server | compression | clients negotiated | KiB per client |',
  '| --- | --- | --- | --- |',
  ...memory.map((m) => `| ${m.server} | ${label(m.deflate)} | ${m.negotiated} / ${m.clients} | ${m.kib_per_client} |`),
  '',
  `Fan-out: ${messages} broadcasts of a ${fanout[0].message_bytes}-byte JSON message to ${fanoutClients} clients.`,
  '',
  '| server | compression | deliveries/s | bytes on the wire per delivery |',
  '| --- | --- | --- | --- |',
  ...fanout.map((f) => `| ${f.server} | ${label(f.deflate)} | ${f.deliveries_per_second} | ${f.wire_bytes_per_delivery} |`),
  '',
];
const ratio = (a, b) => (b ? (a / b).toFixed(2) : 'n/a');
const find = (list, server, deflate) => list.find((x) => x.server === server && x.deflate === deflate);
lines.push(`sioc / Node deliveries/s: off ${ratio(find(fanout, 'sioc', 'off').deliveries_per_second, find(fanout, 'node', 'off').deliveries_per_second)}, `
  + `on ${ratio(find(fanout, 'sioc', 'nct').deliveries_per_second, find(fanout, 'node', 'nct').deliveries_per_second)}`, '');
const report = lines.join('\n');
process.stdout.write(`${report}\n`);
if (outDir) {
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'compression.json'), `${JSON.stringify({ memory, fanout }, null, 2)}\n`);
  fs.writeFileSync(path.join(outDir, 'compression.md'), `${report}\n`);
}
