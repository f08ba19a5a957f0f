// The Node side of bench/compression.mjs: socket.io 4.8 (bench/node's copy) with the two events
// the benchmark uses, the same as examples/sioc_echo.c answers them:
//   "message" (...args)            -> socket.emit("message-back", ...args)
//   "broadcast" (event, ...args)   -> socket.broadcast.emit(event, ...args)
//
//   node bench/compression-node.cjs --port 0 --per-message-deflate off|nct|takeover
//
// nct: perMessageDeflate with serverNoContextTakeover + clientNoContextTakeover, what sioc always
// negotiates; takeover: engine.io's `perMessageDeflate: true` (ws keeps both contexts).
// Prints `listening on 127.0.0.1:<port>`.
'use strict';
const path = require('node:path');
const http = require('node:http');
// bench/node's socket.io (bench/run.sh installs it), else the integration suite's (same 4.8).
const { Server } = require(require.resolve('socket.io', {
  paths: [path.join(__dirname, 'node'), path.join(__dirname, '..', 'tests', 'integration')],
}));

let port = 0;
let deflate = 'off';
for (let i = 2; i < process.argv.length; i += 2) {
  const [flag, value] = [process.argv[i], process.argv[i + 1]];
  if (flag === '--port') port = Number(value);
  else if (flag === '--per-message-deflate') deflate = value;
  else {
    process.stderr.write(`compression-node: unknown flag ${flag}\n`);
    process.exit(2);
  }
}
const perMessageDeflate = {
  off: false,
  nct: { threshold: 1024, serverNoContextTakeover: true, clientNoContextTakeover: true },
  takeover: true,
}[deflate];
if (perMessageDeflate === undefined) process.exit(2);

const server = http.createServer();
const io = new Server(server, { perMessageDeflate, serveClient: false });
io.on('connection', (socket) => {
  socket.on('message', (...args) => socket.emit('message-back', ...args));
  socket.on('broadcast', (event, ...args) => socket.broadcast.emit(event, ...args));
});
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening on 127.0.0.1:${server.address().port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
