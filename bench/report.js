// Writes the benchmark report (docs/benchmarks.md) and its plot (docs/benchmarks.png, with
// gnuplot) from the JSON files of one bench/run.sh run.
//
// usage: node bench/report.js --results DIR --mode full|quick --sioc BINARY --report FILE.md
//                             --plot FILE.png
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

function option(name) {
  const index = process.argv.indexOf(`--${name}`);
  if (index < 0 || index + 1 >= process.argv.length) throw new Error(`--${name} is required`);
  return process.argv[index + 1];
}

const resultsDir = option('results');
const mode = option('mode');
const siocBinary = option('sioc');
const reportFile = option('report');
const plotFile = option('plot');
const root = path.resolve(__dirname, '..');

// ---- inputs ---------------------------------------------------------------------------------

function load(server, name) {
  try {
    return JSON.parse(fs.readFileSync(path.join(resultsDir, `${server}-${name}.json`), 'utf8'));
  } catch {
    return null;
  }
}

function get(result, dotted) {
  let value = result;
  for (const key of dotted.split('.')) value = value == null ? undefined : value[key];
  return value;
}

function run(command, args) {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

function machine() {
  const cpu = os.cpus()[0];
  const release = fs.existsSync('/etc/debian_version')
    ? `Debian ${fs.readFileSync('/etc/debian_version', 'utf8').trim()}` : os.type();
  return {
    cpu: `${cpu ? cpu.model : 'unknown'}, ${os.cpus().length} cores`,
    memory: `${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    system: `${release}, Linux ${os.release()}`,
    files: run('sh', ['-c', 'ulimit -n']),
  };
}

function versions() {
  const nodeModule = (name) => {
    try {
      return require(path.join(root, 'bench/node/node_modules', name, 'package.json')).version;
    } catch {
      return 'unknown';
    }
  };
  return {
    sioc: `${run(siocBinary, ['version'])} (commit ${run('git', ['-C', root, 'rev-parse', '--short', 'HEAD'])}${run('git', ['-C', root, 'status', '--porcelain']) ? ', with uncommitted changes' : ''})`,
    node: process.version,
    socketio: nodeModule('socket.io'),
    engineio: nodeModule('engine.io'),
    ws: nodeModule('ws'),
    sqlite: nodeModule('better-sqlite3'),
    jwt: nodeModule('jsonwebtoken'),
    gnuplot: run('gnuplot', ['--version']),
    compiler: run('cc', ['--version']).split('\n')[0],
  };
}

// ---- figures ----------------------------------------------------------------------------------

const rows = [
  // [scenario file, label, path in the JSON, unit, better: 'high'|'low', digits]
  ['idle', 'idle: server RSS per connection', 'results.rss_per_connection_bytes', 'bytes', 'low', 0],
  ['echo', 'echo: ack round trips/s (closed loop)', 'results.round_trips_per_second', '/s', 'high', 0],
  ['echo', 'echo: latency p50 at maximum rate', 'results.latency.p50_us', 'µs', 'low', 0],
  ['echo', 'echo: latency p99 at maximum rate', 'results.latency.p99_us', 'µs', 'low', 0],
  ['echo-half', 'echo: rate at half the maximum', 'results.round_trips_per_second', '/s', 'high', 0],
  ['echo-half', 'echo: latency p99 at half the maximum', 'results.latency.p99_us', 'µs', 'low', 0],
  ['echo-half', 'echo: latency p99.9 at half the maximum', 'results.latency.p99_9_us', 'µs', 'low', 0],
  ['fanout', 'fanout: deliveries/s (1 room × M, 100 B)', 'results.deliveries_per_second', '/s', 'high', 0],
  ['fanout', 'fanout: latency p50', 'results.latency.p50_us', 'µs', 'low', 0],
  ['fanout', 'fanout: latency p99', 'results.latency.p99_us', 'µs', 'low', 0],
  ['fanout', 'fanout: lost messages', 'results.lost', '', 'none', 0],
  ['cluster', 'cluster: deliveries/s (1 room × M over 2 nodes on Redis)', 'results.deliveries_per_second', '/s', 'high', 0],
  ['cluster', 'cluster: latency p99, members on the publisher\'s node', 'results.latency_same_node.p99_us', 'µs', 'low', 0],
  ['cluster', 'cluster: latency p99, members on the other node', 'results.latency_other_node.p99_us', 'µs', 'low', 0],
  ['cluster', 'cluster: lost messages', 'results.lost', '', 'none', 0],
  ['connect', 'connect: WebSocket + CONNECT + JWT /s', 'results.connections_per_second', '/s', 'high', 0],
  ['connect', 'connect: WebSocket latency p99', 'results.latency.p99_us', 'µs', 'low', 0],
  ['connect-polling', 'connect: polling + CONNECT + JWT /s', 'results.connections_per_second', '/s', 'high', 0],
  ['chat', 'chat: users (10 per room)', 'results.users', '', 'none', 0],
  ['chat', 'chat: messages/s sent', 'results.messages_per_second', '/s', 'none', 0],
  ['chat', 'chat: message:send → message:received p50', 'results.latency.p50_us', 'µs', 'low', 0],
  ['chat', 'chat: message:send → message:received p99', 'results.latency.p99_us', 'µs', 'low', 0],
  ['chat', 'chat: deliveries lost', 'results.lost', '', 'none', 0],
  ['chat', 'chat: messages acknowledged', 'results.acknowledged', '', 'none', 0],
  ['chat', 'chat: messages stored', 'results.stored', '', 'none', 0],
  ['chat-10k', 'chat at 10,000 users: p99 (sioc only)', 'results.latency.p99_us', 'µs', 'low', 0],
  ['chat-10k', 'chat at 10,000 users: deliveries lost', 'results.lost', '', 'none', 0],
  ['chat-10k', 'chat at 10,000 users: acknowledged', 'results.acknowledged', '', 'none', 0],
  ['chat-10k', 'chat at 10,000 users: stored', 'results.stored', '', 'none', 0],
];

function format(value, digits) {
  if (value === undefined || value === null || Number.isNaN(value)) return 'n/a';
  return Number(value).toLocaleString('en-US', { maximumFractionDigits: digits });
}

function ratio(node, sioc, better) {
  if (better === 'none' || typeof node !== 'number' || typeof sioc !== 'number' || node <= 0 ||
    sioc <= 0) return '';
  const value = better === 'high' ? sioc / node : node / sioc;
  return `${value.toFixed(value >= 10 ? 0 : 1)}×`;
}

function figureTable() {
  const lines = ['| figure | Node socket.io | sioc | sioc vs Node |', '| --- | ---: | ---: | ---: |'];
  for (const [name, label, key, unit, better, digits] of rows) {
    const node = get(load('node', name), key);
    const sioc = get(load('sioc', name), key);
    const suffix = unit ? ` ${unit}` : '';
    const note = ratio(node, sioc, better);
    lines.push(`| ${label} | ${format(node, digits)}${node === undefined ? '' : suffix} | ` +
      `${format(sioc, digits)}${sioc === undefined ? '' : suffix} | ${note ? `${note} ${better === 'high' ? 'more' : 'less'}` : ''} |`);
  }
  return lines.join('\n');
}

function loadTable() {
  const names = ['idle', 'echo', 'echo-half', 'fanout', 'cluster', 'connect', 'connect-polling', 'chat', 'chat-10k'];
  const lines = ['| run | server | generator CPU | server CPU | other processes | hypervisor steal | outcome |',
    '| --- | --- | ---: | ---: | ---: | ---: | --- |'];
  for (const name of names) {
    for (const server of ['node', 'sioc']) {
      const result = load(server, name);
      if (!result) {
        if (name !== 'chat-10k' || server === 'sioc') lines.push(`| ${name} | ${server} | | | | | no result |`);
        continue;
      }
      const percent = (value) => (typeof value === 'number' && value >= 0 ? `${value.toFixed(0)}%` : 'n/a');
      const outcome = result.ok ? (result.generator_saturated ? 'ok, generator saturated' : 'ok') : `failed: ${result.error}`;
      lines.push(`| ${name} | ${server} | ${percent(result.generator_cpu_percent)} | ` +
        `${percent(result.server_cpu_percent)} | ${percent(result.other_processes_percent)} | ` +
        `${percent(result.steal_percent)} | ${outcome} |`);
    }
  }
  return lines.join('\n');
}

// ---- targets ------------------------------------------------------------------------------------

function targets() {
  const sioc = (name, key) => get(load('sioc', name), key);
  const node = (name, key) => get(load('node', name), key);
  const times = (name, key) => (node(name, key) > 0 ? sioc(name, key) / node(name, key) : NaN);
  // A figure taken while the hypervisor stole more than 10% of a core is no basis for a verdict.
  const steal = (...names) => Math.max(0, ...names.map((name) => get(load('sioc', name), 'steal_percent') || 0));
  const verdict = (met, ...names) => {
    if (met === undefined) return 'not measured';
    const stolen = steal(...names);
    if (stolen > 10) return `not measured reliably (hypervisor steal ${stolen.toFixed(0)}%)`;
    return met ? '**met**' : '**not met**';
  };
  const idleBytes = sioc('idle', 'results.rss_per_connection_bytes');
  const idleClients = sioc('idle', 'results.clients');
  const fanoutRate = sioc('fanout', 'results.deliveries_per_second');
  const members = sioc('fanout', 'results.members');
  const echoTimes = times('echo', 'results.round_trips_per_second');
  const echoP99 = sioc('echo-half', 'results.latency.p99_us');
  const connectTimes = times('connect', 'results.connections_per_second');
  const chat = load('sioc', 'chat-10k') || load('sioc', 'chat');
  const chatP99 = get(chat, 'results.latency.p99_us');
  const chatOk = chat && chat.ok && get(chat, 'results.lost') === 0 &&
    get(chat, 'results.stored') === get(chat, 'results.acknowledged') &&
    get(chat, 'results.ack_errors') === 0;
  const measured = (value) => typeof value === 'number' && !Number.isNaN(value);
  return [
    `| target (issue 5) | this run | verdict |`,
    `| --- | --- | --- |`,
    `| idle: ≤ 1 KB user-space RSS per WebSocket client at 10,000 clients | ${format(idleBytes, 0)} bytes at ${format(idleClients, 0)} clients (Node ${format(node('idle', 'results.rss_per_connection_bytes'), 0)}) | ${verdict(measured(idleBytes) ? idleBytes <= 1024 && idleClients >= 10000 : undefined, 'idle')} |`,
    `| fanout: ≥ 2,000,000 deliveries/s on one core, 1,000-member room, 100-byte messages, and ≥ 10× Node | ${format(fanoutRate, 0)}/s with ${format(members, 0)} members, ${format(times('fanout', 'results.deliveries_per_second'), 1)}× Node | ${verdict(measured(fanoutRate) ? fanoutRate >= 2e6 && members >= 1000 && times('fanout', 'results.deliveries_per_second') >= 10 : undefined, 'fanout')} |`,
    `| echo: ≥ 10× Node's round trips/s | ${format(echoTimes, 1)}× | ${verdict(measured(echoTimes) ? echoTimes >= 10 : undefined, 'echo')} |`,
    `| echo: p99 ≤ 1 ms at half of sioc's maximum rate | ${format(echoP99, 0)} µs | ${verdict(measured(echoP99) ? echoP99 <= 1000 : undefined, 'echo-half')} |`,
    `| connect: ≥ 10× Node's connections/s | ${format(connectTimes, 1)}× (WebSocket), ${format(times('connect-polling', 'results.connections_per_second'), 1)}× (polling) | ${verdict(measured(connectTimes) ? connectTimes >= 10 : undefined, 'connect')} |`,
    `| chat: p99 ≤ 5 ms at 2,000 messages/s over 10,000 users in 1,000 rooms, zero loss, stored = acknowledged | p99 ${format(chatP99, 0)} µs at ${format(get(chat, 'results.messages_per_second'), 0)} messages/s, ${format(get(chat, 'results.users'), 0)} users, lost ${format(get(chat, 'results.lost'), 0)}, acknowledged ${format(get(chat, 'results.acknowledged'), 0)}, stored ${format(get(chat, 'results.stored'), 0)} | ${verdict(measured(chatP99) ? chatP99 <= 5000 && chatOk && get(chat, 'results.users') >= 10000 && get(chat, 'results.messages_per_second') >= 1900 : undefined, chat && chat.results && chat.results.users >= 10000 ? 'chat-10k' : 'chat')} |`,
  ].join('\n');
}

// ---- the plot -------------------------------------------------------------------------------------

function plot() {
  const throughput = [
    ['echo round trips/s', 'echo', 'results.round_trips_per_second'],
    ['fanout deliveries/s', 'fanout', 'results.deliveries_per_second'],
    ['WebSocket connects/s', 'connect', 'results.connections_per_second'],
    ['polling connects/s', 'connect-polling', 'results.connections_per_second'],
  ];
  const latency = [
    ['echo p99 at half max', 'echo-half', 'results.latency.p99_us'],
    ['fanout p99', 'fanout', 'results.latency.p99_us'],
    ['chat p99', 'chat', 'results.latency.p99_us'],
  ];
  const value = (server, name, key, scale) => {
    const v = get(load(server, name), key);
    return typeof v === 'number' && v > 0 ? (v * scale).toPrecision(6) : 'NaN';
  };
  const table = (items, scale) => items.map(([label, name, key]) =>
    `"${label}" ${value('node', name, key, scale)} ${value('sioc', name, key, scale)}`).join('\n');
  const memory = `"RSS per idle connection" ${value('node', 'idle', 'results.rss_per_connection_bytes', 1 / 1024)} ${value('sioc', 'idle', 'results.rss_per_connection_bytes', 1 / 1024)}`;
  const data = path.join(resultsDir, 'plot');
  fs.writeFileSync(`${data}-throughput.dat`, `${table(throughput, 1)}\n`);
  fs.writeFileSync(`${data}-latency.dat`, `${table(latency, 1 / 1000)}\n`);
  fs.writeFileSync(`${data}-memory.dat`, `${memory}\n`);
  const script = `
set terminal pngcairo size 1400,520 font "DejaVu Sans,10"
set output "${plotFile}"
set multiplot layout 1,3 title "sioc vs Node socket.io (${mode} run, each server on one core, the generator on the other)"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set key top left
set grid ytics
set xtics rotate by -25 scale 0
set logscale y
set format y "10^{%L}"
set title "throughput (higher is better, log scale)"
plot "${data}-throughput.dat" using 2:xtic(1) title "Node socket.io" lc rgb "#8892a0", "" using 3 title "sioc" lc rgb "#1f77b4"
set title "latency p99, ms (lower is better, log scale)"
set format y "%g"
plot "${data}-latency.dat" using 2:xtic(1) title "Node socket.io" lc rgb "#8892a0", "" using 3 title "sioc" lc rgb "#1f77b4"
unset logscale y
set yrange [0:*]
set title "KiB per idle WebSocket client (lower is better)"
plot "${data}-memory.dat" using 2:xtic(1) title "Node socket.io" lc rgb "#8892a0", "" using 3 title "sioc" lc rgb "#1f77b4"
unset multiplot
`;
  fs.writeFileSync(`${data}.gp`, script);
  execFileSync('gnuplot', [`${data}.gp`], { stdio: 'inherit' });
}

// ---- the document -----------------------------------------------------------------------------------

function document() {
  const m = machine();
  const v = versions();
  const commands = fs.readFileSync(path.join(resultsDir, 'commands.txt'), 'utf8').trim();
  const summary = fs.existsSync(path.join(resultsDir, 'summary.txt'))
    ? fs.readFileSync(path.join(resultsDir, 'summary.txt'), 'utf8').trim() : '';
  const analysisFile = path.join(root, 'bench/analysis.md');
  const analysis = mode === 'full' && fs.existsSync(analysisFile) ? fs.readFileSync(analysisFile, 'utf8').trim() : '';
  const relativePlot = path.relative(path.dirname(reportFile), plotFile);
  return `# Benchmarks: sioc vs Node socket.io

Generated by \`bench/run.sh${mode === 'quick' ? ' --quick' : ''}\` on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC${mode === 'quick' ? ' — **quick mode: a check of the harness, not figures to quote**' : ''}.
Each server runs alone on core 0 (\`taskset -c 0\`) and is started fresh for every scenario; the
load generator (\`sioc bench\`, C on libuv, speaking Engine.IO/Socket.IO itself) runs on core 1.
Latency percentiles come from a histogram of every sample (log buckets, < 0.8% error); rates
count what happened inside the measured window, after a warm-up.

![sioc vs Node socket.io](${relativePlot})

## Machine and versions

| | |
| --- | --- |
| CPU | ${m.cpu} |
| memory | ${m.memory} |
| system | ${m.system}; open files per process: ${m.files} |
| sioc | ${v.sioc}; ${v.compiler}, RelWithDebInfo (-O2) |
| Node server | Node ${v.node}, socket.io ${v.socketio} (engine.io ${v.engineio}, ws ${v.ws}), better-sqlite3 ${v.sqlite}, jsonwebtoken ${v.jwt} (bench/node/package-lock.json) |
| plot | ${v.gnuplot} |

## Results

${figureTable()}

## Targets of issue 5

${targets()}

## Load during each run

CPU is in percent of one core over the measured window: the generator's own (getrusage), the
server's (/proc/PID/stat), what every other process of the machine took, and the time the
hypervisor gave this virtual machine's cores to someone else (steal, both from /proc/stat). A
figure taken while other processes were busy, under steal, or with a saturated generator is a
lower bound; steal shows first in the latency tails (a core that stops for milliseconds).

${loadTable()}

## The servers and the scenarios

- **sioc**: \`sioc serve --config bench/sioc-bench.json\`: \`/\` and \`/auth\` (JWT) are served by the
  \`bench\` driver (daemon/drivers/bench.c: \`echo\` acknowledged with its arguments, \`join\` a
  room, \`publish\` a broadcast to a room), \`/chat\` by the \`chat\` driver (StudyConnect, SQLite
  in WAL mode with synchronous=FULL, batched commits).
- **Node**: \`node bench/node/server.js\`: the same namespaces and handlers on socket.io 4.8; \`/chat\` is
  the seeds' StudyConnect handlers on better-sqlite3 with the same durability (WAL,
  synchronous=FULL) and one transaction per statement, as the seeds' \`await Message.create()\`.
- **idle**: N clients connect (WebSocket + namespace CONNECT) and stay for the window; the
  server's VmRSS growth divided by N.
- **echo**: C clients each emit \`echo\` with an ack and emit again when it comes (closed loop);
  then the same at half the rate found, paced every 100 µs, latency counted from when each emit
  was due.
- **fanout**: M members in one room, a publisher sends 100-byte messages (the packet each member
  receives) through \`publish\` as fast as a window of ${fanoutWindow()} messages not yet delivered to every member allows;
  each payload carries its send time.
- **connect**: ${connectInFlight()} connections in flight, each: TCP, WebSocket upgrade (or polling handshake and
  POST/GET), Engine.IO open, CONNECT to \`/auth\` with a JWT in \`auth.token\` (from \`sioc token\`),
  its answer, close; counted when the CONNECT is answered.
- **chat**: users connect to \`/chat\` with their own JWT, each joins its room (\`room:join\`), and
  once the presence and join notices have settled, \`message:send {roomId,text}\` goes out at the
  set rate from each user in turn; every \`message:received\` gives a latency; acknowledged
  messages are compared with the rows in the server's database after it stopped. Both servers
  run it with ${format(get(load('sioc', 'chat'), 'results.users'), 0)} users (10 per room); sioc alone runs it again with 10,000 users in 1,000
  rooms (\`chat-10k\`, the target): there, the seeds' \`socket.broadcast.emit('user:status')\` on
  every connection makes 50 million notices while the users connect, which Node had not got
  through after 5 minutes in a trial run.

## Exact commands

Servers (core 0): \`taskset -c 0 node bench/node/server.js --port 0 --secret … --db …\` and
\`taskset -c 0 sioc serve --config <bench/sioc-bench.json with port 0>\`. Generator (core 1):

\`\`\`
${commands}
\`\`\`

## Summaries as printed (every attempt, in order)

\`\`\`
${summary}
\`\`\`
${analysis ? `\n${analysis}\n` : ''}`;
}

function fanoutWindow() {
  return format(get(load('sioc', 'fanout'), 'options.window'), 0);
}

function connectInFlight() {
  return format(get(load('sioc', 'connect'), 'options.clients'), 0);
}

plot();
fs.writeFileSync(reportFile, document());
