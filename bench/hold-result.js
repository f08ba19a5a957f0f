// One idle-memory result of bench/run.sh (hold_idle) from several `sioc bench idle --hold`
// generators that held their clients side by side: the server's VmRSS that the script read
// (before the first connection, its peak, after the clients settled) per client, with what the
// generators' own JSON says (connection failures, CPU, steal). Writes it in the shape of a
// `sioc bench idle --json` result, prints its one-line summary.
//
// usage: node bench/hold-result.js --out FILE --server NAME --label node|sioc --clients N
//          --before KIB --peak KIB --after KIB --began S --ramped S --settled-at S --settled 0|1
//          [--heap-before BYTES --heap-after BYTES] --exit-codes "RC..." --args "GENERATOR ARGS"
//          GENERATOR.json...
'use strict';

const fs = require('node:fs');

const args = process.argv.slice(2);
const options = {};
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i].startsWith('--')) options[args[i].slice(2)] = args[++i];
  else files.push(args[i]);
}
const number = (name) => Number(options[name]);

const generators = files.map((file) => {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    return { ok: false, error: `${file}: ${error.message}` };
  }
});
const exitCodes = (options['exit-codes'] || '').split(' ').filter(Boolean).map(Number);
const clients = number('clients');
const held = generators.reduce((sum, g) => sum + ((g.results && g.results.clients) || 0), 0);
const before = number('before');
const after = number('after');
const peak = number('peak');
const ramped = number('ramped');
const failed = generators.find((g) => !g.ok);
let error = null;
if (generators.length === 0) error = 'no generator wrote a result';
else if (failed) error = failed.error || 'a generator failed';
else if (exitCodes.some((code) => code !== 0)) error = `generator exit codes ${exitCodes.join(' ')}`;
else if (!(ramped > 0)) error = 'the clients were not all connected';
else if (held !== clients) error = `${held} of ${clients} clients held`;
else if (!(before > 0) || !(after > 0)) error = "the server's VmRSS could not be read";
const ok = error === null;
const max = (key) => Math.max(0, ...generators.map((g) => (typeof g[key] === 'number' ? g[key] : 0)));
const sum = (key) => generators.reduce((total, g) => total + (typeof g[key] === 'number' ? g[key] : 0), 0);
const argText = options.args || '';
const namespace = (/--namespace (\S+)/.exec(argText) || [null, '/'])[1];
const perClient = (kib) => (ok ? ((kib - before) * 1024) / clients : null);

const result = {
  scenario: 'idle',
  server: options.label,
  server_program: options.server,
  ok,
  ...(error ? { error } : {}),
  options: {
    clients,
    generators: generators.length,
    transport: /--transport polling/.test(argText) ? 'polling' : 'websocket',
    namespace,
    jwt_per_client: /--jwt-secret/.test(argText),
  },
  window_seconds: number('settled-at') - (ramped > 0 ? ramped : number('began')),
  generator_cpu_percent: sum('generator_cpu_percent'),
  generator_saturated: generators.some((g) => g.generator_saturated),
  server_cpu_percent: max('server_cpu_percent'),
  // Each generator counts the other as another process: the machine's load is load_average.
  steal_percent: max('steal_percent'),
  connection_failures: sum('connection_failures'),
  // The machine's load average when the figure was read (other helpers share its 2 cores).
  load_average: fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number),
  results: {
    clients,
    generators: generators.length,
    rss_before_kib: before,
    rss_peak_kib: peak,
    rss_after_kib: after,
    rss_per_connection_bytes: perClient(after),
    peak_per_connection_bytes: perClient(peak),
    ramp_seconds: ramped > 0 ? ramped - number('began') : null,
    settled: options.settled === '1',
  },
};
// BENCH_MALLOC_STATS=1: the bytes glibc's malloc_stats() counted in use, before and after.
const heapBefore = number('heap-before');
const heapAfter = number('heap-after');
if (ok && heapBefore > 0 && heapAfter > 0) {
  result.results.heap_in_use_before_bytes = heapBefore;
  result.results.heap_in_use_after_bytes = heapAfter;
  result.results.heap_per_connection_bytes = (heapAfter - heapBefore) / clients;
}
fs.writeFileSync(options.out, `${JSON.stringify(result, null, 2)}\n`);
const bytes = (value) => (value === null ? 'n/a' : Math.round(value).toLocaleString('en-US'));
console.log(`idle ${options.label} (${options.server}, ${result.options.transport}, ${namespace}` +
  `${result.options.jwt_per_client ? ', a JWT per client' : ''}): ` +
  (ok ? '' : `FAILED: ${error}; `) +
  `${clients} clients from ${generators.length} generators: server RSS ${before} -> ${after} KiB ` +
  `(peak ${peak}), ${bytes(result.results.rss_per_connection_bytes)} bytes per connection` +
  `${result.results.settled ? '' : ' (the server had not settled)'}` +
  (result.results.heap_per_connection_bytes !== undefined
    ? `; heap in use ${bytes(result.results.heap_per_connection_bytes)} bytes per connection`
    : ''));
