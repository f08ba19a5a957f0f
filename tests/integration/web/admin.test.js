// The @socket.io/admin-ui dashboard itself (its built files from the npm package, ui/dist, served by
// a loopback static server started here) in Debian's Chromium, driven by playwright-core, against
// `sioc serve` with an "admin" section: log in with a username and password (bcrypt hash in the
// config), see the sockets and rooms of connected clients, and disconnect one from the Sockets
// page, which the client sees as "io server disconnect". External requests of the page (web
// fonts, icon CSS from CDNs) are refused: nothing leaves the machine.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createRequire } from 'node:module';
import bcrypt from 'bcryptjs';
import { chromium } from 'playwright-core';
import { io as connectClient } from 'socket.io-client';
import { requireBin, tempDir, baseConfig, startDaemon } from '../lib/daemon.js';
import { connected, until } from '../lib/sio.js';

const CHROMIUM = process.env.SIOC_CHROMIUM ?? '/usr/bin/chromium';
const require = createRequire(import.meta.url);
const UI = path.join(path.dirname(require.resolve('@socket.io/admin-ui/package.json')), 'ui', 'dist');
const STEP_MS = 10000; // every wait for the page is bounded
const USERNAME = 'ops';
const PASSWORD = 'dashboard-password-42';

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.png': 'image/png', '.svg': 'image/svg+xml', '.map': 'application/json' };

/** ui/dist on 127.0.0.1 (the router is in hash mode: only real files are asked for). */
async function startStatic() {
  const server = http.createServer((req, res) => {
    const pathname = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const file = path.join(UI, pathname === '/' ? 'index.html' : pathname);
    if (!file.startsWith(UI + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] ?? 'application/octet-stream' });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

describe('the admin UI dashboard in Chromium', () => {
  let daemon;
  let web;
  let browser;
  let origin;
  before(async () => {
    requireBin();
    assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (scripts/install-deps --test)`);
    assert.ok(fs.existsSync(path.join(UI, 'index.html')), `${UI}/index.html is missing: npm ci in tests/integration`);
    web = await startStatic();
    origin = `http://127.0.0.1:${web.address().port}`;
    const dir = tempDir('admin-ui');
    daemon = await startDaemon(dir, baseConfig(dir, {
      cors: { origins: [origin], credentials: true },
      channels: { '/': { driver: 'bench', auth: 'none', enabled: true } },
      admin: { auth: { username: USERNAME, passwordHash: bcrypt.hashSync(PASSWORD, 8) } },
    }));
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      timeout: 30000,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });
  after(async () => {
    await browser?.close();
    await new Promise((resolve) => (web ? web.close(resolve) : resolve()));
    await daemon?.stopChecked();
  });

  async function openDashboard(t) {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    t.after(() => context.close());
    const page = await context.newPage();
    await page.route('**/*', (route) => {
      const url = new URL(route.request().url());
      return url.hostname === '127.0.0.1' ? route.continue() : route.abort();
    });
    const errors = [];
    page.on('pageerror', (err) => errors.push(err.message));
    page.errors = errors;
    await page.goto(`${origin}/`, { timeout: STEP_MS });
    return page;
  }

  async function logIn(page, password) {
    const dialog = page.locator('.v-dialog--active');
    await dialog.getByLabel('Server URL').fill(`http://127.0.0.1:${daemon.port}`, { timeout: STEP_MS });
    await dialog.getByLabel('Username').fill(USERNAME);
    await dialog.getByLabel('Password').fill(password);
    await dialog.getByRole('button', { name: 'Connect' }).click();
  }

  function appClient(t) {
    const socket = connectClient(`http://127.0.0.1:${daemon.port}/`, { forceNew: true, reconnection: false, transports: ['websocket'] });
    t.after(() => socket.disconnect());
    return socket;
  }

  it('a wrong password keeps the connection dialog open with "Invalid credentials"', async (t) => {
    const page = await openDashboard(t);
    await logIn(page, 'not the password');
    await page.locator('.v-dialog--active', { hasText: 'Invalid credentials' }).waitFor({ timeout: STEP_MS });
  });

  it('shows the sockets and rooms of connected clients, and disconnects one from the Sockets page', async (t) => {
    const alice = appClient(t);
    const bob = appClient(t);
    await Promise.all([connected(alice), connected(bob)]);
    await alice.timeout(5000).emitWithAck('join', 'physics-lab');

    const page = await openDashboard(t);
    await logIn(page, PASSWORD);
    await page.locator('.v-dialog--active').waitFor({ state: 'detached', timeout: STEP_MS });
    await page.getByText(/^\s*connected\s*$/i).first().waitFor({ timeout: STEP_MS });

    await page.goto(`${origin}/#/sockets/`, { timeout: STEP_MS });
    // The Sockets page's table (class row-pointer: its rows open the socket's page).
    const row = (id) => page.locator('.row-pointer tbody tr', { hasText: id });
    await row(alice.id).waitFor({ timeout: STEP_MS });
    await row(bob.id).waitFor({ timeout: STEP_MS });
    assert.match(await row(alice.id).textContent(), /websocket/i);

    await page.goto(`${origin}/#/rooms/`, { timeout: STEP_MS });
    await page.locator('tbody tr', { hasText: 'physics-lab' }).waitFor({ timeout: STEP_MS });

    // A client that connects now appears without a reload (socket_connected).
    const carol = appClient(t);
    await connected(carol);
    await page.goto(`${origin}/#/sockets/`, { timeout: STEP_MS });
    await row(carol.id).waitFor({ timeout: STEP_MS });

    const aliceId = alice.id; // socket.io-client forgets it on disconnection
    const gone = new Promise((resolve) => alice.once('disconnect', resolve));
    await row(alice.id).locator('button').click({ timeout: STEP_MS });
    assert.equal(await Promise.race([gone, new Promise((resolve) => setTimeout(() => resolve('no disconnect within 10 s'), STEP_MS))]), 'io server disconnect');
    // The click also opens the socket's page (the row's own click handler): back to the list,
    // where the socket is gone (socket_disconnected) and the others stay.
    await until(() => /#\/n\/.*\/sockets\//.test(page.url()), 'the socket\'s page', STEP_MS);
    await page.locator('nav a', { hasText: 'Sockets' }).click();
    await until(() => /#\/sockets\/?$/.test(page.url()), 'the Sockets page', STEP_MS);
    await row(carol.id).waitFor({ timeout: STEP_MS });
    await row(aliceId).waitFor({ state: 'detached', timeout: STEP_MS });
    assert.ok(bob.connected && carol.connected, 'only the socket clicked is disconnected');
    assert.deepEqual(page.errors, []);
    const shot = process.env.SIOC_ADMIN_SCREENSHOT ?? path.join(daemon.dir, 'admin-ui.png');
    await page.screenshot({ path: shot });
  });
});
