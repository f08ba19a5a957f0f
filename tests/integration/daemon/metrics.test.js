// GET /metrics (docs/operations.md): the Prometheus text exposition format 0.0.4 on the API
// listener, parsed by a strict parser here (a malformed line fails the test), and exact counter
// deltas after a known traffic pattern. The packets and bytes expected are what the official
// client's Engine.IO socket reports sending and receiving (its packetCreate and packet events):
// the server must count the same message packets and payload bytes.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Manager } from 'socket.io-client';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { io as connectClient } from 'socket.io-client';
import { requireBin, tempDir, baseConfig, startDaemon, haveRedis, startRedis } from '../lib/daemon.js';
import { request } from '../lib/http.js';
import { connected, connectError, until } from '../lib/sio.js';

// ---------------------------------------------------------------------------
// A strict parser of the text format (https://prometheus.io/docs/instrumenting/exposition_formats/)

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"';
const VALUE = '(?:[+-]?(?:\\d+(?:\\.\\d*)?|\\.\\d+)(?:[eE][+-]?\\d+)?|[+-]?Inf|NaN)';
const SAMPLE_RE = new RegExp(`^(${NAME})(?:\\{((?:${LABEL})(?:,${LABEL})*)?\\})? (${VALUE})$`);
const HELP_RE = new RegExp(`^# HELP (${NAME}) (.*)$`);
const TYPE_RE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`);
const SUFFIXES = { histogram: ['_bucket', '_sum', '_count'], summary: ['_sum', '_count', ''] };

function parseLabels(text) {
  const labels = {};
  if (!text) return labels;
  for (const match of text.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
    if (match[1] in labels) throw new Error(`label ${match[1]} twice in {${text}}`);
    labels[match[1]] = match[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
  }
  return labels;
}

/** families: name → {type, help, samples: [{name, labels, value}]}. Throws on anything malformed. */
export function parseExposition(text) {
  if (!text.endsWith('\n')) throw new Error('the exposition must end with a line feed');
  const families = new Map();
  const seen = new Set();
  let current = null;
  for (const [index, line] of text.slice(0, -1).split('\n').entries()) {
    const where = `line ${index + 1}: ${JSON.stringify(line)}`;
    let match;
    if ((match = HELP_RE.exec(line))) {
      if (families.get(match[1])?.help !== undefined) throw new Error(`${where}: second HELP`);
      families.set(match[1], { ...families.get(match[1]), help: match[2], samples: [] });
      current = match[1];
    } else if ((match = TYPE_RE.exec(line))) {
      const family = families.get(match[1]);
      if (family?.type !== undefined) throw new Error(`${where}: second TYPE`);
      if (family?.samples?.length) throw new Error(`${where}: TYPE after samples`);
      families.set(match[1], { ...family, type: match[2], samples: [] });
      current = match[1];
    } else if (line.startsWith('#')) {
      throw new Error(`${where}: a comment that is neither HELP nor TYPE`);
    } else if ((match = SAMPLE_RE.exec(line))) {
      const [, name, labelText, valueText] = match;
      const family = families.get(current);
      if (!family?.type) throw new Error(`${where}: a sample without a TYPE before it`);
      const suffixes = SUFFIXES[family.type] ?? [''];
      if (!suffixes.some((suffix) => name === current + suffix)) throw new Error(`${where}: not of family ${current}`);
      const labels = parseLabels(labelText);
      const key = `${name}{${Object.entries(labels).sort().map(([k, v]) => `${k}=${v}`).join(',')}}`;
      if (seen.has(key)) throw new Error(`${where}: the same series twice`);
      seen.add(key);
      family.samples.push({ name, labels, value: Number(valueText.replace(/^\+?Inf$/, 'Infinity').replace(/^-Inf$/, '-Infinity')) });
    } else {
      throw new Error(`${where}: malformed`);
    }
  }
  for (const [name, family] of families) {
    if (family.type === 'counter' && !name.endsWith('_total')) throw new Error(`counter ${name} does not end with _total`);
    if (family.type === 'histogram') checkHistogram(name, family);
  }
  return families;
}

function checkHistogram(name, family) {
  const series = new Map();
  for (const s of family.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    if (!series.has(key)) series.set(key, { buckets: [], sum: null, count: null });
    const entry = series.get(key);
    if (s.name.endsWith('_bucket')) entry.buckets.push([le === '+Inf' ? Infinity : Number(le), s.value]);
    else if (s.name.endsWith('_sum')) entry.sum = s.value;
    else entry.count = s.value;
  }
  for (const [key, { buckets, sum, count }] of series) {
    if (sum === null || count === null) throw new Error(`${name} ${key}: no _sum or _count`);
    if (buckets.at(-1)?.[0] !== Infinity) throw new Error(`${name} ${key}: no +Inf bucket last`);
    for (let i = 1; i < buckets.length; i++) {
      if (!(buckets[i][0] > buckets[i - 1][0]) || buckets[i][1] < buckets[i - 1][1]) {
        throw new Error(`${name} ${key}: buckets not increasing or not cumulative`);
      }
    }
    if (buckets.at(-1)[1] !== count) throw new Error(`${name} ${key}: +Inf bucket != _count`);
  }
}

/** The value of one series (labels must match exactly), or throws when it is not there. */
function valueOf(families, name, labels = {}) {
  const familyName = [...families.keys()].find((f) => name === f || SUFFIXES.histogram.some((s) => name === f + s));
  const family = families.get(familyName);
  const sample = family?.samples.find((s) => s.name === name &&
    JSON.stringify(Object.entries(s.labels).sort()) === JSON.stringify(Object.entries(labels).sort()));
  if (!sample) throw new Error(`no series ${name} ${JSON.stringify(labels)}`);
  return sample.value;
}

describe('the exposition parser of this test refuses what Prometheus refuses', () => {
  const good = '# HELP a_total A.\n# TYPE a_total counter\na_total{x="1"} 3\n';
  it('accepts a well-formed family', () => {
    assert.equal(valueOf(parseExposition(good), 'a_total', { x: '1' }), 3);
  });
  for (const [what, text] of [
    ['no final line feed', good.slice(0, -1)],
    ['a sample without TYPE', 'a_total 1\n'],
    ['a bad value', '# TYPE a_total counter\na_total one\n'],
    ['an unquoted label', '# TYPE a_total counter\na_total{x=1} 1\n'],
    ['a counter without _total', '# TYPE a counter\na 1\n'],
    ['a sample of another family', '# TYPE a_total counter\nb_total 1\n'],
    ['the same series twice', '# TYPE a_total counter\na_total 1\na_total 2\n'],
    ['a stray comment', '# TYPE a_total counter\n# hello\na_total 1\n'],
    ['a non-cumulative histogram', '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n'],
    ['a histogram without +Inf', '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n'],
  ]) {
    it(`refuses ${what}`, () => assert.throws(() => parseExposition(text)));
  }
});

// ---------------------------------------------------------------------------
// The daemon

/** An official client whose Engine.IO socket counts the message packets it sends and receives. */
function countingManager(port, counts, opts = {}) {
  const manager = new Manager(`http://127.0.0.1:${port}`, {
    transports: ['websocket'], reconnection: false, timeout: 5000, autoConnect: false, ...opts,
  });
  manager.open();
  const bytes = (data) => (typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength);
  manager.engine.on('packetCreate', (packet) => {
    if (packet.type === 'message') { counts.sent++; counts.sentBytes += bytes(packet.data); }
  });
  manager.engine.on('packet', (packet) => {
    if (packet.type === 'message') { counts.received++; counts.receivedBytes += bytes(packet.data); }
  });
  return manager;
}

