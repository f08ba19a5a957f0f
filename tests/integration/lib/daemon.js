// Helpers for daemon/*.test.js: the `sioc serve` daemon started from a JSON
// config written into a temporary directory (its SQLite file there too), its
// HTTP API, JWTs, a real redis-server, and the `sioc` subcommands.
//
// The binary is SIOC_BIN (default: build/sioc at the top of the repository).
// `sioc serve --config FILE` must print `listening on 127.0.0.1:<port>` and
// then (when the config has an "api" section) `api listening on
// 127.0.0.1:<port>` as its first stdout lines. Every process started here is
// the leader of its own process group (spawned detached) and is killed at
// the end of the test file whatever happens, as lib/server.js does.
import { spawn } from 'node:child_process';
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

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(here, '../../..');

export const JWT_SECRET = 'integration-secret-0123456789abcdef';
export const API_KEY = 'integration-api-key-0123456789';
export const ISO_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

const START_TIMEOUT_MS = 5000;
const STOP_TIMEOUT_MS = 3000;
const STDERR_KEEP = 64 * 1024;
const LISTENING_RE = /^listening on 127\.0\.0\.1:(\d+)$/;
const API_LISTENING_RE = /^api listening on 127\.0\.0\.1:(\d+)$/;

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
// Processes: every child is a process-group leader, killed on exit

const running = new Set();

function signalGroup(child, signal) {
  if (!child.pid) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // ESRCH: gone already
  }
}

function release(child) {
  running.delete(child);
  child.stdout?.destroy();
  child.stderr?.destroy();
}

