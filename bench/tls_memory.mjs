#!/usr/bin/env node
// The memory an idle TLS client costs the server: RSS of sioc-echo (or the Node reference) with
// N idle Socket.IO clients over wss, and the same over plain ws, each in a fresh server. The
// clients are raw WebSockets (the ws package) that open the Engine.IO session and join "/",
// then stay idle for a moment; the figure is (RSS with N clients - RSS before) / N. Makes its own
// certificate with the openssl CLI; loopback only; bounded to N clients and 60 s per run.
//
//   node bench/tls_memory.mjs build/sioc-echo [N=2000]
//   node bench/tls_memory.mjs tests/integration/ref/sioc-echo.js [N]   (if it takes --tls-*)
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(new URL('../tests/integration/package.json', import.meta.url));
const WebSocket = require('ws');

const [command, countText = '2000'] = process.argv.slice(2);
if (!command) {
  console.error('usage: node bench/tls_memory.mjs SERVER [N]');
  process.exit(2);
}
const count = Number(countText);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sioc-tls-memory-'));
execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
  '-keyout', 'key.pem', '-out', 'cert.pem', '-days', '1', '-subj', '/CN=localhost',
  '-addext', 'subjectAltName=IP:127.0.0.1'], { cwd: dir, stdio: 'ignore' });
const ca = fs.readFileSync(path.join(dir, 'cert.pem'));

const rss = (pid) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function run(tls) {
  const argv = command.endsWith('.js') ? [process.execPath, command] : [command];
  const flags = ['--host', '127.0.0.1', '--port', '0', '--ping-interval', '60000', '--ping-timeout', '60000'];
  if (tls) flags.push('--tls-cert', path.join(dir, 'cert.pem'), '--tls-key', path.join(dir, 'key.pem'));
  const child = spawn(argv[0], [...argv.slice(1), ...flags], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start')), 5000);
    child.stdout.once('data', (data) => {
      clearTimeout(timer);
      resolve(Number(/:(\d+)\s*$/m.exec(data.toString())[1]));
    });
  });
  await sleep(300);
  const before = rss(child.pid);
  const sockets = [];
  const deadline = Date.now() + 60_000;
  for (let i = 0; i < count && Date.now() < deadline; i += 50) {
    const batch = [];
    for (let j = i; j < Math.min(count, i + 50); j++) {
      batch.push(new Promise((resolve, reject) => {
        const ws = new WebSocket(`${tls ? 'wss' : 'ws'}://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`, { ca });
        ws.on('message', (data) => {
          const text = data.toString();
          if (text.startsWith('0')) ws.send('40');
          else if (text.startsWith('40')) resolve();
        });
        ws.on('error', reject);
        sockets.push(ws);
      }));
    }
    await Promise.all(batch);
  }
  await sleep(1000);
  const after = rss(child.pid);
  for (const ws of sockets) ws.terminate();
  child.kill('SIGTERM');
  await new Promise((resolve) => child.once('exit', resolve));
  return { clients: sockets.length, before, after };
}

const kib = (bytes) => (bytes / 1024).toFixed(1);
const plain = await run(false);
const secure = await run(true);
for (const [name, r] of [['ws', plain], ['wss', secure]]) {
  console.log(`${name.padEnd(4)} ${r.clients} idle clients: RSS ${kib(r.before)} -> ${kib(r.after)} KiB, ` +
    `${kib((r.after - r.before) / r.clients)} KiB per client`);
}
console.log(`TLS costs ${kib((secure.after - secure.before - (plain.after - plain.before)) / secure.clients)} KiB more per idle client`);
fs.rmSync(dir, { recursive: true, force: true });
