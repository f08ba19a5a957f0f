#!/usr/bin/env node
// Reference Engine.IO echo server on Node's `engine.io`, with the command line
// of sioc's eio-echo, so that the integration suite can be validated against
// Node before it is pointed at the C server (EIO_ECHO=...).
//
//   node ref/eio-echo.js [--host H] [--port P] [--path /engine.io/]
//       [--ping-interval MS] [--ping-timeout MS] [--max-payload BYTES]
//       [--cors ORIGIN]... [--transports polling,websocket]
//       [--upgrade-timeout MS] [--reject-header NAME]
//       [--http-compression true|false] [--http-compression-threshold BYTES]
//       [--per-message-deflate true|false] [--per-message-deflate-threshold BYTES]
//       [--cookie NAME [--cookie-path P|false] [--cookie-domain D] [--cookie-max-age S]
//        [--cookie-same-site lax|strict|none|false] [--cookie-http-only true|false]
//        [--cookie-secure true|false]] [--allow-eio3]
//
// Prints exactly one line `listening on <host>:<port>` once it accepts
// connections, then echoes every message back as it came (text or binary).
//
// Deliberate settings that stand for sioc's fixed defaults (not flags):
// - ws `maxFragments` 1024 (sioc bounds fragments per message to 1024; ws's
//   own default is 16384);
// - perMessageDeflate (when on) with `serverNoContextTakeover` and
//   `clientNoContextTakeover`: sioc always answers with both, so that it keeps
//   no zlib state per connection and compresses a broadcast once (ws's default
//   keeps both contexts, up to ~300 KB per socket);
// - HTTP `headersTimeout` 10 s, checked every second (sioc's header timeout;
//   Node's own default is 60 s checked every 30 s).
import http from 'node:http';
import { WebSocketServer } from 'ws';
import { Server as EngineServer } from 'engine.io';

const SIOC_MAX_FRAGMENTS = 1024;
const SIOC_HEADER_TIMEOUT_MS = 10_000;

function usage(msg) {
  process.stderr.write(`eio-echo (reference): ${msg}\n`);
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
    path: '/engine.io/',
    pingInterval: 25000,
    pingTimeout: 20000,
    maxPayload: 1e6,
    cors: [],
    transports: ['polling', 'websocket'],
    upgradeTimeout: 10000,
    rejectHeader: null,
    cookie: null,
    httpCompression: true,
    httpCompressionThreshold: 1024,
    perMessageDeflate: false,
    perMessageDeflateThreshold: 1024,
    allowEIO3: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
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
      case '--max-payload': opts.maxPayload = parseInteger(flag, value); break;
      case '--cors': opts.cors.push(value); break;
      case '--upgrade-timeout': opts.upgradeTimeout = parseInteger(flag, value); break;
      case '--reject-header': opts.rejectHeader = value.toLowerCase(); break;
      case '--http-compression': opts.httpCompression = value === 'true'; break;
      case '--http-compression-threshold': opts.httpCompressionThreshold = parseInteger(flag, value); break;
      case '--per-message-deflate': opts.perMessageDeflate = value === 'true'; break;
      case '--per-message-deflate-threshold': opts.perMessageDeflateThreshold = parseInteger(flag, value); break;
      // engine.io's `cookie` option, attribute by attribute ("false" turns one off).
      case '--cookie': opts.cookie = { ...opts.cookie, name: value }; break;
      case '--cookie-path': opts.cookie = { ...opts.cookie, path: value === 'false' ? false : value }; break;
      case '--cookie-domain': opts.cookie = { ...opts.cookie, domain: value }; break;
      case '--cookie-same-site': opts.cookie = { ...opts.cookie, sameSite: value === 'false' ? false : value }; break;
      case '--cookie-max-age': opts.cookie = { ...opts.cookie, maxAge: parseInteger(flag, value) }; break;
      case '--cookie-http-only': opts.cookie = { ...opts.cookie, httpOnly: value === 'true' }; break;
      case '--cookie-secure': opts.cookie = { ...opts.cookie, secure: value === 'true' }; break;
      case '--transports': {
        const list = value.split(',').filter(Boolean);
        if (list.length === 0 || list.some((t) => t !== 'polling' && t !== 'websocket')) {
          usage(`--transports takes a subset of polling,websocket, got ${value}`);
        }
        opts.transports = list;
        break;
      }
      default: usage(`unknown flag ${flag}`);
    }
  }
  return opts;
}

// `cors` option for engine.io (passed to the `cors` npm module): `*` allows any
// origin without credentials; explicit origins are given as an array (so the
// request origin is reflected only when it is listed) with credentials.
function corsOption(origins) {
  if (origins.length === 0) return false;
  if (origins.includes('*')) return { origin: '*' };
  return { origin: origins, credentials: true };
}

// ws server with sioc's fragment bound; engine.io adds maxPayload itself.
class BoundedWebSocketServer extends WebSocketServer {
  constructor(options, callback) {
    super({ ...options, maxFragments: SIOC_MAX_FRAGMENTS }, callback);
  }
}

const opts = parseArgs(process.argv.slice(2));

const httpServer = http.createServer({ connectionsCheckingInterval: 1000 }, (req, res) => {
  // Requests outside --path (engine.io hands them to the previous listeners).
  res.writeHead(404, { 'Content-Type': 'text/plain' });
  res.end('Not Found');
});
httpServer.headersTimeout = SIOC_HEADER_TIMEOUT_MS;

const engine = new EngineServer({
  pingInterval: opts.pingInterval,
  pingTimeout: opts.pingTimeout,
  maxHttpBufferSize: opts.maxPayload,
  transports: opts.transports,
  upgradeTimeout: opts.upgradeTimeout,
  cors: corsOption(opts.cors),
  cookie: opts.cookie ?? false,
  httpCompression: opts.httpCompression ? { threshold: opts.httpCompressionThreshold } : false,
  perMessageDeflate: opts.perMessageDeflate
    ? { threshold: opts.perMessageDeflateThreshold, serverNoContextTakeover: true, clientNoContextTakeover: true }
    : false,
  wsEngine: BoundedWebSocketServer,
  allowEIO3: opts.allowEIO3,
  allowRequest: opts.rejectHeader
    ? (req, callback) => callback(null, req.headers[opts.rejectHeader] === undefined)
    : undefined,
});
engine.attach(httpServer, { path: opts.path });

engine.on('connection', (socket) => {
  socket.on('message', (data) => socket.send(data));
});

httpServer.listen(opts.port, opts.host, () => {
  const { address, port } = httpServer.address();
  process.stdout.write(`listening on ${address}:${port}\n`);
});

const shutdown = () => {
  engine.close();
  httpServer.close();
  httpServer.closeAllConnections();
  process.exit(0);
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
