#!/usr/bin/env node
// Reference Socket.IO server on Node's `socket.io` 4.8, with the command line
// and the behaviour of sioc's `sioc-echo`, so that the Socket.IO integration
// suite (sio/*.test.js, python/test_sio_python.py) can be validated against
// Node before it is pointed at the C server (SIOC_ECHO=...).
//
//   node ref/sioc-echo.js [--host H] [--port P] [--path /socket.io/]
//       [--ping-interval MS] [--ping-timeout MS] [--connect-timeout MS]
//       [--cors ORIGIN]... [--recovery] [--parser msgpack]
//       [--redis redis://HOST:PORT] [--redis-mode classic|sharded|streams] [--redis-requests-timeout MS]
//       [--redis-subscription-mode dynamic|static|dynamic-private] (sharded)
//       [--per-message-deflate] [--max-disconnection-duration MS] (recovery)
//
// --per-message-deflate: perMessageDeflate with the no_context_takeover settings sioc
// always answers with (see ref/eio-echo.js).
//
// --redis-mode streams: @socket.io/redis-streams-adapter 0.3 (createAdapter on one node-redis
// client; stream "socket.io", sessions sio:session:<pid>), which also holds the recovery state.
//
// --redis: the @socket.io/redis-adapter (createAdapter, or createShardedAdapter with
// --redis-mode sharded) on two node-redis clients, so that broadcasts and the cluster
// operations below span every server on that Redis.
//
// Prints exactly one line `listening on <host>:<port>` once it accepts
// connections.
//
// Namespaces: `/`, `/custom` and the dynamic namespaces matching
// ^/dynamic-\d+$ all get the same middleware and handlers (below); any other
// namespace is refused by socket.io itself (CONNECT_ERROR "Invalid namespace").
//
// Middleware (every namespace):
//   auth.refuse truthy      → next(err), err.message "refused", err.data {reason:"test"}
//                             ("no-data": no err.data)
//   auth.delay a number     → next() after min(delay, 1000) ms
// On connection: emit("auth", handshake.auth); join auth.room if a string.
// Packet middleware (socket.use, every socket): an event "forbidden" → next(new Error(
//   "forbidden event")); "slow" → next() after 100 ms; any other → next(). The socket's
//   "error" event with an Error → emit("middleware-error", err.message).
//   slow ...args, cb             → cb(...args)
// Events (cb = the client's ack callback):
//   message ...args              → emit("message-back", ...args)
//   message-with-ack ...args, cb → cb(...args)
//   join room, cb?               → join; cb([...rooms])
//   leave room, cb?              → leave; cb([...rooms])
//   rooms cb                     → cb([...rooms])
//   to-room room, ev, ...args    → nsp.to(room).emit(ev, ...args)
//   to-rooms-except {to, except}, ev, ...args → nsp.to(to).except(except).emit(ev, ...args)
//   broadcast ev, ...args        → socket.broadcast.emit(ev, ...args)
//   volatile ev, ...args         → nsp.volatile.emit(ev, ...args)
//   server-ack ms, ev, ...args, cb → socket.timeout(ms).emit(ev, ...args, ack);
//                                  cb({error: message} | {response: [...]})
//   broadcast-ack ms, ev, ...args, cb → nsp.timeout(ms).emit(ev, ...args, ack);
//                                  cb({error: message | null, responses})
//   fetch-sockets room|null, cb  → cb([{id, rooms, data, auth}] sorted by id)
//   sockets-join room, target, cb / sockets-leave … → nsp.in(room).socketsJoin(target); cb()
//   disconnect-sockets room, close, cb → cb() first, then nsp.in(room).disconnectSockets(close)
//   set-data obj, cb / get-data cb → socket.data
//   handshake cb                 → cb({headers, query, url}) of socket.handshake
//   disconnect-me close          → socket.disconnect(close)
//   server-side-emit cb          → nsp.serverSideEmit("ping") (must not throw); cb("ok")
//   server-side-emit-event ev, ...args, cb → nsp.serverSideEmit(ev, ...args); cb("ok")
//   server-side-emit-ack ev, ...args, cb → cb({error: message | null, responses}) of
//                                  nsp.serverSideEmitWithAck(ev, ...args)
//   server-count cb              → cb(await nsp.adapter.serverCount())
//   all-rooms cb                 → cb([...await nsp.adapter.allRooms()].sort()), or
//                                  cb({error: message}) when it rejects
// serverSideEmit "ping" / "hello" from another server: nsp.local.emit("server-side", ev, ...args)
// and, when the emitter waits, the answer "pong".
//   count cb                     → cb(number of events this socket received before this one)
//   recovered cb (--recovery)    → cb(socket.recovered)
// On disconnect of a socket of `/`: io.of("/").emit("left", socket.id, reason).
import http from 'node:http';
import { Server } from 'socket.io';

