// The figures of issue 9's "Done means", sioc-echo against Node's socket.io 4.8 in one run:
//  (a) fan-out deliveries/s (`sioc bench fanout`: one room, M members, 100-byte messages, W
//      publishes in flight) with recovery off, in memory and in Redis (streams mode, the Redis
//      recovery store), and Node without and with its in-memory recovery; ratios to each
//      server's recovery off and sioc / Node;
//  (b) the jitter delivery ratio (tests/integration/recovery/jitter-load.js: 200 clients in 10
//      rooms, half WebSocket and half polling, a publisher at 50 messages/s, every transport cut
//      at random every 1.5-4 s) for sioc in memory (one node), sioc in Redis (streams: clients
//      on one node, the publisher on another) and Node 4.8 with in-memory recovery (one node).
//
//   node bench/recovery.mjs --sioc SIOC --sioc-echo SIOC_ECHO [--quick] [--out DIR]
//     full: fan-out 1000 members, 10 s per variant; jitter 60 s per server (about 5 minutes)
//     --quick: fan-out 100 members, 1 s; jitter 40 clients, 3 s (CI: the harness works)
//
// Servers run on core 0 (taskset -c 0), the fan-out generator on core 1; this process (the
// jitter clients) is not pinned. Everything listens on 127.0.0.1 on ports of its choosing and is
// killed at the end whatever happens; every wait is bounded. Writes recovery.md and
// recovery.json to --out (default bench/results/recovery-bench-<mode>) and prints recovery.md.
// Node's packages come from tests/integration (npm ci there).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runJitter } from '../tests/integration/recovery/jitter-load.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');

function option(name, fallback) {
  const index = process.argv.indexOf(name);
  return index >= 0 ? process.argv[index + 1] : fallback;
}
const quick = process.argv.includes('--quick');
const mode = quick ? 'quick' : 'full';
const sioc = path.resolve(option('--sioc', path.join(root, 'build/sioc')));
const siocEcho = path.resolve(option('--sioc-echo', path.join(root, 'build/sioc-echo')));
const out = path.resolve(option('--out', path.join(root, `bench/results/recovery-bench-${mode}`)));
const FANOUT = quick
  ? { members: 100, window: 16, duration: 1, warmup: 0.3 }
  : { members: 1000, window: 64, duration: 10, warmup: 2 };
const JITTER = quick
  ? { clients: 40, rooms: 4, rateHz: 50, durationMs: 3000, cutMinMs: 500, cutMaxMs: 1500, settleMs: 15_000 }
  : { clients: 200, rooms: 10, rateHz: 50, durationMs: 60_000, cutMinMs: 1500, cutMaxMs: 4000, settleMs: 30_000 };

const haveTaskset = spawnSync('taskset', ['-c', '0', 'true']).status === 0;
const pinned = (core, command, args) => (haveTaskset ? ['taskset', ['-c', String(core), command, ...args]] : [command, args]);
const children = new Set();
const commands = [];

function killAll() {
  for (const child of children) {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  children.clear();
}
process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(1));

