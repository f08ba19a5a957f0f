// Serves the chat page of examples/web on loopback: its own three files, the official
// socket.io-client bundle from this folder's node_modules (npm ci), and /config.json telling
// the page where sioc listens. Nothing else is served: the names are a fixed table, so no
// request path ever reaches the file system.
//   node serve.mjs [--host 127.0.0.1] [--port 5173] [--server http://127.0.0.1:3000]
// Prints "web listening on http://HOST:PORT/" once it listens (port 0 picks a free one).
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const host = option('host', '127.0.0.1');
const port = Number(option('port', '5173'));
const server = option('server', 'http://127.0.0.1:3000');
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`serve.mjs: --port: expected 0..65535, got ${option('port')}`);
  process.exit(2);
}

// The bundle as npm ships it (the package's exports do not list dist/, so no require.resolve).
const bundle = path.join(here, 'node_modules', 'socket.io-client', 'dist', 'socket.io.min.js');
if (!fs.existsSync(bundle)) {
  console.error('serve.mjs: socket.io-client is missing: run `npm ci` in examples/web');
  process.exit(1);
}

const files = {
  '/': [path.join(here, 'index.html'), 'text/html; charset=utf-8'],
  '/index.html': [path.join(here, 'index.html'), 'text/html; charset=utf-8'],
  '/app.js': [path.join(here, 'app.js'), 'text/javascript; charset=utf-8'],
  '/style.css': [path.join(here, 'style.css'), 'text/css; charset=utf-8'],
  '/socket.io.min.js': [bundle, 'text/javascript; charset=utf-8'],
};
const config = JSON.stringify({ server, path: '/socket.io/' });

function send(res, status, type, body, head) {
  res.writeHead(status, {
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(head ? undefined : body);
}

const web = http.createServer((req, res) => {
  const head = req.method === 'HEAD';
  if (req.method !== 'GET' && !head) return send(res, 405, 'text/plain', 'Method Not Allowed\n', head);
  const pathname = new URL(req.url, 'http://page').pathname;
  if (pathname === '/config.json') return send(res, 200, 'application/json', config, head);
  const file = Object.hasOwn(files, pathname) ? files[pathname] : null;
  if (!file) return send(res, 404, 'text/plain', 'Not Found\n', head);
  fs.readFile(file[0], (err, body) => {
    if (err) send(res, 500, 'text/plain', 'Cannot read the file\n', head);
    else send(res, 200, file[1], body, head);
  });
});
web.headersTimeout = 10000;
web.requestTimeout = 10000;
web.listen(port, host, () => {
  console.log(`web listening on http://${host}:${web.address().port}/`);
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => web.close(() => process.exit(0)));
