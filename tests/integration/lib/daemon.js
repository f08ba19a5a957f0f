// Helpers for daemon/*.test.js: the `sioc serve` daemon started from a JSON
// config written into a temporary directory (its SQLite file there too), its
// HTTP API, JWTs, a real redis-server, and the `sioc` subcommands.
//
// The binary is SIOC_BIN (default: build/sioc at the top of the repository).
// `sioc serve --config FILE` must print `listening on 127.0.0.1:<port>` and
// then (when the config has an "api" section) `api listening on
// 127.0.0.1:<port>` as its first stdout lines. Every process started here is
// the leader of its own process group (spawned detached) and is killed at
// the end of the test file whatever happens (lib/server.js does both).
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import jwt from 'jsonwebtoken';
import { request } from './http.js';
import { Clients, sleep } from './sio.js';
import { LISTENING, RunningServer, releaseChild, signalGroup, spawnListening, spawnTracked } from './server.js';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(here, '../../..');

export const JWT_SECRET = 'integration-secret-0123456789abcdef';
export const API_KEY = 'integration-api-key-0123456789';
export const ISO_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

const STOP_TIMEOUT_MS = 3000;
const STDERR_KEEP = 64 * 1024;
const API_LISTENING = { re: /^api listening on 127\.0\.0\.1:(\d+)$/, want: 'api listening on 127.0.0.1:<port>' };

// ---------------------------------------------------------------------------
// The binary

/** Absolute path of the sioc binary under test (SIOC_BIN, else <repo>/build/sioc). */
export function siocBin() {
  const bin = process.env.SIOC_BIN?.trim();
  return bin ? path.resolve(bin) : path.join(REPO_ROOT, 'build', 'sioc');
}

/** Throws with how to build it when the binary is not there (the suite fails, it is not skipped). */
export function requireBin() {
  const bin = siocBin();
  let ok = false;
  try {
    ok = fs.statSync(bin).isFile();
    fs.accessSync(bin, fs.constants.X_OK);
  } catch {
    ok = false;
  }
  if (!ok) {
    throw new Error(
      `the sioc binary is missing: ${bin}\n` +
        '  build it:  cmake -S . -B build && cmake --build build -j2   (at the top of the repository)\n' +
        '  or point SIOC_BIN at one:  SIOC_BIN=/path/to/sioc node --test tests/integration/daemon/');
  }
  return bin;
}

// ---------------------------------------------------------------------------
// Processes (spawned and killed at exit by lib/server.js)