/** Spawns command (its own process group); resolves {child, port} at "listening on ...:PORT". */
function startServer(label, command, args, { pattern = /listening on 127\.0\.0\.1:(\d+)/, core = 0 } = {}) {
  const [file, argv] = pinned(core, command, args);
  commands.push(`${label}: ${[file, ...argv].join(' ')}`);
  const child = spawn(file, argv, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  children.add(child);
  let text = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${label} did not start: ${text}`)), 10_000);
    const look = (chunk) => {
      text += chunk;
      const match = pattern.exec(text);
      if (match) {
        clearTimeout(timer);
        child.stdout.removeAllListeners('data');
        child.stdout.resume();
        child.stderr.resume();
        resolve({ child, port: Number(match[1]) });
      }
    };
    child.stdout.on('data', look);
    child.stderr.on('data', look);
    child.on('exit', (code) => reject(new Error(`${label} exited (${code}): ${text}`)));
  });
}

async function stopServer(server) {
  if (!server) return;
  const exited = new Promise((resolve) => server.child.once('exit', resolve));
  try {
    process.kill(-server.child.pid, 'SIGTERM');
  } catch {
    return;
  }
  const timer = setTimeout(() => {
    try {
      process.kill(-server.child.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }, 3000);
  await exited;
  clearTimeout(timer);
  children.delete(server.child);
}

async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function startRedis() {
  const port = await freePort();
  return startServer('redis', 'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { pattern: /Ready to accept connections/, core: 0 }).then((server) => ({ ...server, port }));
}

/** The server of a variant: sioc-echo with flags, or Node's. */
function serverOf(variant, redisUrl) {
  const streams = ['--recovery', '--redis', redisUrl, '--redis-mode', 'streams'];
  switch (variant) {
    case 'sioc-off': return [siocEcho, ['--host', '127.0.0.1', '--port', '0']];
    case 'sioc-memory': return [siocEcho, ['--host', '127.0.0.1', '--port', '0', '--recovery']];
    case 'sioc-redis': return [siocEcho, ['--host', '127.0.0.1', '--port', '0', ...streams]];
    case 'node-off': return ['node', [path.join(here, 'recovery-node.mjs')]];
    case 'node-memory': return ['node', [path.join(here, 'recovery-node.mjs'), '--recovery']];
    default: throw new Error(variant);
  }
}

async function fanout(variant, redisUrl) {
  const server = await startServer(variant, ...serverOf(variant, redisUrl));
  const json = path.join(out, `fanout-${variant}.json`);
  const args = ['bench', 'fanout', '--rooms', '1', '--members', String(FANOUT.members), '--size', '100',
    '--window', String(FANOUT.window), '--duration', String(FANOUT.duration), '--warmup', String(FANOUT.warmup),
    '--port', String(server.port), '--server-pid', String(server.child.pid), '--label', variant, '--json', json,
    '--publish-event', variant.startsWith('sioc') ? 'to-room' : 'publish'];
  const [file, argv] = pinned(1, sioc, args);
  commands.push(`fanout ${variant}: ${[file, ...argv].join(' ')}`);
  const run = spawnSync(file, argv, { encoding: 'utf8', timeout: 120_000 });
  await stopServer(server);
  if (run.status !== 0) throw new Error(`fanout ${variant}: ${run.stderr || run.stdout}`);
  return Math.round(JSON.parse(fs.readFileSync(json, 'utf8')).results.deliveries_per_second ?? 0);
}

async function jitter(name, redisUrl) {
  const servers = [];
  try {
    if (name === 'sioc-redis') {
      servers.push(await startServer(`${name} clients' node`, ...serverOf('sioc-redis', redisUrl)));
      servers.push(await startServer(`${name} publisher's node`, ...serverOf('sioc-redis', redisUrl)));
    } else if (name === 'sioc-memory') {
      servers.push(await startServer(name, ...serverOf('sioc-memory')));
    } else {
      servers.push(await startServer(name, 'node', [path.join(root, 'tests/integration/ref/sioc-echo.js'),
        '--host', '127.0.0.1', '--port', '0', '--recovery']));
    }
    const url = (server) => `http://127.0.0.1:${server.port}`;
    commands.push(`jitter ${name}: runJitter(${JSON.stringify(JITTER)})`);
    const started = Date.now();
    const result = await runJitter({ clientUrls: [url(servers[0])], publisherUrl: url(servers.at(-1)), ...JITTER });
    return { ...result, seconds: (Date.now() - started) / 1000 };
  } finally {
    for (const server of servers) await stopServer(server);
  }
}

const ratio = (a, b) => (b > 0 ? (a / b).toFixed(2) : 'n/a');
const percent = (x) => `${(100 * x).toFixed(2)} %`;

