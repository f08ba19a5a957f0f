// Start the server under test on a free loopback port and stop it again.
//
// The command line comes from an environment variable (EIO_ECHO for the
// Engine.IO echo server); `--host 127.0.0.1 --port 0` and the test's flags are
// appended. The server must print `listening on 127.0.0.1:<port>` as the first
// line of its stdout within 5 s.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REF_EIO_ECHO = path.resolve(here, '../ref/eio-echo.js');

const START_TIMEOUT_MS = 5000;
const STOP_TIMEOUT_MS = 2000;
const STDERR_KEEP = 16 * 1024;
export const LISTENING = { re: /^listening on 127\.0\.0\.1:(\d+)$/, want: 'listening on 127.0.0.1:<port>' };

// Children still to be killed, each the leader of its own process group
// (spawned detached) so that wrappers (shell scripts, valgrind, env ...) go
// down with their server and cannot hold our stdio pipes open. lib/daemon.js
// registers its children (the daemon, redis-server, `sioc` subcommands) here too.
const running = new Set();

/** Spawn `file argv` detached (its own process group), killed at exit if still running. */
export function spawnTracked(file, argv, options = {}) {
  const child = spawn(file, argv, { stdio: ['ignore', 'pipe', 'pipe'], ...options, detached: true });
  running.add(child);
  return child;
}

export function signalGroup(child, signal) {
  if (!child.pid) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // ESRCH: the whole group is gone already
  }
}

/** Forget a child that is dead (or about to be): no longer killed at exit, pipes closed. */
export function releaseChild(child) {
  running.delete(child);
  child.stdout?.destroy();
  child.stderr?.destroy();
}

// Split a command line like a shell would for simple cases: whitespace
// separates words, single and double quotes group, backslash escapes.
export function splitCommand(line) {
  const words = [];
  let word = null;
  let quote = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = null;
      else if (c === '\\' && quote === '"' && i + 1 < line.length) word += line[++i];
      else word += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      word ??= '';
    } else if (c === '\\' && i + 1 < line.length) {
      word = (word ?? '') + line[++i];
    } else if (/\s/.test(c)) {
      if (word !== null) words.push(word);
      word = null;
    } else {
      word = (word ?? '') + c;
    }
  }
  if (quote) throw new Error(`unterminated quote in command line: ${line}`);
  if (word !== null) words.push(word);
  return words;
}

// The Engine.IO echo server command, as an argv array.
export function eioEchoCommand() {
  const line = process.env.EIO_ECHO;
  if (line && line.trim()) return splitCommand(line.trim());
  return [process.execPath, REF_EIO_ECHO];
}

// True when the server under test is the Node reference (ref/eio-echo.js):
// tests for behaviour where sioc deliberately differs from Node are skipped
// there. EIO_ECHO_IS_REFERENCE=1/0 overrides the guess.
export function isReference() {
  const forced = process.env.EIO_ECHO_IS_REFERENCE;
  if (forced === '1') return true;
  if (forced === '0') return false;
  return eioEchoCommand().some((word) => path.resolve(word) === REF_EIO_ECHO);
}

// Use as `{ skip: referenceSkip('why') }` in a test's options.
export function referenceSkip(reason) {
  return isReference() ? `Node reference differs (sioc is deliberately stricter): ${reason}` : false;
}

/**
 * A started server process. `options`: `what` names it in errors ("server"),
 * `keep` bytes of stderr (and of stdout when `keepStdout`; else stdout is
 * drained) are kept, `stopTimeoutMs` before SIGKILL, and `termGroup` false
 * sends the SIGTERM of stop() to the server alone rather than its group.
 */
export class RunningServer {
  constructor(child, port, argv, { what = 'server', keep = STDERR_KEEP, keepStdout = false,
    stopTimeoutMs = STOP_TIMEOUT_MS, termGroup = true } = {}) {
    this.child = child;
    this.host = '127.0.0.1';
    this.port = port;
    this.argv = argv;
    this.what = what;
    this.stopTimeoutMs = stopTimeoutMs;
    this.termGroup = termGroup;
    this.stderr = '';
    this.exit = null;
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
    child.stderr.on('data', (chunk) => {
      this.stderr = (this.stderr + chunk.toString('utf8')).slice(-keep);
    });
    if (keepStdout) {
      this.stdout = '';
      child.stdout.on('data', (chunk) => {
        this.stdout = (this.stdout + chunk.toString('utf8')).slice(-keep);
      });
    } else {
      child.stdout.resume();
    }
  }

  get alive() {
    return this.exit === null;
  }

  url(pathAndQuery = '/') {
    return `http://${this.host}:${this.port}${pathAndQuery}`;
  }

