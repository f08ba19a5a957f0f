// The reconnect storm of issue 15 on the chat channel: N users (one socket each) connected to
// `sioc serve`, then all of them drop their connection and reconnect at once (what a server
// restart or a network blip does). With the seeds' presence (options.presence "all", the
// default) every reconnection is a user:status to everyone: about N² events per storm. With
// options.presence "rooms" (each user in one study room of --room-size users) only the users
// who share a room hear it.
//
//   node bench/presence/storm.js --sioc build/sioc --users 1000 --presence all
//   node bench/presence/storm.js --sioc build/sioc --users 3000 --presence rooms --room-size 10
//
// Prints one JSON line: users, presence, events (user:status received during the storm), joins
// (room:userJoined received: the clients rejoin their room on reconnection), ms
// (from the first disconnect until every socket is back in its room and no event came for 300 ms).
// Loopback only; every wait is bounded (--timeout-s, default 120). The client is Node
// (socket.io-client 4.8): with presence "all" its parsing dominates the time; the event count
// is exact.
'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const modules = path.resolve(__dirname, '../../tests/integration/node_modules');
const { io } = require(path.join(modules, 'socket.io-client'));
const jwt = require(path.join(modules, 'jsonwebtoken'));

function option(name, fallback) {
  const index = process.argv.indexOf(`--${name}`);
  return index > 0 && index + 1 < process.argv.length ? process.argv[index + 1] : fallback;
}
const sioc = option('sioc', 'build/sioc');
const users = Math.min(Number(option('users', '1000')), 9000); // two fds each, under 20,000
const presence = option('presence', 'all');
const roomSize = Number(option('room-size', '10'));
const timeoutMs = Number(option('timeout-s', '120')) * 1000;
const SECRET = 'presence-storm-secret-0123456789';
const QUIET_MS = 300;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(predicate, what, deadline) {
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await sleep(20);
  }
}

async function startDaemon(dir) {
  const config = {
    listen: { host: '127.0.0.1', port: 0 },
    store: { driver: 'sqlite', path: path.join(dir, 'storm.db') },
    auth: { jwt: { algorithm: 'HS256', secret: SECRET } },
    limits: { maxBufferedBytes: 1 << 30 },
    log: { level: 'error' },
    channels: { '/': { driver: 'chat', auth: 'jwt', options: { presence } } },
  };
  const file = path.join(dir, 'storm.json');
  fs.writeFileSync(file, JSON.stringify(config));
  const child = spawn(sioc, ['serve', '--config', file], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('sioc did not start')), 5000);
    child.stdout.once('data', (chunk) => {
      clearTimeout(timer);
      resolve(Number(/:(\d+)/.exec(chunk.toString())[1]));
    });
    child.once('exit', () => reject(new Error('sioc exited')));
  });
  return { child, port };
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sioc-storm-'));
  const { child, port } = await startDaemon(dir);
  const deadline = Date.now() + timeoutMs;
  let events = 0;
  let joins = 0; // room:userJoined, what tells room-mates with presence "rooms"
  let rejoined = 0; // room:join acknowledged
  let lastEventAt = 0;
  const sockets = [];
  try {
    for (let i = 0; i < users; i++) {
      const token = jwt.sign({ id: i + 1, firstName: `U${i}` }, SECRET);
      const socket = io(`http://127.0.0.1:${port}`, {
        auth: { token }, transports: ['websocket'], reconnection: false, forceNew: true,
      });
      socket.on('user:status', () => {
        events++;
        lastEventAt = Date.now();
      });
      socket.on('room:userJoined', () => {
        joins++;
        lastEventAt = Date.now();
      });
      socket.on('connect', () => socket.emit('room:join', `r${Math.floor(i / roomSize)}`, () => {
        rejoined++;
        lastEventAt = Date.now();
      }));
      sockets.push(socket);
      if (i % 200 === 199) await until(() => sockets.every((s) => s.connected), 'connections', deadline);
    }
    await until(() => sockets.every((s) => s.connected) && rejoined === users, 'connections', deadline);
    await until(() => Date.now() - lastEventAt > QUIET_MS * 2, 'quiet before the storm', deadline);

    events = 0;
    joins = 0;
    rejoined = 0;
    const started = Date.now();
    for (const socket of sockets) socket.io.engine.close(); // the connection drops
    await until(() => sockets.every((s) => !s.connected), 'disconnections', deadline);
    for (const socket of sockets) socket.connect();
    await until(() => sockets.every((s) => s.connected) && rejoined === users, 'reconnections', deadline);
    await until(() => Date.now() - lastEventAt > QUIET_MS, 'the last user:status', deadline);
    const ms = Math.max(lastEventAt, started) - started;
    console.log(JSON.stringify({ users, presence, roomSize, events, joins, ms }));
  } finally {
    for (const socket of sockets) socket.disconnect();
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err.message);
  process.exit(1);
});