describe('GET /metrics', () => {
  let daemon;
  before(async () => {
    requireBin();
    const dir = tempDir('metrics');
    daemon = await startDaemon(dir, baseConfig(dir, {
      channels: { '/': { driver: 'bench', auth: 'none', enabled: true } },
    }));
  });
  after(async () => {
    await daemon?.stopChecked();
  });

  async function scrape() {
    const res = await daemon.api('GET', '/metrics', undefined, { key: null });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.header('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
    return parseExposition(res.text);
  }

  it('needs no key, answers HEAD, and declares every family once with HELP and TYPE', async () => {
    const families = await scrape();
    const head = await daemon.api('HEAD', '/metrics', undefined, { key: null });
    assert.equal(head.status, 200);
    assert.equal(head.text, '');
    for (const [name, family] of families) assert.ok(family.help && family.type, name);
    assert.equal(valueOf(families, 'sioc_build_info', { version: '0.1.0' }), 1);
    for (const name of ['sioc_engineio_connections_opened_total', 'sioc_socketio_broadcasts_total',
      'sioc_store_request_duration_seconds', 'process_cpu_seconds_total', 'process_resident_memory_bytes']) {
      assert.ok(families.has(name), name);
    }
    assert.equal(families.get('sioc_store_request_duration_seconds').type, 'histogram');
  });

  it('counts a known traffic pattern exactly', async (t) => {
    const before = await scrape();
    const counts = { sent: 0, received: 0, sentBytes: 0, receivedBytes: 0 };
    const managers = [countingManager(daemon.port, counts), countingManager(daemon.port, counts)];
    t.after(() => managers.forEach((m) => m.engine?.close()));
    const [a, b] = managers.map((m) => m.socket('/'));
    a.connect();
    b.connect();
    await Promise.all([connected(a), connected(b)]);
    await a.timeout(5000).emitWithAck('join', 'metrics-room');
    await b.timeout(5000).emitWithAck('join', 'metrics-room');
    const news = Promise.all([a, b].map((s) => new Promise((resolve) => s.once('news', resolve))));
    a.emit('publish', 'metrics-room', 'news', 'h\u00e9llo \u{1F600}');
    assert.deepEqual(await news, ['h\u00e9llo \u{1F600}', 'h\u00e9llo \u{1F600}']);
    await a.timeout(5000).emitWithAck('echo', 'x'.repeat(1000));
    // An unknown namespace is a refused connect (the Engine.IO connection stays).
    const nope = managers[1].socket('/nope');
    nope.connect();
    assert.equal((await connectError(nope)).message, 'Invalid namespace');
    // Engine.IO refusals: unknown sid (1), unknown transport (0), EIO=3 (5).
    for (const query of ['EIO=4&transport=polling&sid=unknown', 'EIO=4&transport=carrier-pigeon', 'EIO=3&transport=polling']) {
      const res = await request(daemon.port, { method: 'GET', path: `/socket.io/?${query}` });
      assert.equal(res.status, 400, query);
    }
    // One store read (the readiness probe's).
    assert.equal((await daemon.api('GET', '/readyz', undefined, { key: null })).status, 200);

    const during = await scrape();
    const delta = (name, labels) => valueOf(during, name, labels) - valueOf(before, name, labels);
    assert.equal(delta('sioc_engineio_connections_opened_total'), 2);
    assert.equal(delta('sioc_engineio_connections', { transport: 'websocket' }), 2);
    assert.equal(delta('sioc_engineio_connections', { transport: 'polling' }), 0);
    assert.equal(delta('sioc_socketio_sockets_connected_total'), 2);
    assert.equal(delta('sioc_socketio_sockets'), 2);
    assert.equal(delta('sioc_socketio_rooms'), 3, 'two sockets\' own rooms and metrics-room');
    assert.equal(delta('sioc_socketio_connects_refused_total'), 1);
    assert.equal(delta('sioc_socketio_broadcasts_total'), 1);
    assert.equal(delta('sioc_socketio_broadcast_deliveries_total'), 2);
    assert.equal(delta('sioc_engineio_packets_received_total'), counts.sent);
    assert.equal(delta('sioc_engineio_packets_sent_total'), counts.received);
    assert.equal(delta('sioc_engineio_received_bytes_total'), counts.sentBytes);
    assert.equal(delta('sioc_engineio_sent_bytes_total'), counts.receivedBytes);
    assert.ok(counts.sentBytes > 1000 && counts.received >= 8, JSON.stringify(counts));
    assert.equal(delta('sioc_engineio_requests_refused_total', { code: '1', reason: 'session_id_unknown' }), 1);
    assert.equal(delta('sioc_engineio_requests_refused_total', { code: '0', reason: 'transport_unknown' }), 1);
    assert.equal(delta('sioc_engineio_requests_refused_total', { code: '5', reason: 'unsupported_protocol_version' }), 1);
    assert.equal(delta('sioc_engineio_requests_refused_total', { code: '3', reason: 'bad_request' }), 0);
    assert.equal(delta('sioc_store_request_duration_seconds_count', { operation: 'user_get' }), 1);
    assert.equal(delta('sioc_store_request_failures_total', { operation: 'user_get' }), 1, 'the probe reads a user that does not exist');
    assert.equal(delta('sioc_socketio_volatile_dropped_total'), 0);
    assert.equal(delta('sioc_engineio_slow_reader_disconnections_total'), 0);

    a.disconnect();
    managers.forEach((m) => m.engine.close());
    let after;
    await until(async () => {
      after = await scrape();
      return valueOf(after, 'sioc_engineio_connections_closed_total') - valueOf(before, 'sioc_engineio_connections_closed_total') === 2;
    }, 'both connections closed');
    assert.equal(valueOf(after, 'sioc_socketio_sockets_disconnected_total') - valueOf(before, 'sioc_socketio_sockets_disconnected_total'), 2);
    // Both clients left by themselves (a close packet): engine.io's "transport close".
    const closedFor = (families, reason) => valueOf(families, 'sioc_engineio_connections_closed_by_reason_total', { reason });
    assert.equal(closedFor(after, 'transport_close') - closedFor(before, 'transport_close'), 2);
    assert.equal(closedFor(after, 'forced_close') - closedFor(before, 'forced_close'), 0);
    assert.equal(valueOf(after, 'sioc_socketio_sockets'), valueOf(before, 'sioc_socketio_sockets'));
    assert.equal(valueOf(after, 'sioc_socketio_rooms'), valueOf(before, 'sioc_socketio_rooms'));
  });

  it('process_* as the Prometheus client libraries write them', async () => {
    const families = await scrape();
    const now = Date.now() / 1000;
    const start = valueOf(families, 'process_start_time_seconds');
    assert.ok(start > now - 600 && start <= now + 1, `process_start_time_seconds ${start} vs now ${now}`);
    assert.ok(valueOf(families, 'process_cpu_seconds_total') > 0);
    assert.ok(valueOf(families, 'process_resident_memory_bytes') > 1 << 20);
    assert.ok(valueOf(families, 'process_virtual_memory_bytes') >= valueOf(families, 'process_resident_memory_bytes'));
    assert.ok(valueOf(families, 'process_open_fds') >= 3);
    assert.ok(valueOf(families, 'process_max_fds') >= valueOf(families, 'process_open_fds'));
    assert.equal(families.get('process_cpu_seconds_total').type, 'counter');
    assert.equal(families.get('process_resident_memory_bytes').type, 'gauge');
  });
});

// ---------------------------------------------------------------------------
// With a cluster and session auth: the Redis state and latency; and docs/operations.md's table
// names exactly the families the daemon writes (without and with them).

/** The metric names of docs/operations.md's table (labels and the escaped | dropped). */
function documentedMetrics() {
  const doc = fs.readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), '../../../docs/operations.md'), 'utf8');
  const section = doc.slice(doc.indexOf('\n## Metrics\n'), doc.indexOf('\n## The admin UI\n'));
  const names = new Set();
  for (const line of section.split('\n')) {
    if (!line.startsWith('| `')) continue;
    const first = line.replace(/\\\|/g, '').split('|')[1];
    for (const [, name] of first.matchAll(/`([a-z_:][a-z0-9_:]*)(?:\{[^`]*\})?`/g)) {
      assert.ok(!names.has(name), `${name} has two rows`);
      names.add(name);
    }
  }
  return names;
}

describe('GET /metrics with a cluster and session auth', { skip: !haveRedis() && 'redis-server is not installed' }, () => {
  let redis;
  let plain;
  let clustered;
  before(async () => {
    requireBin();
    redis = await startRedis();
    const dir = tempDir('metrics-cluster');
    plain = await startDaemon(dir, baseConfig(dir, { channels: { '/': { driver: 'bench', auth: 'none', enabled: true } } }), { name: 'plain.json' });
    clustered = await startDaemon(dir, baseConfig(dir, {
      store: { driver: 'sqlite', path: path.join(dir, 'clustered.db') },
      auth: {
        jwt: { algorithm: 'HS256', secret: 'integration-secret-0123456789abcdef' },
        session: { cookieName: 'connect.sid', secrets: ['a-session-secret'], redis: { host: '127.0.0.1', port: redis.port } },
      },
      cluster: { redis: { url: `redis://127.0.0.1:${redis.port}` } },
      channels: { '/': { driver: 'bench', auth: 'none', enabled: true } },
    }), { name: 'clustered.json' });
  });
  after(async () => {
    await plain?.stopChecked();
    await clustered?.stopChecked();
    await redis?.stop();
  });

  const scrapeOf = async (daemon) => {
    const res = await daemon.api('GET', '/metrics', undefined, { key: null });
    assert.equal(res.status, 200, res.text);
    return parseExposition(res.text);
  };

  it('the Redis state gauges and the PUBLISH round trips of a known number of broadcasts', async (t) => {
    let before;
    await until(async () => valueOf(before = await scrapeOf(clustered), 'sioc_cluster_redis_up') === 1 &&
      valueOf(before, 'sioc_session_redis_up') === 1, 'both Redis connections up', 5000);
    assert.equal(before.get('sioc_cluster_redis_up').type, 'gauge');
    assert.equal(before.get('sioc_cluster_redis_publish_duration_seconds').type, 'histogram');
    const socket = connectClient(`http://127.0.0.1:${clustered.port}/`, { forceNew: true, reconnection: false, transports: ['websocket'] });
    t.after(() => socket.disconnect());
    await connected(socket);
    await socket.timeout(5000).emitWithAck('join', 'metrics-room');
    for (let i = 0; i < 3; i++) {
      const news = new Promise((resolve) => socket.once('news', resolve));
      socket.emit('publish', 'metrics-room', 'news', i);
      assert.equal(await news, i);
    }
    const count = (families) => valueOf(families, 'sioc_cluster_redis_publish_duration_seconds_count');
    let after;
    // Each broadcast is one PUBLISH (the join is local, as in Node); its answer may come after the
    // local delivery.
    await until(async () => count(after = await scrapeOf(clustered)) - count(before) >= 3, 'three PUBLISH answered', 5000);
    assert.equal(count(after) - count(before), 3);
    const sum = valueOf(after, 'sioc_cluster_redis_publish_duration_seconds_sum') - valueOf(before, 'sioc_cluster_redis_publish_duration_seconds_sum');
    assert.ok(sum > 0 && sum < 3, `three loopback round trips took ${sum} s`);
    assert.equal(valueOf(after, 'sioc_cluster_redis_publish_duration_seconds_bucket', { le: '+Inf' }), count(after));
  });

  it('docs/operations.md has one row per metric family, and every row is written', async () => {
    const documented = documentedMetrics();
    const written = new Set([...(await scrapeOf(plain)).keys(), ...(await scrapeOf(clustered)).keys()]);
    assert.deepEqual([...written].filter((name) => !documented.has(name)).sort(), [], 'written but not in the table');
    assert.deepEqual([...documented].filter((name) => !written.has(name)).sort(), [], 'in the table but not written');
    for (const name of ['sioc_cluster_redis_up', 'sioc_session_redis_up']) assert.ok(!(await scrapeOf(plain)).has(name), `${name} only with its Redis`);
  });
});
