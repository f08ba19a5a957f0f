// The chat page of examples/web in Debian's Chromium (playwright-core drives /usr/bin/chromium),
// against a running `sioc serve` and examples/web/serve.mjs: two browser contexts, Ada and Bob,
// each logged in with a token from `sioc token`, hold a conversation: presence, a room joined,
// messages both ways, the typing indicator, a direct message, and Bob going offline. Every step
// asserts what each page shows. The screenshot of Ada's page is written to SIOC_WEB_SCREENSHOT
// (the README's docs/web-chat.png comes from it) or to the test's temporary directory.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import {
  REPO_ROOT, requireBin, tempDir, baseConfig, startDaemon, freePort, runSioc, JWT_SECRET,
} from '../lib/daemon.js';

const CHROMIUM = process.env.SIOC_CHROMIUM ?? '/usr/bin/chromium';
const WEB = path.join(REPO_ROOT, 'examples', 'web');
const STEP_MS = 10000; // every wait for the page is bounded

function startWeb(port, server) {
  const child = spawn(process.execPath, [path.join(WEB, 'serve.mjs'), '--host', '127.0.0.1', '--port', String(port), '--server', server], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve.mjs did not start: ${stderr}`)), 5000);
    child.stdout.on('data', (chunk) => {
      if (/^web listening on /m.test(chunk.toString())) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.on('exit', (code) => reject(new Error(`serve.mjs exited with ${code}: ${stderr}`)));
  });
}

async function mint(subject, firstName, lastName) {
  const res = await runSioc(['token', '--secret', JWT_SECRET, '--subject', subject,
    '--claim', `firstName=${firstName}`, '--claim', `lastName=${lastName}`]);
  assert.equal(res.code, 0, res.stderr);
  return res.stdout.trim();
}

describe('the chat page in Chromium', () => {
  let daemon;
  let web;
  let browser;
  let origin;
  before(async () => {
    requireBin();
    assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (scripts/install-deps --test)`);
    assert.ok(fs.existsSync(path.join(WEB, 'node_modules', 'socket.io-client')), 'run npm ci in examples/web');
    const dir = tempDir('web');
    const webPort = await freePort();
    origin = `http://127.0.0.1:${webPort}`;
    daemon = await startDaemon(dir, baseConfig(dir, { cors: { origins: [origin] } }));
    web = await startWeb(webPort, daemon.url('').replace(/\/$/, ''));
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      timeout: 30000,
      // playwright gives every launch a new, empty --user-data-dir of its own.
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });
  after(async () => {
    await browser?.close();
    web?.kill('SIGTERM');
    await daemon?.stopChecked();
  });

  async function login(token) {
    const context = await browser.newContext({ viewport: { width: 1100, height: 640 }, deviceScaleFactor: 1 });
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (err) => errors.push(err.message));
    page.on('console', (msg) => msg.type() === 'error' && errors.push(msg.text()));
    page.errors = errors;
    await page.goto(`${origin}/`, { timeout: STEP_MS });
    await page.fill('#login-token', token);
    await page.click('#login-button');
    await page.locator('#chat').waitFor({ state: 'visible', timeout: STEP_MS });
    return page;
  }

  const expectText = async (page, selector, text) => {
    await page.locator(selector, { hasText: text }).first().waitFor({ timeout: STEP_MS });
  };
  const texts = (page, selector) => page.locator(selector).allTextContents();
  const person = (page, id) => page.locator(`#people li[data-user-id="${id}"]`);

  it('a bad token is refused on the login screen', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${origin}/`, { timeout: STEP_MS });
    const forged = (await mint('9', 'Eve', 'Forger')).replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'));
    await page.fill('#login-token', forged);
    await page.click('#login-button');
    await expectText(page, '#login-error', 'The server refused the connection');
    assert.equal(await page.locator('#chat').isVisible(), false);
    await context.close();
  });

  it('Ada and Bob: presence, a room, messages both ways, typing, a direct message, offline', async () => {
    const ada = await login(await mint('1', 'Ada', 'Lovelace'));
    assert.equal(await ada.textContent('#me'), 'Ada Lovelace');
    await expectText(ada, '#connection', 'connected');

    const bob = await login(await mint('2', 'Bob', 'Kahn'));
    // Presence: Ada sees Bob come online (user:status).
    await person(ada, '2').and(ada.locator('[data-status="online"]')).waitFor({ timeout: STEP_MS });

    // Rooms: Ada joins "physics", then both join "algebra"; Ada learns Bob's name from
    // room:userJoined.
    await ada.fill('#room-input', 'physics');
    await ada.click('#join-button');
    await expectText(ada, '#conversation-title', '# physics');
    await ada.fill('#room-input', 'algebra');
    await ada.click('#join-button');
    await expectText(ada, '#conversation-title', '# algebra');
    await bob.fill('#room-input', 'algebra');
    await bob.click('#join-button');
    await expectText(bob, '#conversation-title', '# algebra');
    await expectText(ada, '#people li[data-user-id="2"] .name', 'Bob Kahn');

    // Messages both ways.
    await ada.fill('#composer-input', 'Has anyone solved exercise 4?');
    await ada.click('#send-button');
    await expectText(bob, '#messages .message .text', 'Has anyone solved exercise 4?');
    await expectText(bob, '#messages .message .sender', 'Ada Lovelace');
    await expectText(ada, '#messages .message.mine .text', 'Has anyone solved exercise 4?');

    // Typing: Bob types, Ada sees it; Bob sends, it goes away.
    await bob.locator('#composer-input').pressSequentially('Yes: x = 3', { delay: 20 });
    await expectText(ada, '#typing', 'Bob is typing…');
    await bob.click('#send-button');
    await expectText(ada, '#messages .message .text', 'Yes: x = 3');
    await ada.waitForFunction(() => document.getElementById('typing').textContent === '', null, { timeout: STEP_MS });
    assert.deepEqual(await texts(ada, '#messages .message .text'), ['Has anyone solved exercise 4?', 'Yes: x = 3']);
    assert.deepEqual(await texts(bob, '#messages .message .text'), ['Has anyone solved exercise 4?', 'Yes: x = 3']);
    // Bob now knows Ada as online too (she spoke), and by name.
    await expectText(bob, '#people li[data-user-id="1"][data-status="online"] .name', 'Ada Lovelace');

    // A direct message from Bob: Ada gets an unread badge, opens the conversation, answers.
    await person(bob, '1').click();
    await expectText(bob, '#conversation-title', '@ Ada Lovelace');
    await bob.fill('#composer-input', 'Want to review chapter 2 tonight?');
    await bob.click('#send-button');
    await expectText(ada, '#people li[data-user-id="2"] .badge', '1');
    await person(ada, '2').click();
    await expectText(ada, '#conversation-title', '@ Bob Kahn');
    await expectText(ada, '#messages .message .text', 'Want to review chapter 2 tonight?');
    await ada.fill('#composer-input', 'Sure, 8 pm in the library');
    await ada.click('#send-button');
    await expectText(bob, '#messages .message .text', 'Sure, 8 pm in the library');
    assert.deepEqual(await texts(bob, '#messages .message .text'),
      ['Want to review chapter 2 tonight?', 'Sure, 8 pm in the library']);
    // The room is still there, unchanged, when Ada goes back.
    await ada.click('#rooms li[data-room="algebra"]');
    await expectText(ada, '#conversation-title', '# algebra');
    assert.deepEqual(await texts(ada, '#messages .message .text'), ['Has anyone solved exercise 4?', 'Yes: x = 3']);

    // The screenshot for the README: Ada in the room, an unread direct message from Bob, Bob
    // typing again.
    await bob.fill('#composer-input', 'Bring your notes!');
    await bob.click('#send-button');
    await expectText(ada, '#people li[data-user-id="2"] .badge', '1');
    await bob.click('#rooms li[data-room="algebra"]');
    await bob.fill('#composer-input', 'Exercise 5 next: factor x² − 5x + 6');
    await bob.click('#send-button');
    await expectText(ada, '#messages .message .text', 'Exercise 5 next');
    await ada.fill('#composer-input', '(x − 2)(x − 3) ✓');
    await ada.click('#send-button');
    await expectText(bob, '#messages .message .text', '(x − 2)(x − 3) ✓');
    await bob.locator('#composer-input').pressSequentially('Nice', { delay: 20 });
    await expectText(ada, '#typing', 'Bob is typing…');
    const shot = process.env.SIOC_WEB_SCREENSHOT ?? path.join(tempDir('web-shot'), 'web-chat.png');
    await ada.screenshot({ path: shot });
    assert.ok(fs.statSync(shot).size > 10000, 'a screenshot with something on it');

    // Bob closes his page: Ada sees him offline.
    await bob.context().close();
    await person(ada, '2').and(ada.locator('[data-status="offline"]')).waitFor({ timeout: STEP_MS });
    await expectText(ada, '#people li[data-user-id="2"] .name', 'Bob Kahn');
    assert.deepEqual(ada.errors, [], 'no error in Ada\'s page');
  });
});