  // SIGTERM to the server's process group (or the server alone), then SIGKILL
  // to the group if the server is still there after the timeout; stragglers
  // in its group are killed too. Resolves to the exit status.
  async stop() {
    if (this.alive) {
      if (this.termGroup) {
        signalGroup(this.child, 'SIGTERM');
      } else {
        try {
          process.kill(this.child.pid, 'SIGTERM');
        } catch {
          // ESRCH: gone already
        }
      }
      const timer = setTimeout(() => signalGroup(this.child, 'SIGKILL'), this.stopTimeoutMs);
      try {
        await this.exited;
      } finally {
        clearTimeout(timer);
      }
    }
    signalGroup(this.child, 'SIGKILL');
    releaseChild(this.child);
    return this.exit;
  }

  /**
   * stop(), but first fail if the server had died on its own during the
   * tests (crash, abort): use in `after` hooks so a crash is reported with
   * its exit status and stderr rather than as ECONNREFUSED in later tests.
   */
  async stopChecked() {
    const died = !this.alive;
    const description = this.describeExit();
    await this.stop();
    if (died) throw new Error(`the ${this.what} died during the tests: ${description}`);
    // A clean shutdown: exit 0 on SIGTERM, and no sanitizer report (AddressSanitizer,
    // UndefinedBehaviorSanitizer, LeakSanitizer at exit) anywhere in stderr.
    if (/ERROR: (Address|Leak)Sanitizer|runtime error:/.test(this.stderr)) {
      throw new Error(`sanitizer report from the ${this.what}:\n${this.stderr}`);
    }
    if (this.exit?.code !== 0) {
      throw new Error(`the ${this.what} did not exit with 0 on SIGTERM: ${this.describeExit()}`);
    }
  }

  describeExit() {
    if (this.alive) return 'still running';
    return `exited (code ${this.exit.code}, signal ${this.exit.signal}); stderr:\n${this.stderr}`;
  }
}

/**
 * Spawn `file argv` (spawnTracked) and wait for its first stdout lines, the
 * i-th matching `lines[i].re` (a regexp whose group 1 is a port; `want` says
 * it in errors). Resolves to
 * {child, ports, stderr} (the last `keep` bytes of stderr so far); rejects,
 * after killing the child, on another line or if the lines do not come
 * within 5 s.
 */
export async function spawnListening(file, argv, spawnOptions, lines, keep = STDERR_KEEP) {
  const child = spawnTracked(file, argv, spawnOptions);
  let stderr = '';
  const onStderr = (chunk) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-keep);
  };
  child.stderr.on('data', onStderr);
  const describe = `${file} ${argv.join(' ')}`;
  const ordinal = ['first', 'second', 'third'];
  let timer;
  let onData;
  try {
    const ports = await new Promise((resolve, reject) => {
      let out = '';
      const found = [];
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
          const { re, want } = lines[found.length];
          const m = re.exec(line);
          if (!m) {
            return reject(new Error(`${ordinal[found.length] ?? 'next'} stdout line of ${describe} is ${JSON.stringify(line)}, want "${want}"; stderr:\n${stderr}`));
          }
          found.push(Number(m[1]));
          if (found.length === lines.length) return resolve(found);
        }
      };
      child.stdout.on('data', onData);
      child.on('error', (err) => reject(new Error(`cannot spawn ${describe}: ${err.message}`)));
      child.on('exit', (code, signal) =>
        reject(new Error(`${describe} exited before listening (code ${code}, signal ${signal}); stderr:\n${stderr}`)));
      timer = setTimeout(
        () => reject(new Error(`${describe} did not print its listening line(s) within ${START_TIMEOUT_MS} ms; stderr:\n${stderr}`)),
        START_TIMEOUT_MS);
    });
    child.stdout.off('data', onData);
    child.stderr.off('data', onStderr);
    return { child, ports, stderr };
  } catch (err) {
    signalGroup(child, 'SIGKILL');
    releaseChild(child);
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Start `command` (argv array) with `--host 127.0.0.1 --port 0` and `flags`.
 * Resolves to a RunningServer once the first stdout line announces the port;
 * rejects (after killing the child) if that does not happen within 5 s.
 */
export async function startServer(command, flags = []) {
  const argv = [...command.slice(1), '--host', '127.0.0.1', '--port', '0', ...flags];
  const { child, ports, stderr } = await spawnListening(command[0], argv, {}, [LISTENING]);
  const server = new RunningServer(child, ports[0], argv);
  server.stderr = stderr;
  return server;
}

/** Start the Engine.IO echo server under test (EIO_ECHO) with `flags`. */
export function startEioEcho(flags = []) {
  return startServer(eioEchoCommand(), flags);
}

function killAll() {
  for (const child of running) signalGroup(child, 'SIGKILL');
}

// Last resort if a test file ends without running its `after` hooks. The
// test runner exits on SIGINT/SIGTERM (so 'exit' runs); when a file is run
// by itself, the signal handlers below do the killing and exit.
process.on('exit', killAll);
for (const [signal, number] of [['SIGINT', 2], ['SIGTERM', 15]]) {
  process.on(signal, () => {
    killAll();
    if (process.listenerCount(signal) === 1) process.exit(128 + number);
  });
}
