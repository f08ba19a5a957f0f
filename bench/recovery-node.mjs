// Node's socket.io 4.8 with the bench driver's fan-out handlers (join, publish: as
// bench/node/server.js), connection state recovery on (in memory, the only store Node has) or
// off, for bench/recovery-daemon.sh. Uses tests/integration's node_modules (npm ci there).
//   node bench/recovery-node.mjs [--recovery]      prints "listening on 127.0.0.1:<port>"
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '../tests/integration/package.json'));
const { Server } = require('socket.io');

const recovery = process.argv.includes('--recovery');
const server = http.createServer();
const io = new Server(server, {
  pingInterval: 25000,
  pingTimeout: 20000,
  ...(recovery ? { connectionStateRecovery: { maxDisconnectionDuration: 120000, skipMiddlewares: true } } : {}),
});
io.on('connection', (socket) => {
  socket.on('join', (room, ack) => {
    if (typeof room !== 'string') return;
    socket.join(room);
    if (typeof ack === 'function') ack();
  });
  socket.on('publish', (room, event, ...args) => {
    if (typeof room !== 'string' || typeof event !== 'string') return;
    socket.nsp.to(room).emit(event, ...args);
  });
});
server.listen(0, '127.0.0.1', () => console.log(`listening on 127.0.0.1:${server.address().port}`));
process.on('SIGTERM', () => process.exit(0));
