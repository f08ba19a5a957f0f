// Writes the benchmark report (docs/benchmarks.md) and its plot (docs/benchmarks.png, with
// gnuplot) from the JSON files of one bench/run.sh run.
//
// usage: node bench/report.js --results DIR --mode full|quick --sioc BINARY --report FILE.md
//                             --plot FILE.png
//        node bench/report.js --results DIR --mode memory --sioc BINARY --section memory
//                             --report FILE.md [--splice docs/benchmarks.md]
//   (only the memory section; --splice replaces that section of an existing report in place)
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

function optional(name) {
  const index = process.argv.indexOf(`--${name}`);
  return index < 0 || index + 1 >= process.argv.length ? null : process.argv[index + 1];
}

const resultsDir = option('results');
const mode = option('mode');
const siocBinary = option('sioc');
const reportFile = option('report');
const section = optional('section');
const spliceFile = optional('splice');
const plotFile = section ? null : option('plot');
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
  ['idle', 'idle: server RSS per WebSocket connection (sioc: sioc-echo)', 'results.rss_per_connection_bytes', 'bytes', 'low', 0],
  ['echo', 'echo: ack round trips/s (closed loop)', 'results.round_trips_per_second', '/s', 'high', 0],
  ['echo', 'echo: latency p50 at maximum rate', 'results.latency.p50_us', 'µs', 'low', 0],
  ['echo', 'echo: latency p99 at maximum rate', 'results.latency.p99_us', 'µs', 'low', 0],
  ['echo-half', 'echo: rate at half the maximum', 'results.round_trips_per_second', '/s', 'high', 0],
  ['echo-half', 'echo: latency p99 at half the maximum', 'results.latency.p99_us', 'µs', 'low', 0],
  ['echo-half', 'echo: latency p99.9 at half the maximum', 'results.latency.p99_9_us', 'µs', 'low', 0],
  ['echo-half', 'echo: hypervisor steal in the half-rate window', 'steal_percent', '%', 'none', 1],
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
  const names = ['idle', 'idle-max', 'idle-polling', 'idle-chat', 'idle-chat-1', 'idle-chat-2', 'echo',
    'echo-half', 'profile', 'fanout', 'cluster', 'connect', 'connect-polling', 'chat', 'chat-10k'];
  const siocOnly = new Set(['chat-10k', 'idle-chat-1', 'idle-chat-2']);
  const optionalRuns = new Set(mode === 'full' ? [] : ['chat-10k', 'idle-chat-1', 'idle-chat-2', 'profile']);
  const lines = ['| run | server | generator CPU | server CPU | other processes | hypervisor steal | outcome |',
    '| --- | --- | ---: | ---: | ---: | ---: | --- |'];
  for (const name of names) {
    for (const server of ['node', 'sioc']) {
      const result = load(server, name);
      if (!result) {
        // Runs that only full mode (or only sioc) has are left out rather than listed empty.
        if (!optionalRuns.has(name) && (!siocOnly.has(name) || server === 'sioc')) {
          lines.push(`| ${name} | ${server} | | | | | no result |`);
        }
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

// ---- memory per connection (issue 12) ----------------------------------------------------------

const MEMORY_BEGIN = '<!-- memory section: written by bench/run.sh (full or --memory); its next run replaces it -->';
const MEMORY_END = '<!-- end of the memory section -->';

const idleRuns = [
  ['idle', 'WebSocket, `/`'],
  ['idle-max', 'WebSocket, `/`'],
  ['idle-polling', 'polling (a GET always pending), `/`'],
  ['idle-chat', '`/chat` with a JWT per client (user, `user:{id}` room, presence)'],
  ['idle-chat-1', '`/chat` with a JWT per client'],
  ['idle-chat-2', '`/chat` with a JWT per client'],
  // BENCH_ONLY="sioc:idle_chat" only: one user, one room and one presence entry for all.
  ['idle-chat-token-1', '`/chat` with one JWT for every client'],
  ['idle-chat-token-2', '`/chat` with one JWT for every client'],
];

function bytes(value) {
  return typeof value === 'number' && !Number.isNaN(value) ? `${format(value, 0)} B` : 'n/a';
}

function idleCell(result) {
  if (!result) return 'not run';
  if (!result.ok) return `failed: ${result.error}`;
  const r = result.results;
  return `${bytes(r.rss_per_connection_bytes)} (peak ${bytes(r.peak_per_connection_bytes)})` +
    `${r.settled === false ? ', not settled' : ''}`;
}

function memoryRatio(node, sioc) {
  const value = (result) => (result && result.ok ? get(result, 'results.rss_per_connection_bytes') : undefined);
  const note = ratio(value(node), value(sioc), 'low');
  return note ? `${note} less` : '';
}

function idleTable() {
  const lines = ['| idle clients | connections | Node socket.io: RSS per client (peak) | sioc (peak) | sioc vs Node | load average (Node / sioc) |',
    '| --- | ---: | ---: | ---: | ---: | ---: |'];
  for (const [name, label] of idleRuns) {
    const node = load('node', name);
    const sioc = load('sioc', name);
    if (!node && !sioc) continue;
    const clients = get(sioc || node, 'results.clients');
    const program = sioc ? ` (${sioc.server_program === 'sioc' ? '`sioc serve`' : sioc.server_program})` : '';
    const loads = [node, sioc].filter(Boolean).map((r) => (r.load_average ? r.load_average[0].toFixed(1) : 'n/a'));
    lines.push(`| ${label}${program} | ${format(clients, 0)} | ${node ? idleCell(node) : 'not run'} | ` +
      `${idleCell(sioc)} | ${memoryRatio(node, sioc)} | ${loads.join(' / ')} |`);
  }
  return lines.join('\n');
}

function trafficCell(result) {
  const memory = result && result.server_memory;
  if (!memory) return 'n/a';
  return `${bytes(memory.peak_per_client_bytes)} / ${bytes(memory.end_per_client_bytes)}`;
}

function trafficTable() {
  const runs = [
    ['fanout', 'fanout: 1 room, 100-byte messages as fast as the window allows'],
    ['chat', 'chat: message:send at the set rate, rooms of 10'],
    ['chat-10k', 'chat at 10,000 users (sioc only)'],
  ];
  const lines = ['| scenario | clients | Node socket.io: peak / end of the window, per client | sioc: peak / end | sioc vs Node (end) |',
    '| --- | ---: | ---: | ---: | ---: |'];
  for (const [name, label] of runs) {
    const node = load('node', name);
    const sioc = load('sioc', name);
    if (!node && !sioc) continue;
    const end = (result) => get(result, 'server_memory.end_per_client_bytes');
    const note = ratio(end(node), end(sioc), 'low');
    lines.push(`| ${label} | ${format(get(sioc || node, 'server_memory.clients'), 0)} | ${node ? trafficCell(node) : 'not run'} | ` +
      `${trafficCell(sioc)} | ${note ? `${note} less` : ''} |`);
  }
  return lines.length > 2 ? lines.join('\n') : 'Not run (full mode and `--memory` run the fan-out and chat scenarios).';
}

function memorySection() {
  const load1 = os.loadavg().map((value) => value.toFixed(2)).join(', ');
  const commit = run('git', ['-C', root, 'rev-parse', '--short', 'HEAD']);
  // Only the servers' sources matter here (the bench scripts may be ahead of the commit).
  const dirty = run('git', ['-C', root, 'status', '--porcelain', '--untracked-files=no', '--', 'src',
    'include', 'daemon', 'examples', 'CMakeLists.txt']) ? ', with uncommitted changes to the servers\' sources' : '';
  const generators = get(load('sioc', 'idle') || load('node', 'idle'), 'options.generators');
  return `${MEMORY_BEGIN}
## Memory per connection (issue 12)

Measured by \`bench/run.sh${mode === 'full' ? '' : ` --${mode}`}\` on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, sioc commit ${commit}${dirty},
load average ${load1} (1, 5, 15 min) when the report was written${mode === 'quick' ? ' — **quick mode: a check of the harness, not figures to quote**' : ''}.
Each row is a fresh server on core 0: Node is \`node bench/node/server.js\`, sioc is \`sioc-echo\`
(examples/sioc_echo.c: the library alone) for \`/\` and polling, and \`sioc serve --config
bench/sioc-bench.json\` (the chat driver) for \`/chat\`. ${format(generators, 0)} \`sioc bench idle --hold\` processes on core 1
hold their share of the clients side by side (a process may open 20,000 files: 19,000 clients
need two). bench/run.sh reads the server's VmRSS before the first connection, then once every
client is connected and the server is idle (at most 3% of a core in each of five seconds in a
row, at most ${mode === 'quick' ? 20 : 900} s; polling: under 20% for two seconds, as the clients' heartbeat is work), ${mode === 'quick' ? '0.5' : '3'} s more, and
divides the growth by the clients; the peak is the highest VmRSS read meanwhile. Kernel socket
buffers are not in RSS. On \`/chat\`, every connection tells every other socket that its user is
online (the seeds' presence): Node runs it at the chat scenario's size only. Target: ≤ 1,024 B
per idle WebSocket client at 10,000 and 19,000 clients.

${idleTable()}

Under traffic: the server's VmRSS during the measured window of the fan-out and chat scenarios
(sampled every 100 ms by \`sioc bench\`), its peak and its value at the end, less the VmRSS before
the first connection, per connected client.

${trafficTable()}

### How to run it

\`\`\`
bench/run.sh --memory      # these tables alone, full size (10,000 and 19,000 clients), ~10 min;
                           # rewrites this section of docs/benchmarks.md in place
bench/run.sh               # everything, this section included (docs/benchmarks.md, ~25 min)
bench/run.sh --quick       # the harness end to end with 200 and 400 clients (CI, scripts/test)
BENCH_ONLY="sioc:idle" bench/run.sh --memory   # one server's rows again, the others kept
BENCH_ONLY="sioc:idle_chat" BENCH_CHAT_SIZES=10000 BENCH_MALLOC_STATS=1 bench/run.sh --memory
                           # /chat alone, one JWT and a JWT per client, with the heap in use
\`\`\`

One row by hand, against a server on port P with pid S (19,000 clients in two processes; each
prints "holding N clients" once connected, SIGTERM ends it):

\`\`\`
grep VmRSS /proc/S/status      # before
taskset -c 1 sioc bench idle --hold --clients 9500 --first-index 0    --port P --duration 1800 &
taskset -c 1 sioc bench idle --hold --clients 9500 --first-index 9500 --port P --duration 1800 &
grep VmRSS /proc/S/status      # once both hold and the server is idle; then kill %1 %2
\`\`\`

\`--transport polling\` holds a GET pending per client; \`--namespace /chat --jwt-secret S\` gives
client i its own JWT (subject \`idle-user-<i>\`, hence \`--first-index\`). The generators' own
commands of this run are in ${'`'}${path.relative(root, resultsDir)}/commands.txt${'`'}.
${MEMORY_END}`;
}

// ---- the echo profile (issue 12) --------------------------------------------------------------------

// perf report --sort dso lines ("  45.12%  [kernel.kallsyms]") of server's profiled echo run.
function profileObjects(server) {
  let text;
  try {
    text = fs.readFileSync(path.join(resultsDir, `${server}-profile-dso.txt`), 'utf8');
  } catch {
    return null;
  }
  const objects = [];
  for (const line of text.split('\n')) {
    const match = /^\s*([\d.]+)%\s+(\S.*?)\s*$/.exec(line);
    if (match) objects.push({ share: Number(match[1]), name: match[2] });
  }
  return objects.length > 0 ? objects : null;
}

const profileCategories = [
  ['kernel', (name) => /^\[kernel/.test(name)],
  ['the server\'s binary (sioc / node)', (name) => /^(sioc|sioc-echo|node|nodejs)$/.test(name)],
  ['libc (and ld.so, libm)', (name) => /^(libc|libm|ld-linux)[.-]/.test(name)],
  ['jansson', (name) => /^libjansson/.test(name)],
  ['libuv', (name) => /^libuv/.test(name)],
  ['JIT code, unknown', (name) => /^\[unknown\]|^\[JIT\]|^perf-\d+\.map/.test(name)],
];

function profileSplit(server) {
  const objects = profileObjects(server);
  if (!objects) return null;
  const split = profileCategories.map(() => 0);
  const others = [];
  let total = 0;
  for (const { share, name } of objects) {
    total += share;
    const index = profileCategories.findIndex(([, test]) => test(name));
    if (index >= 0) split[index] += share;
    else others.push({ share, name });
  }
  const other = others.reduce((sum, o) => sum + o.share, 0);
  return { split, other, others, total };
}

function profileSection() {
  const node = profileSplit('node');
  const sioc = profileSplit('sioc');
  if (!node && !sioc) {
    return mode === 'full' ? 'No profile: perf could not record on this machine (bench/run.sh said why).'
      : 'Not run in quick mode (full mode runs it, where perf may record).';
  }
  const percent = (split, index) => (split ? `${split.split[index].toFixed(1)}%` : 'n/a');
  const lines = ['| object | Node socket.io | sioc |', '| --- | ---: | ---: |'];
  profileCategories.forEach(([label], index) => lines.push(`| ${label} | ${percent(node, index)} | ${percent(sioc, index)} |`));
  const otherCell = (split) => (split ? `${split.other.toFixed(1)}%${split.others.length ? ` (${split.others.slice(0, 4).map((o) => `${o.name} ${o.share.toFixed(1)}`).join(', ')})` : ''}` : 'n/a');
  lines.push(`| others | ${otherCell(node)} | ${otherCell(sioc)} |`);
  // sioc's own user-space work, as issue 12 counts it: sioc + libc + jansson + libuv.
  const own = sioc ? sioc.split[1] + sioc.split[2] + sioc.split[3] + sioc.split[4] : undefined;
  const perTrip = (server, split, share) => {
    const result = load(server, 'profile');
    const cpu = get(result, 'server_cpu_percent');
    const rate = get(result, 'results.round_trips_per_second');
    if (!split || !(cpu > 0) || !(rate > 0)) return 'n/a';
    const micros = (cpu / 100 / rate) * 1e6;
    return `${micros.toFixed(2)} µs (user space ${((micros * share) / 100).toFixed(2)} µs) at ${format(rate, 0)}/s`;
  };
  const userShare = (split) => (split ? 100 - split.split[0] : 0);
  lines.push(`| **user space** (everything but the kernel) | ${node ? `${userShare(node).toFixed(1)}%` : 'n/a'} | ${sioc ? `${userShare(sioc).toFixed(1)}%` : 'n/a'} |`);
  lines.push(`| **sioc + libc + jansson + libuv** (the target: ≤ 10%) | | ${own === undefined ? 'n/a' : `**${own.toFixed(1)}%**`} |`);
  lines.push(`| server CPU per round trip | ${perTrip('node', node, userShare(node))} | ${perTrip('sioc', sioc, userShare(sioc))} |`);
  const stolen = (server) => {
    const value = get(load(server, 'profile'), 'steal_percent');
    return typeof value === 'number' ? `${value.toFixed(1)}%` : 'n/a';
  };
  lines.push(`| hypervisor steal during the run | ${stolen('node')} | ${stolen('sioc')} |`);
  return `perf record -e cpu-clock on the server for 5 s of a closed-loop echo run of its own
(${format(get(load('sioc', 'profile') || load('node', 'profile'), 'options.clients'), 0)} clients; the figures of the Results table come from runs without perf), split by
the object each sample fell in (\`perf report --no-children --sort dso\`), in percent of the
server's samples. Node's JIT-compiled JavaScript has no object (\`[unknown]\` or \`[JIT]\`);
V8 and libuv are inside Node's binary.
The raw split: ${'`'}${path.relative(root, resultsDir)}/<server>-profile-dso.txt${'`'}.

${lines.join('\n')}`;
}

function targets12() {
  const sioc = (name) => load('sioc', name);
  const idleVerdict = (result, clients) => {
    if (!result) return ['not measured', 'not measured'];
    if (!result.ok) return [`failed: ${result.error}`, 'not measured'];
    const value = result.results.rss_per_connection_bytes;
    const enough = result.results.clients >= clients;
    return [`${bytes(value)} at ${format(result.results.clients, 0)} clients`,
      !enough ? `not measured at ${format(clients, 0)}` : value <= 1024 ? '**met**' : '**not met**'];
  };
  const rows = [
    ['≤ 1,024 B per idle WebSocket client at 10,000 clients (sioc-echo)', idleVerdict(sioc('idle'), 10000)],
    ['≤ 1,024 B per idle WebSocket client at 19,000 clients (sioc-echo)', idleVerdict(sioc('idle-max'), 19000)],
    ['≤ 1,024 B per `/chat` client with a JWT at 10,000 clients', idleVerdict(sioc('idle-chat-1'), 10000)],
    ['≤ 1,024 B per `/chat` client with a JWT at 19,000 clients', idleVerdict(sioc('idle-chat-2'), 19000)],
  ];
  const split = profileSplit('sioc');
  const own = split ? split.split[1] + split.split[2] + split.split[3] + split.split[4] : undefined;
  rows.push(['sioc + libc + jansson + libuv ≤ 10% of the server\'s samples in the echo profile',
    own === undefined ? ['not measured', 'not measured'] : [`${own.toFixed(1)}%`, own <= 10 ? '**met**' : '**not met**']]);
  const half = sioc('echo-half');
  const p99 = get(half, 'results.latency.p99_us');
  const steal = get(half, 'steal_percent');
  rows.push(['echo: p99 ≤ 1 ms at half of the maximum rate, in a window with under 1% steal',
    typeof p99 !== 'number' ? ['not measured', 'not measured']
      : [`p99 ${format(p99, 0)} µs at ${format(get(half, 'results.round_trips_per_second'), 0)}/s, steal ${typeof steal === 'number' ? steal.toFixed(1) : 'n/a'}%`,
        !(typeof steal === 'number' && steal < 1) ? `not measured reliably (steal ${typeof steal === 'number' ? steal.toFixed(1) : 'unknown'}%)${p99 <= 1000 ? ', p99 met' : ', p99 not met'}` : p99 <= 1000 ? '**met**' : '**not met**']]);
  return ['| target (issue 12) | this run | verdict |', '| --- | --- | --- |',
    ...rows.map(([label, [value, verdict]]) => `| ${label} | ${value} | ${verdict} |`)].join('\n');
}

// Replaces the memory section of file (between its markers) with text, or puts it before the
// "## Load during each run" heading when the file has none yet.
function splice(file, text) {
  const current = fs.readFileSync(file, 'utf8');
  const begin = current.indexOf(MEMORY_BEGIN);
  const end = current.indexOf(MEMORY_END);
  let next;
  if (begin >= 0 && end > begin) {
    next = current.slice(0, begin) + text + current.slice(end + MEMORY_END.length);
  } else {
    const at = current.indexOf('\n## Load during each run');
    next = at >= 0 ? `${current.slice(0, at)}\n${text}\n${current.slice(at)}` : `${current.trimEnd()}\n\n${text}\n`;
  }
  fs.writeFileSync(file, next);
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
  try {
    execFileSync('gnuplot', [`${data}.gp`], { stdio: 'inherit' });
  } catch (error) {
    // A BENCH_ONLY run may have no figure for a panel yet: the report is still worth writing.
    console.error(`report.js: the plot was not drawn (${error.message})`);
  }
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

## Targets of issue 12

${targets12()}

## The echo profile (issue 12)

${profileSection()}

${memorySection()}

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
- **idle**: N clients connect (WebSocket + namespace CONNECT, or polling with a GET always
  pending) and stay; the server's VmRSS growth divided by N (the memory section above).
- **profile**: the closed-loop echo again, with \`perf record\` on the server (the echo profile).
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

if (section === 'memory') {
  const text = memorySection();
  fs.writeFileSync(reportFile, `${text}\n`);
  if (spliceFile) splice(spliceFile, text);
} else if (section) {
  throw new Error(`--section ${section}: only memory`);
} else {
  plot();
  fs.writeFileSync(reportFile, document());
}