function usage(msg) {
  process.stderr.write(`sioc-echo (reference): ${msg}\n`);
  process.exit(2);
}

function parseInteger(name, value) {
  if (!/^\d+$/.test(value ?? '')) usage(`${name} needs a non-negative integer, got ${value}`);
  return Number(value);
}

function parseArgs(argv) {
  const opts = {
    host: '127.0.0.1',
    port: 0,
    path: '/socket.io/',
    pingInterval: 25000,
    pingTimeout: 20000,
    connectTimeout: 45000,
    cors: [],
    recovery: false,
    parser: 'default',
    redis: null,
    redisMode: 'classic',
    redisRequestsTimeout: 5000,
    redisSubscriptionMode: 'dynamic',
    maxDisconnectionDuration: 120000,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '--recovery') {
      opts.recovery = true;
      continue;
    }
    if (flag === '--per-message-deflate') {
      opts.perMessageDeflate = true;
      continue;
    }
    if (flag === '--allow-eio3') {
      opts.allowEIO3 = true;
      continue;
    }
    const value = argv[i + 1];
    if (value === undefined) usage(`missing value for ${flag}`);
    i++;
    switch (flag) {
      case '--host': opts.host = value; break;
      case '--port': opts.port = parseInteger(flag, value); break;
      case '--path': opts.path = value; break;
      case '--ping-interval': opts.pingInterval = parseInteger(flag, value); break;
      case '--ping-timeout': opts.pingTimeout = parseInteger(flag, value); break;
      case '--connect-timeout': opts.connectTimeout = parseInteger(flag, value); break;
      case '--cors': opts.cors.push(value); break;
      case '--redis': opts.redis = value; break;
      case '--redis-mode':
        if (!['classic', 'sharded', 'streams'].includes(value)) usage(`--redis-mode takes classic, sharded or streams, got ${value}`);
        opts.redisMode = value;
        break;
      case '--redis-requests-timeout': opts.redisRequestsTimeout = parseInteger(flag, value); break;
      case '--max-disconnection-duration': opts.maxDisconnectionDuration = parseInteger(flag, value); break;
      case '--redis-subscription-mode':
        if (!['dynamic', 'static', 'dynamic-private'].includes(value)) usage(`bad --redis-subscription-mode ${value}`);
        opts.redisSubscriptionMode = value;
        break;
      case '--parser':
        if (value !== 'msgpack' && value !== 'default') usage(`--parser takes msgpack or default, got ${value}`);
        opts.parser = value;
        break;
      default: usage(`unknown flag ${flag}`);
    }
  }
  return opts;
}

// Same CORS mapping as ref/eio-echo.js: `*` → any origin without
// credentials; explicit origins → reflected when listed, with credentials.
function corsOption(origins) {
  if (origins.length === 0) return undefined;
  if (origins.includes('*')) return { origin: '*' };
  return { origin: origins, credentials: true };
}

const opts = parseArgs(process.argv.slice(2));

const serverOptions = {
  path: opts.path,
  pingInterval: opts.pingInterval,
  pingTimeout: opts.pingTimeout,
  connectTimeout: opts.connectTimeout,
  serveClient: false,
  allowEIO3: opts.allowEIO3 === true,
};
const cors = corsOption(opts.cors);
if (cors) serverOptions.cors = cors;
if (opts.perMessageDeflate) {
  serverOptions.perMessageDeflate = { threshold: 1024, serverNoContextTakeover: true, clientNoContextTakeover: true };
}
if (opts.recovery) {
  serverOptions.connectionStateRecovery = { maxDisconnectionDuration: opts.maxDisconnectionDuration, skipMiddlewares: true };
}
if (opts.parser === 'msgpack') {
  serverOptions.parser = (await import('socket.io-msgpack-parser')).default;
}

