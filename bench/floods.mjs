#!/usr/bin/env node
// The three one-connection floods of issue 15 against an Engine.IO server, with the server's RSS
// growth (peak minus before) for each: pipelined requests (answers read), WebSocket pings whose
// pongs are never read, pipelined requests whose answers are never read. Loopback only, each
// flood bounded to 48 MB and 4 s.
//
//   node bench/floods.mjs build/eio-echo [--max-buffered-bytes N]
//   node bench/floods.mjs tests/integration/ref/eio-echo.js      (the Node reference)
import { spawn } from 'node:child_process';
import * as floods from '../tests/integration/lib/floods.js';

const [command, ...flags] = process.argv.slice(2);
if (!command) {
  console.error('usage: node bench/floods.mjs SERVER [FLAGS...]');
  process.exit(2);
}
const argv = command.endsWith('.js') ? [process.execPath, command] : [command];
const child = spawn(argv[0], [...argv.slice(1), '--host', '127.0.0.1', '--port', '0', ...flags],
  { stdio: ['ignore', 'pipe', 'inherit'] });
const port = await new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error('server did not start')), 5000);
  child.stdout.once('data', (data) => {
    clearTimeout(timer);
    resolve(Number(/:(\d+)\s*$/m.exec(data.toString())[1]));
  });
});
const mb = (bytes) => (bytes / 1048576).toFixed(1);
const runs = [
  ['pipelined requests (20,000)', () => floods.pipelinedRequestsFlood(child.pid, port, { count: 20_000 })],
  ['ping flood, no reading', () => floods.pingFlood(child.pid, port, '/engine.io/?EIO=4&transport=websocket', { totalBytes: 48 << 20, durationMs: 4000 })],
  ['pipelined, no reading', () => floods.pipelinedNoReadFlood(child.pid, port, { totalBytes: 48 << 20, durationMs: 4000 })],
];
try {
  for (const [name, run] of runs) {
    const result = await run();
    const alive = child.exitCode === null && child.signalCode === null;
    console.log(`${name.padEnd(30)} RSS ${mb(result.before)} -> peak ${mb(result.peak)} MB (+${mb(result.growth)})` +
      `${result.sent !== undefined ? `, ${mb(result.sent)} MB taken` : ''}${alive ? '' : `, server died (${child.signalCode ?? child.exitCode})`}`);
    if (!alive) break;
  }
} finally {
  child.kill('SIGTERM');
}