/** A free loopback TCP port (for servers that cannot take port 0, e.g. redis-server). */
export async function freePort() {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address();
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

/**
 * Run `sioc args...` to completion (bounded: killed after `timeoutMs`).
 * Resolves to {code, signal, stdout, stderr}.
 */
export async function runSioc(args, { cwd, env, timeoutMs = 5000 } = {}) {
  const bin = requireBin();
  const child = spawnTracked(bin, args, { cwd, env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c) => (stdout += c.toString('utf8')));
  child.stderr.on('data', (c) => (stderr += c.toString('utf8')));
  const timer = setTimeout(() => signalGroup(child, 'SIGKILL'), timeoutMs);
  try {
    const [code, signal] = await once(child, 'close');
    return { code, signal, stdout, stderr };
  } finally {
    clearTimeout(timer);
    signalGroup(child, 'SIGKILL');
    releaseChild(child);
  }
}

// ---------------------------------------------------------------------------
// Temporary directories

const tempDirs = [];
/** A new temporary directory, removed when the process exits. */
export function tempDir(name = 'daemon') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `sioc-${name}-`));
  tempDirs.push(dir);
  return dir;
}
process.on('exit', () => {
  if (process.env.SIOC_KEEP_TEMP) return;
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------
// Configs

/** store.dispatch of the PostgreSQL suites (SIOC_TEST_PG_DISPATCH), or undefined: the default. */
export const PG_DISPATCH = process.env.SIOC_TEST_PG_DISPATCH || undefined;

/**
 * The tests' base config: loopback on free ports, SQLite in `dir`, HS256 JWT,
 * the HTTP API, and `channels` (default: the chat driver on "/" with JWT).
 * `limits` are merged over short test-friendly timings.
 */
export function baseConfig(dir, { channels, limits, auth, api, ...rest } = {}) {
  const config = {
    listen: { host: '127.0.0.1', port: 0 },
    path: '/socket.io/',
    limits: { pingIntervalMs: 5000, pingTimeoutMs: 5000, ...limits },
    store: { driver: 'sqlite', path: path.join(dir, 'sioc.db') },
    auth: auth ?? { jwt: { algorithm: 'HS256', secret: JWT_SECRET } },
    api: api ?? { listen: { host: '127.0.0.1', port: 0 }, key: API_KEY },
    log: { level: 'info' },
    channels: channels ?? { '/': { driver: 'chat', auth: 'jwt', enabled: true } },
    ...rest,
  };
  // SIOC_TEST_PG_DISPATCH=loop (or threads): every PostgreSQL suite with that store.dispatch.
  if (config.store.driver === 'postgres' && PG_DISPATCH && config.store.dispatch === undefined) {
    config.store = { ...config.store, dispatch: PG_DISPATCH };
  }
  return config;
}

/** Write `config` (an object, or text as it is) to dir/name; returns the file's path. */
export function writeConfig(dir, config, name = 'sioc.json') {
  const file = path.join(dir, name);
  fs.writeFileSync(file, typeof config === 'string' ? config : `${JSON.stringify(config, null, 2)}\n`);
  return file;
}

// ---------------------------------------------------------------------------
// The daemon

// SIGTERM goes to the daemon alone (it shuts down by itself), SIGKILL to its group after 3 s.
export class Daemon extends RunningServer {
  constructor(child, file, ports, argv) {
    super(child, ports[0], argv, { what: 'daemon', keep: STDERR_KEEP, keepStdout: true, stopTimeoutMs: STOP_TIMEOUT_MS, termGroup: false });
    this.file = file;
    this.apiPort = ports[1];
  }

  /**
   * One HTTP API request. `body`: an object/array (sent as JSON), a string or
   * Buffer (sent as it is), or undefined. `key`: the API key (default the
   * tests' key; null sends none). Resolves to {status, json, text, headers}
   * (json null when the body is not JSON).
   */
  async api(method, pathAndQuery, body, { key = API_KEY, headers = [], contentType = 'application/json' } = {}) {
    const list = [...headers];
    if (key !== null) list.push(['Authorization', `Bearer ${key}`]);
    let payload = null;
    if (body !== undefined) {
      payload = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
      if (contentType) list.push(['Content-Type', contentType]);
    }
    const res = await request(this.apiPort, { method, path: pathAndQuery, headers: list, body: payload });
    let json = null;
    try {
      json = res.text ? JSON.parse(res.text) : null;
    } catch {
      json = null;
    }
    return { status: res.status, json, text: res.text, headers: res.headers, header: res.header };
  }

  /** api() that asserts the status and returns the JSON body. */
  async apiOk(method, pathAndQuery, body, status = 200) {
    const res = await this.api(method, pathAndQuery, body);
    assert.equal(res.status, status, `${method} ${pathAndQuery} → ${res.status} ${res.text}`);
    return res.json;
  }

  /** A Clients (lib/sio.js) bound to this daemon, closed after test `t`. */
  clients(t) {
    return new Clients(this, t);
  }
}

/**
 * Start `sioc serve --config FILE` with `config` (object or text) written to
 * `dir` (config null: `sioc serve` alone, in `dir`). Resolves once the listening line(s) are printed; rejects (after
 * killing it) if that does not happen within 5 s.
 */
export async function startDaemon(dir, config, { name = 'sioc.json', env, args = [] } = {}) {
  const bin = requireBin();
  // config null: no --config, the embedded default (its API runs when SIOC_API_KEY is set).
  const file = config === null ? null : writeConfig(dir, config, name);
  const wantApi = config === null ? Boolean(env?.SIOC_API_KEY)
    : typeof config === 'string' ? /"api"\s*:/.test(config) : Boolean(config.api);
  const argv = ['serve', ...(file ? ['--config', file] : []), ...args];
  const { child, ports, stderr } = await spawnListening(bin, argv, { cwd: dir, env: { ...process.env, ...env } },
    wantApi ? [LISTENING, API_LISTENING] : [LISTENING], STDERR_KEEP);
  const daemon = new Daemon(child, file, ports, argv);
  daemon.stderr = stderr;
  daemon.dir = dir;
  daemon.config = config;
  return daemon;
}

// ---------------------------------------------------------------------------
// Users and tokens

let counter = 0;
/** A name unique in this run (user ids, room names). */
export const unique = (name) => `${name}-${process.pid}-${++counter}`;

/** A user profile as the tokens carry it (the seeds' socket.user). */
export function makeUser(first, extra = {}) {
  return {
    id: unique(first.toLowerCase()),
    firstName: first,
    lastName: `${first}son`,
    role: 'student',
    avatar: `https://example.test/${first.toLowerCase()}.png`,
    ...extra,
  };
}

/** HS256 token (npm jsonwebtoken) for `user` ({id, firstName, ...}), valid for an hour. */
export function tokenFor(user, { secret = JWT_SECRET, ...options } = {}) {
  return jwt.sign({ ...user }, secret, { algorithm: 'HS256', expiresIn: '1h', ...options });
}

/** The user object the daemon puts in payloads (`sender`, `user`): the token's profile. */
export function publicUser(user) {
  const { id, firstName, lastName, role, avatar } = user;
  return { id, firstName, lastName, role, avatar };
}

/** Connect `user` (a token in auth.token, as seeds 002/003) to `nsp` over `mode`. */
export function connectAs(c, user, { nsp = '/', mode = 'websocket', token, ...opts } = {}) {
  return c.connect(mode, nsp, { auth: { token: token ?? tokenFor(user) }, ...opts });
}

// ---------------------------------------------------------------------------
// redis-server

/** True when redis-server is installed. */
export function haveRedis() {
  return (process.env.PATH ?? '/usr/bin:/bin').split(':').some((dir) => {
    try {
      fs.accessSync(path.join(dir, 'redis-server'), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * Start redis-server on a free loopback port (or `port`), without persistence (with
 * `requirepass`: that password required, redis-server --requirepass);
 * resolves to {port, stop()} once it accepts connections.
 */
export async function startRedis({ port: fixedPort, requirepass } = {}) {
  for (let attempt = 0; ; attempt++) {
    const port = fixedPort ?? (await freePort());
    const auth = requirepass !== undefined ? ['--requirepass', requirepass] : [];
    const child = spawnTracked('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', ...auth]);
    let out = '';
    const ready = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), 5000);
      child.stdout.on('data', (chunk) => {
        out += chunk.toString('utf8');
        if (/Ready to accept connections/.test(out)) {
          clearTimeout(timer);
          resolve(true);
        }
      });
      child.on('exit', () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
    if (ready) {
      child.stdout.resume();
      child.stderr.resume();
      return {
        port,
        async stop() {
          signalGroup(child, 'SIGKILL');
          if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
          releaseChild(child);
        },
      };
    }
    signalGroup(child, 'SIGKILL');
    releaseChild(child);
    if (attempt >= 2) throw new Error(`redis-server did not start on port ${port}:\n${out}`);
  }
}

/**
 * The user's presence through the HTTP API (GET /presence/users/{id}):
 * {userId, status, lastActivity}. A user never stored has lastActivity null.
 */
export async function presenceOf(daemon, userId) {
  const res = await daemon.api('GET', `/presence/users/${encodeURIComponent(userId)}`);
  assert.equal(res.status, 200, `presence of ${userId}: ${res.status} ${res.text}`);
  return res.json;
}

/** Create a room through the HTTP API (POST /rooms); the stored room. */
export async function createRoom(daemon, { name = unique('room'), ...rest } = {}) {
  return daemon.apiOk('POST', '/rooms', { name, ...rest }, 201);
}

/** Every stored message of a room, oldest first, paging GET /rooms/{id}/messages with before=. */
export async function roomMessages(daemon, roomId, pageSize = 10) {
  const all = [];
  let before = null;
  for (let page = 0; page < 100; page++) {
    const query = `limit=${pageSize}${before ? `&before=${encodeURIComponent(before)}` : ''}`;
    const messages = await daemon.apiOk('GET', `/rooms/${encodeURIComponent(roomId)}/messages?${query}`);
    assert.ok(Array.isArray(messages), `messages of ${roomId}: ${JSON.stringify(messages)}`);
    all.unshift(...messages);
    if (messages.length < pageSize) return all;
    before = messages[0].id;
  }
  throw new Error(`more than 100 pages of messages in ${roomId}`);
}

export { sleep };
