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
const LISTENING_RE = /^listening on 127\.0\.0\.1:(\d+)$/;

// Children still to be killed, each the leader of its own process group
// (spawned detached) so that wrappers (shell scripts, valgrind, env ...) go
// down with their server and cannot hold our stdio pipes open.
const running = new Set();

function signalGroup(child, signal) {
  if (!child.pid) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // ESRCH: the whole group is gone already
  }
}

function releaseChild(child) {
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

class RunningServer {
  constructor(child, port, argv) {
    this.child = child;
    this.host = '127.0.0.1';
    this.port = port;
    this.argv = argv;
    this.stderr = '';
    this.exit = null;
    child.stderr.on('data', (chunk) => {
      this.stderr = (this.stderr + chunk.toString('utf8')).slice(-STDERR_KEEP);
    });
    child.stdout.resume();
    child.on('exit', (code, signal) => {
      this.exit = { code, signal };
    });
  }

  get alive() {
    return this.exit === null;
  }

  url(pathAndQuery = '/') {
    return `http://${this.host}:${this.port}${pathAndQuery}`;
  }

  // SIGTERM to the server's process group, then SIGKILL if the server is
  // still there after 2 s; stragglers in its group are killed too.
  async stop() {
    if (this.alive) {
      const exited = once(this.child, 'exit');
      signalGroup(this.child, 'SIGTERM');
      const timer = setTimeout(() => signalGroup(this.child, 'SIGKILL'), STOP_TIMEOUT_MS);
      try {
        await exited;
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
    if (died) throw new Error(`the server died during the tests: ${description}`);
    // A clean shutdown: exit 0 on SIGTERM, and no sanitizer report (AddressSanitizer,
    // UndefinedBehaviorSanitizer, LeakSanitizer at exit) anywhere in stderr.
    if (/ERROR: (Address|Leak)Sanitizer|runtime error:/.test(this.stderr)) {
      throw new Error(`sanitizer report from the server:\n${this.stderr}`);
    }
    if (this.exit?.code !== 0) {
      throw new Error(`the server did not exit cleanly on SIGTERM: ${this.describeExit()}`);
    }
  }

  describeExit() {
    if (this.alive) return 'still running';
    return `exited (code ${this.exit.code}, signal ${this.exit.signal}); stderr:\n${this.stderr}`;
  }
}

/**
 * Start `command` (argv array) with `--host 127.0.0.1 --port 0` and `flags`.
 * Resolves to a RunningServer once the first stdout line announces the port;
 * rejects (after killing the child) if that does not happen within 5 s.
 */
export async function startServer(command, flags = []) {
  const argv = [...command.slice(1), '--host', '127.0.0.1', '--port', '0', ...flags];
  const child = spawn(command[0], argv, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  running.add(child);
  let stderr = '';
  const onStderr = (chunk) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-STDERR_KEEP);
  };
  child.stderr.on('data', onStderr);

  const describe = `${command[0]} ${argv.join(' ')}`;
  let timer;
  try {
    const port = await new Promise((resolve, reject) => {
      let out = '';
      const onData = (chunk) => {
        out += chunk.toString('utf8');
        const nl = out.indexOf('\n');
        if (nl < 0) {
          if (out.length > 4096) reject(new Error(`no newline in the first 4 KiB of stdout of: ${describe}`));
          return;
        }
        child.stdout.off('data', onData);
        const line = out.slice(0, nl).replace(/\r$/, '');
        const m = LISTENING_RE.exec(line);
        if (!m) reject(new Error(`first stdout line of ${describe} is ${JSON.stringify(line)}, want "listening on 127.0.0.1:<port>"`));
        else resolve(Number(m[1]));
      };
      child.stdout.on('data', onData);
      child.on('error', (err) => reject(new Error(`cannot spawn ${describe}: ${err.message}`)));
      child.on('exit', (code, signal) =>
        reject(new Error(`${describe} exited before listening (code ${code}, signal ${signal}); stderr:\n${stderr}`)));
      timer = setTimeout(
        () => reject(new Error(`${describe} did not print its listening line within ${START_TIMEOUT_MS} ms; stderr:\n${stderr}`)),
        START_TIMEOUT_MS);
    });
    child.stderr.off('data', onStderr);
    const server = new RunningServer(child, port, argv);
    server.stderr = stderr;
    return server;
  } catch (err) {
    signalGroup(child, 'SIGKILL');
    releaseChild(child);
    throw err;
  } finally {
    clearTimeout(timer);
  }
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