function killAll() {
  for (const child of running) signalGroup(child, 'SIGKILL');
}
process.on('exit', killAll);
// lib/server.js (loaded through lib/sio.js) has the same handlers for its own children and
// exits only when it is the sole listener: with both loaded, this one (registered last) exits.
for (const [signal, number] of [['SIGINT', 2], ['SIGTERM', 15]]) {
  process.on(signal, () => {
    killAll();
    if (process.listenerCount(signal) <= 2) process.exit(128 + number);
  });
}

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
  const child = spawn(bin, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  running.add(child);
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
    release(child);
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

/**
 * The tests' base config: loopback on free ports, SQLite in `dir`, HS256 JWT,
 * the HTTP API, and `channels` (default: the chat driver on "/" with JWT).
 * `limits` are merged over short test-friendly timings.
 */
export function baseConfig(dir, { channels, limits, auth, api, ...rest } = {}) {
  return {
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
}

/** Write `config` (an object, or text as it is) to dir/name; returns the file's path. */
export function writeConfig(dir, config, name = 'sioc.json') {
  const file = path.join(dir, name);
  fs.writeFileSync(file, typeof config === 'string' ? config : `${JSON.stringify(config, null, 2)}\n`);
  return file;
}

// ---------------------------------------------------------------------------
// The daemon

export class Daemon {
  constructor(child, file, ports) {
    this.child = child;
    this.file = file;
    this.host = '127.0.0.1';
    this.port = ports.port;
    this.apiPort = ports.apiPort;
    this.stderr = '';
    this.stdout = '';
    this.exit = null;
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
    child.stderr.on('data', (chunk) => {
      this.stderr = (this.stderr + chunk.toString('utf8')).slice(-STDERR_KEEP);
    });
    child.stdout.on('data', (chunk) => {
      this.stdout = (this.stdout + chunk.toString('utf8')).slice(-STDERR_KEEP);
    });
  }

  get alive() {
    return this.exit === null;
  }

  url(pathAndQuery = '/') {
    return `http://${this.host}:${this.port}${pathAndQuery}`;
  }

  describeExit() {
    if (this.alive) return 'still running';
    return `exited (code ${this.exit.code}, signal ${this.exit.signal}); stderr:\n${this.stderr}`;
  }

  /** SIGTERM (to the daemon only), SIGKILL to its group after 3 s; resolves to the exit status. */
  async stop() {
    if (this.alive) {
      try {
        process.kill(this.child.pid, 'SIGTERM');
      } catch {
        // gone
      }
      const timer = setTimeout(() => signalGroup(this.child, 'SIGKILL'), STOP_TIMEOUT_MS);
      try {
        await this.exited;
      } finally {
        clearTimeout(timer);
      }
    }
    signalGroup(this.child, 'SIGKILL');
    release(this.child);
    return this.exit;
  }

  /**
   * stop(), then fail if the daemon had died during the tests, did not exit
   * 0 on SIGTERM, or printed a sanitizer report. For `after` hooks.
   */
  async stopChecked() {
    const died = !this.alive;
    const description = this.describeExit();
    await this.stop();
    if (died) throw new Error(`the daemon died during the tests: ${description}`);
    if (/ERROR: (Address|Leak)Sanitizer|runtime error:/.test(this.stderr)) {
      throw new Error(`sanitizer report from the daemon:\n${this.stderr}`);
    }
    if (this.exit?.code !== 0 || this.exit?.signal !== null) {
      throw new Error(`the daemon did not exit with 0 on SIGTERM: ${this.describeExit()}`);
    }
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
  const child = spawn(bin, argv, { cwd: dir, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  running.add(child);
  let stderr = '';
  const onStderr = (chunk) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-STDERR_KEEP);
  };
  child.stderr.on('data', onStderr);
  const describe = `${bin} ${argv.join(' ')}`;
  let timer;
  let onData;
  try {
    const ports = await new Promise((resolve, reject) => {
      let out = '';
      const found = {};
      onData = (chunk) => {
        out += chunk.toString('utf8');
        for (;;) {
          const nl = out.indexOf('\n');
          if (nl < 0) {
            if (out.length > 4096) reject(new Error(`no newline in the first 4 KiB of stdout of: ${describe}`));
            return;
          }
          const line = out.slice(0, nl).replace(/\r$/, '');
          out = out.slice(nl + 1);
          if (found.port === undefined) {
            const m = LISTENING_RE.exec(line);
            if (!m) return reject(new Error(`first stdout line of ${describe} is ${JSON.stringify(line)}, want "listening on 127.0.0.1:<port>"; stderr:\n${stderr}`));
            found.port = Number(m[1]);
            if (!wantApi) return resolve(found);
          } else {
            const m = API_LISTENING_RE.exec(line);
            if (!m) return reject(new Error(`second stdout line of ${describe} is ${JSON.stringify(line)}, want "api listening on 127.0.0.1:<port>"; stderr:\n${stderr}`));
            found.apiPort = Number(m[1]);
            return resolve(found);
          }
        }
      };
      child.stdout.on('data', onData);
      child.on('error', (err) => reject(new Error(`cannot spawn ${describe}: ${err.message}`)));
      child.on('exit', (code, signal) =>
        reject(new Error(`${describe} exited before listening (code ${code}, signal ${signal}); stderr:\n${stderr}`)));
      timer = setTimeout(
        () => reject(new Error(`${describe} did not print its listening lines within ${START_TIMEOUT_MS} ms; stderr:\n${stderr}`)),
        START_TIMEOUT_MS);
    });
    child.stdout.off('data', onData);
    child.stderr.off('data', onStderr);
    const daemon = new Daemon(child, file, ports);
    daemon.stderr = stderr;
    daemon.dir = dir;
    daemon.config = config;
    return daemon;
  } catch (err) {
    signalGroup(child, 'SIGKILL');
    release(child);
    throw err;
  } finally {
    clearTimeout(timer);
  }
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
 * Start redis-server on a free loopback port (or `port`), without persistence;
 * resolves to {port, stop()} once it accepts connections.
 */
export async function startRedis({ port: fixedPort } = {}) {
  for (let attempt = 0; ; attempt++) {
    const port = fixedPort ?? (await freePort());
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    running.add(child);
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
          release(child);
        },
      };
    }
    signalGroup(child, 'SIGKILL');
    release(child);
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
