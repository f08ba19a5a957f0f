// The package test's client (tests/package/run.sh): the official socket.io-client against the
// daemon started from the installed package, on loopback. Checks /healthz and /readyz, connects
// with the token given, joins a room and sends a message (the store writes it), and prints
// "client ok". Every wait is bounded.
//   node client.mjs URL API_URL TOKEN
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(path.join(path.dirname(fileURLToPath(import.meta.url)), '../integration/package.json'));
const { io } = require('socket.io-client');
const [url, api, token] = process.argv.slice(2);

function fail(message) {
  console.error(`client: ${message}`);
  process.exit(1);
}
setTimeout(() => fail('no answer within 10 s'), 10000).unref();

for (const probe of ['/healthz', '/readyz']) {
  const res = await fetch(`${api}${probe}`);
  const body = await res.json();
  if (res.status !== 200 || body.status !== 'ok') fail(`${probe}: ${res.status} ${JSON.stringify(body)}`);
}
const socket = io(url, { auth: { token }, reconnection: false });
await new Promise((resolve, reject) => {
  socket.once('connect', resolve);
  socket.once('connect_error', (err) => reject(new Error(`connect_error: ${err.message}`)));
}).catch((err) => fail(err.message));
const joined = await socket.timeout(5000).emitWithAck('room:join', 'packaging');
if (!joined.ok) fail(`room:join: ${JSON.stringify(joined)}`);
const received = new Promise((resolve) => socket.once('message:received', resolve));
const sent = await socket.timeout(5000).emitWithAck('message:send', { roomId: 'packaging', text: 'from the package' });
if (!sent.ok) fail(`message:send: ${JSON.stringify(sent)}`);
const message = await received;
if (message.text !== 'from the package' || message.sender.firstName !== 'Pat') fail(`message:received: ${JSON.stringify(message)}`);
console.log(`client ok (${socket.io.engine.transport.name}, message ${message.id})`);
socket.close();
process.exit(0);
