#!/usr/bin/env node
// Reference for the admin UI in a cluster (daemon/admin.test.js): Node's socket.io 4.8 with
// @socket.io/redis-adapter on a redis-server and instrument() from @socket.io/admin-ui 0.5,
// with the application side of the daemon's bench driver (echo, join) that the test drives.
//
//   node ref/admin-node.js --redis redis://HOST:PORT --username U --hash BCRYPT [--mode development|production]
//
// serverId: `${hostname}#${pid}`, what instrument() computes itself in a cluster worker; a plain
// process would report os.hostname() and two on one host would be one server to the dashboard,
// which is why its documentation asks for a distinct serverId per server on a machine.
//
// Prints exactly one line `listening on 127.0.0.1:<port>` once it accepts connections.
import http from 'node:http';
import os from 'node:os';
import { Server } from 'socket.io';
import { createAdapter } from '@socket.io/redis-adapter';
import { instrument } from '@socket.io/admin-ui';
import { createClient } from 'redis';

const opts = { mode: 'development' };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const [flag, value] = [argv[i], argv[i + 1]];
  if (value === undefined) throw new Error(`${flag} needs a value`);
  if (flag === '--redis') opts.redis = value;
  else if (flag === '--username') opts.username = value;
  else if (flag === '--hash') opts.hash = value;
  else if (flag === '--mode') opts.mode = value;
  else throw new Error(`unknown flag ${flag}`);
}
if (!opts.redis || !opts.username || !opts.hash) throw new Error('--redis, --username and --hash are needed');

const pubClient = createClient({ url: opts.redis });
const subClient = pubClient.duplicate();
// node-redis reconnects by itself; an unhandled 'error' event would end the process.
pubClient.on('error', () => {});
subClient.on('error', () => {});
await Promise.all([pubClient.connect(), subClient.connect()]);

const httpServer = http.createServer();
const io = new Server(httpServer, { adapter: createAdapter(pubClient, subClient, { requestsTimeout: 1500 }) });
io.on('connection', (socket) => {
  socket.on('echo', (...args) => {
    const ack = typeof args.at(-1) === 'function' ? args.pop() : null;
    ack?.(...args);
  });
  socket.on('join', (room, ack) => {
    socket.join(room);
    ack?.();
  });
});
instrument(io, {
  auth: { type: 'basic', username: opts.username, password: opts.hash },
  mode: opts.mode,
  serverId: `${os.hostname()}#${process.pid}`,
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    io.close();
    Promise.allSettled([pubClient.quit(), subClient.quit()]).then(() => process.exit(0));
  });
}
httpServer.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening on 127.0.0.1:${httpServer.address().port}\n`);
});
