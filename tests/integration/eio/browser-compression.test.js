// httpCompression seen by a browser: Debian's Chromium (driven by playwright-core) runs the
// official engine.io-client bundle over polling only; Chromium asks for gzip, so answers over
// 1024 bytes come compressed and must decode to the same messages. Skipped without Chromium.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEioEcho } from '../lib/server.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.SIOC_CHROMIUM ?? '/usr/bin/chromium';
const BUNDLE = path.join(here, '../node_modules/engine.io-client/dist/engine.io.min.js');
const haveChromium = fs.existsSync(CHROMIUM);

describe('httpCompression in Chromium (engine.io-client bundle, polling)', { skip: haveChromium ? false : `no ${CHROMIUM}` }, () => {
  let server;
  let page;
  let browser;
  let web;
  before(async () => {
    const { chromium } = await import('playwright-core');
    server = await startEioEcho(['--cors', '*']);
    // The page comes from an origin of its own, as a site's would (CORS as in production).
    web = http.createServer((req, res) => {
      if (req.url === '/engine.io.min.js') {
        res.writeHead(200, { 'Content-Type': 'text/javascript' });
        res.end(fs.readFileSync(BUNDLE));
        return;
      }
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end('<!doctype html><script src="/engine.io.min.js"></script>');
    });
    await new Promise((resolve) => web.listen(0, '127.0.0.1', resolve));
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${web.address().port}/`);
  });
  after(async () => {
    await browser?.close();
    web?.close();
    await server?.stopChecked();
  });

  it('large text and binary messages echo intact over compressed polling answers', async () => {
    const encodings = [];
    page.on('response', (response) => {
      if (response.url().includes('/engine.io/') && response.request().method() === 'GET') {
        encodings.push(response.headers()['content-encoding'] ?? 'none');
      }
    });
    const result = await page.evaluate(async (url) => {
      const socket = eio(url, { transports: ['polling'] });
      const received = [];
      await new Promise((resolve, reject) => {
        socket.on('open', resolve);
        socket.on('error', reject);
      });
      const big = 'compress me '.repeat(5000);
      const bytes = new Uint8Array(20000).map((_, i) => (i * 31) & 0xff);
      const done = new Promise((resolve) => {
        socket.on('message', (data) => {
          received.push(data);
          if (received.length === 2) resolve();
        });
      });
      socket.send(big);
      socket.send(bytes);
      await Promise.race([done, new Promise((resolve) => setTimeout(resolve, 8000))]);
      socket.close();
      const binary = received[1] instanceof ArrayBuffer ? new Uint8Array(received[1]) : null;
      return {
        count: received.length,
        textOk: received[0] === big,
        binaryOk: binary !== null && binary.length === bytes.length && binary.every((b, i) => b === bytes[i]),
      };
    }, `http://127.0.0.1:${server.port}`);
    assert.deepEqual(result, { count: 2, textOk: true, binaryOk: true });
    assert.ok(encodings.includes('gzip'), `polling answers' Content-Encoding: ${encodings}`);
  });
});