if (opts.redis && opts.redisMode === 'streams') {
  const { createClient } = await import('redis');
  const { createAdapter } = await import('@socket.io/redis-streams-adapter');
  const client = createClient({ url: opts.redis });
  client.on('error', () => {});
  await client.connect();
  serverOptions.adapter = createAdapter(client);
} else if (opts.redis) {
  const { createClient } = await import('redis');
  const { createAdapter, createShardedAdapter } = await import('@socket.io/redis-adapter');
  const pubClient = createClient({ url: opts.redis });
  const subClient = pubClient.duplicate();
  // node-redis reconnects by itself; an unhandled 'error' event would end the process.
  pubClient.on('error', () => {});
  subClient.on('error', () => {});
  await Promise.all([pubClient.connect(), subClient.connect()]);
  serverOptions.adapter =
    opts.redisMode === 'sharded'
      ? createShardedAdapter(pubClient, subClient, { subscriptionMode: opts.redisSubscriptionMode })
      : createAdapter(pubClient, subClient, { requestsTimeout: opts.redisRequestsTimeout });
}

const httpServer = http.createServer((req, res) => {
  res.writeHead(404, { 'Content-Type': 'text/plain' });
  res.end('Not Found');
});
const io = new Server(httpServer, serverOptions);

const MAX_DELAY_MS = 1000;

function middleware(socket, next) {
  const auth = socket.handshake.auth ?? {};
  if (auth.refuse) {
    // refuse: "no-data" refuses without err.data (an EIO3 client then gets the message alone).
    const err = new Error('refused');
    if (auth.refuse !== 'no-data') err.data = { reason: 'test' };
    next(err);
  } else if (typeof auth.delay === 'number') {
    setTimeout(next, Math.max(0, Math.min(auth.delay, MAX_DELAY_MS)));
  } else {
    next();
  }
}

// The last argument when it is a function (the client asked for an ack).
function splitAck(args) {
  if (args.length && typeof args[args.length - 1] === 'function') {
    return [args.slice(0, -1), args[args.length - 1]];
  }
  return [args, null];
}