async function main() {
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(out, { recursive: true });
  const load = os.loadavg()[0].toFixed(2);
  const redis = await startRedis();
  const redisUrl = `redis://127.0.0.1:${redis.port}`;
  const rates = {};
  try {
    for (const variant of ['sioc-off', 'sioc-memory', 'sioc-redis', 'node-off', 'node-memory']) {
      rates[variant] = await fanout(variant, redisUrl);
      process.stderr.write(`[recovery-bench] fanout ${variant}: ${rates[variant]} deliveries/s\n`);
    }
    const jitters = {};
    for (const name of ['sioc-memory', 'sioc-redis', 'node-memory']) {
      jitters[name] = await jitter(name, redisUrl);
      process.stderr.write(`[recovery-bench] jitter ${name}: ${JSON.stringify(jitters[name])}\n`);
    }
    const loadAfter = os.loadavg()[0].toFixed(2);
    const f = FANOUT;
    const j = JITTER;
    const lines = [
      `## Connection state recovery: fan-out cost and jitter (${mode}, ${new Date().toISOString().slice(0, 16)}Z)`,
      '',
      `${os.cpus().length} cores, load average ${load} at the start and ${loadAfter} at the end (other work on the machine shows in the absolute numbers: read the ratios).`,
      '',
      `**Fan-out** (\`sioc bench fanout\`, 1 room, ${f.members} members, 100-byte messages, window ${f.window}, ${f.duration} s per variant; servers on core 0, generator on core 1):`,
      '',
      '| server | recovery | deliveries/s | vs. its recovery off |',
      '| --- | --- | ---: | ---: |',
      `| sioc-echo | off | ${rates['sioc-off']} | 1.00 |`,
      `| sioc-echo | in memory (\`--recovery\`) | ${rates['sioc-memory']} | ${ratio(rates['sioc-memory'], rates['sioc-off'])} |`,
      `| sioc-echo | Redis, streams mode (\`--recovery --redis-mode streams\`) | ${rates['sioc-redis']} | ${ratio(rates['sioc-redis'], rates['sioc-off'])} |`,
      `| Node socket.io 4.8 | off | ${rates['node-off']} | 1.00 |`,
      `| Node socket.io 4.8 | in memory | ${rates['node-memory']} | ${ratio(rates['node-memory'], rates['node-off'])} |`,
      '',
      `sioc in memory / Node in memory: ${ratio(rates['sioc-memory'], rates['node-memory'])}; sioc in Redis / Node in memory: ${ratio(rates['sioc-redis'], rates['node-memory'])}.`,
      '',
      `**Jitter** (tests/integration/recovery/jitter-load.js: ${j.clients} clients in ${j.rooms} rooms, half WebSocket and half polling, ${j.rateHz} messages/s, every transport cut every ${j.cutMinMs / 1000}-${j.cutMaxMs / 1000} s for ${j.durationMs / 1000} s):`,
      '',
      '| server | delivered exactly once, in order | duplicates | gaps | cuts | reconnections not recovered |',
      '| --- | ---: | ---: | ---: | ---: | ---: |',
    ];
    const label = { 'sioc-memory': 'sioc-echo, in memory (one node)', 'sioc-redis': 'sioc-echo, Redis streams (clients and publisher on two nodes)', 'node-memory': 'Node socket.io 4.8, in memory (one node)' };
    for (const [name, r] of Object.entries(jitters)) {
      lines.push(`| ${label[name]} | ${percent(r.ratio)} (${r.received}/${r.expected}) | ${r.duplicates} | ${r.outOfOrder} | ${r.cuts} | ${r.notRecovered}/${r.reconnections} |`);
    }
    lines.push('', `sioc in memory / Node: ${ratio(jitters['sioc-memory'].ratio, jitters['node-memory'].ratio)}; sioc in Redis / Node: ${ratio(jitters['sioc-redis'].ratio, jitters['node-memory'].ratio)}.`, '');
    const report = lines.join('\n');
    fs.writeFileSync(path.join(out, 'recovery.md'), report);
    fs.writeFileSync(path.join(out, 'recovery.json'), JSON.stringify({ mode, load, loadAfter, fanout: rates, jitter: jitters }, null, 2));
    fs.writeFileSync(path.join(out, 'commands.txt'), commands.join('\n') + '\n');
    process.stdout.write(report);
    const failed = Object.entries(rates).filter(([, rate]) => !(rate > 0)).map(([v]) => v);
    if (failed.length) throw new Error(`measured nothing: ${failed.join(', ')}`);
  } finally {
    await stopServer(redis);
  }
}

main().then(() => {
  killAll();
  process.exit(0);
}, (error) => {
  process.stderr.write(`[recovery-bench] ${error.stack ?? error}\n`);
  killAll();
  process.exit(1);
});
