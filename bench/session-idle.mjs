// Idle Socket.IO clients that prove their user with an express-session cookie (seed 000's VMT,
// seed 001's notes app), for bench/session-idle.sh: each client opens a WebSocket with its own
// signed connect.sid cookie, connects to the namespace, answers the pings and holds. `sioc bench
// idle` sends no cookie, so the daemon's session path (channel.c cookie_session) is measured
// here.
//
//   node bench/session-idle.mjs --port P --clients N --secret S [--namespace /] [--duration 600]
//
// Prints "holding N clients" once every client is connected, then holds them until SIGTERM or
// SIGINT (or --duration seconds, the bound), and exits. Loopback only; 200 attempts in flight.
// Needs the ws package (tests/integration's node_modules, or NODE_PATH).
import { createHmac } from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '../tests/integration/package.json'));
const WebSocket = require('ws');

const options = { port: 0, clients: 100, secret: '', namespace: '/', duration: 600, first: 0 };
for (let i = 2; i < process.argv.length; i += 2) {
  const key = process.argv[i].replace(/^--/, '');
  if (!(key in options)) throw new Error(`unknown option ${process.argv[i]}`);
  options[key] = typeof options[key] === 'number' ? Number(process.argv[i + 1]) : process.argv[i + 1];
}
if (options.clients > 2000) throw new Error('at most 2,000 clients');

// express-session's cookie: "s:" + sid + "." + cookie-signature's HMAC-SHA256, URI-encoded.
const sessionId = (index) => `bench-session-${index}`;
const cookieOf = (index) => {
  const sid = sessionId(index);
  const signature = createHmac('sha256', options.secret).update(sid).digest('base64').replace(/=+$/, '');
  return `connect.sid=${encodeURIComponent(`s:${sid}.${signature}`)}`;
};

const sockets = [];
let failed = 0;

function open(index) {
  return new Promise((resolve) => {
    const url = `ws://127.0.0.1:${options.port}/socket.io/?EIO=4&transport=websocket`;
    const ws = new WebSocket(url, { headers: { Cookie: cookieOf(index) }, perMessageDeflate: false });
    const nsp = options.namespace === '/' ? '' : `${options.namespace},`;
    const timer = setTimeout(() => done(false), 20000);
    const done = (ok) => {
      clearTimeout(timer);
      if (!ok) {
        failed++;
        ws.terminate();
      }
      resolve();
    };
    ws.on('message', (data) => {
      const text = data.toString();
      if (text[0] === '0') ws.send(`40${nsp}`);
      else if (text === '2') ws.send('3');
      else if (text.startsWith(`40${nsp}{`)) done(true);
      else if (text.startsWith(`44${nsp}`)) {
        console.error(`client ${index} refused: ${text}`);
        done(false);
      }
    });
    ws.on('error', () => done(false));
    sockets.push(ws);
  });
}

const inFlight = 200;
let next = 0;
await Promise.all(
  Array.from({ length: Math.min(inFlight, options.clients) }, async () => {
    while (next < options.clients) await open(options.first + next++);
  }),
);
console.log(`holding ${options.clients - failed} clients (${failed} failed)`);

const stop = () => {
  for (const ws of sockets) ws.terminate();
  process.exit(failed > 0 ? 1 : 0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
setTimeout(stop, options.duration * 1000);