function onConnection(socket) {
  const nsp = socket.nsp;
  const auth = socket.handshake.auth;
  let received = 0;
  socket.onAny(() => {
    received++;
  });

  socket.emit('auth', auth);
  if (auth && typeof auth.room === 'string') socket.join(auth.room);

  socket.use(([event], next) => {
    if (event === 'forbidden') next(new Error('forbidden event'));
    else if (event === 'slow') setTimeout(() => next(), 100);
    else next();
  });
  // An "error" event the client sent reaches this listener too (Node's EventEmitter), with the
  // client's arguments: only an Error (a refusal, a decoding error) is forwarded.
  socket.on('error', (err) => {
    if (err instanceof Error) socket.emit('middleware-error', err.message);
  });
  socket.on('slow', (...all) => {
    const [args, cb] = splitAck(all);
    if (cb) cb(...args);
  });

  socket.on('message', (...args) => {
    socket.emit('message-back', ...args);
  });
  socket.on('message-with-ack', (...all) => {
    const [args, cb] = splitAck(all);
    if (cb) cb(...args);
  });
  socket.on('join', (room, cb) => {
    socket.join(room);
    if (typeof cb === 'function') cb([...socket.rooms]);
  });
  socket.on('leave', (room, cb) => {
    socket.leave(room);
    if (typeof cb === 'function') cb([...socket.rooms]);
  });
  socket.on('rooms', (cb) => {
    if (typeof cb === 'function') cb([...socket.rooms]);
  });
  socket.on('to-room', (room, event, ...args) => {
    nsp.to(room).emit(event, ...args);
  });
  socket.on('to-rooms-except', (sel, event, ...args) => {
    nsp.to(sel?.to ?? []).except(sel?.except ?? []).emit(event, ...args);
  });
  socket.on('broadcast', (event, ...args) => {
    socket.broadcast.emit(event, ...args);
  });
  socket.on('volatile', (event, ...args) => {
    nsp.volatile.emit(event, ...args);
  });
  socket.on('uncompressed', (event, ...args) => {
    nsp.compress(false).emit(event, ...args);
  });
  socket.on('server-ack', (timeoutMs, event, ...all) => {
    const [args, cb] = splitAck(all);
    socket.timeout(timeoutMs).emit(event, ...args, (err, ...resp) => {
      if (cb) cb(err ? { error: err.message } : { response: resp });
    });
  });
  socket.on('broadcast-ack', (timeoutMs, event, ...all) => {
    const [args, cb] = splitAck(all);
    nsp.timeout(timeoutMs).emit(event, ...args, (err, responses) => {
      if (cb) cb({ error: err ? err.message : null, responses });
    });
  });
  socket.on('fetch-sockets', async (room, cb) => {
    const sockets = await (room ? nsp.in(room) : nsp).fetchSockets();
    const list = sockets
      .map((s) => ({ id: s.id, rooms: [...s.rooms], data: s.data, auth: s.handshake.auth }))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    if (typeof cb === 'function') cb(list);
  });
  socket.on('sockets-join', async (room, target, cb) => {
    await nsp.in(room).socketsJoin(target);
    if (typeof cb === 'function') cb();
  });
  socket.on('sockets-leave', async (room, target, cb) => {
    await nsp.in(room).socketsLeave(target);
    if (typeof cb === 'function') cb();
  });
  socket.on('disconnect-sockets', (room, close, cb) => {
    if (typeof cb === 'function') cb();
    nsp.in(room).disconnectSockets(close);
  });
  socket.on('set-data', (obj, cb) => {
    socket.data = obj;
    if (typeof cb === 'function') cb();
  });
  socket.on('get-data', (cb) => {
    if (typeof cb === 'function') cb(socket.data);
  });
  socket.on('handshake', (cb) => {
    const { headers, query, url } = socket.handshake;
    if (typeof cb === 'function') cb({ headers, query, url });
  });
  socket.on('disconnect-me', (close) => {
    socket.disconnect(close);
  });
  socket.on('server-side-emit', (cb) => {
    nsp.serverSideEmit('ping');
    if (typeof cb === 'function') cb('ok');
  });
  socket.on('server-side-emit-event', (event, ...all) => {
    const [args, cb] = splitAck(all);
    nsp.serverSideEmit(event, ...args);
    if (cb) cb('ok');
  });
  socket.on('server-side-emit-ack', async (event, ...all) => {
    const [args, cb] = splitAck(all);
    try {
      const responses = await nsp.serverSideEmitWithAck(event, ...args);
      if (cb) cb({ error: null, responses });
    } catch (err) {
      if (cb) cb({ error: 'timeout reached', responses: err.responses ?? [] });
    }
  });
  socket.on('server-count', async (cb) => {
    const count = await nsp.adapter.serverCount();
    if (typeof cb === 'function') cb(count);
  });
  socket.on('all-rooms', async (cb) => {
    try {
      const rooms = await nsp.adapter.allRooms();
      if (typeof cb === 'function') cb([...rooms].sort());
    } catch (err) {
      if (typeof cb === 'function') cb({ error: err.message });
    }
  });
  socket.on('count', (cb) => {
    // onAny already counted this `count` event.
    if (typeof cb === 'function') cb(received - 1);
  });
  if (opts.recovery) {
    socket.on('recovered', (cb) => {
      if (typeof cb === 'function') cb(socket.recovered);
    });
  }
  if (nsp.name === '/') {
    socket.on('disconnect', (reason) => {
      io.of('/').emit('left', socket.id, reason);
    });
  }
}

for (const nsp of [io.of('/'), io.of('/custom'), io.of(/^\/dynamic-\d+$/)]) {
  nsp.use(middleware);
  nsp.on('connection', onConnection);
}
for (const nsp of [io.of('/'), io.of('/custom')]) {
  for (const event of ['ping', 'hello']) {
    nsp.on(event, (...all) => {
      const [args, cb] = splitAck(all);
      nsp.local.emit('server-side', event, ...args);
      if (cb) cb('pong');
    });
  }
}

// The in-memory adapter only warns on serverSideEmit(); keep stderr quiet.
const warn = console.warn;
console.warn = (...args) => {
  if (typeof args[0] === 'string' && args[0].includes('serverSideEmit')) return;
  warn(...args);
};

httpServer.listen(opts.port, opts.host, () => {
  const { address, port } = httpServer.address();
  process.stdout.write(`listening on ${address}:${port}\n`);
});

const shutdown = () => {
  io.close();
  httpServer.closeAllConnections();
  process.exit(0);
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
