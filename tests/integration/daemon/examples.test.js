// examples/config/*.json (issue 11, point 8): each file is valid as written (`sioc check-config`)
// and serves its app's front end. Only what a machine forces is changed before `sioc serve`:
// ports (0: free ones), the SQLite path (a temp dir) and the Redis port (the test's Redis).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import jwt from 'jsonwebtoken';
import signature from 'cookie-signature';
import { createClient } from 'redis';
import { io } from 'socket.io-client';
import {
  REPO_ROOT, requireBin, runSioc, tempDir, startDaemon, haveRedis, startRedis, sleep,
} from '../lib/daemon.js';
import SocketService from './seeds/studyconnect-client.js';
import { connectOnPageLoad } from './seeds/vmt-client.js';
import { makeWebSocketsSvc } from './seeds/carolina-client.js';

const EXAMPLES = path.join(REPO_ROOT, 'examples/config');
const REDIS_SKIP = haveRedis() ? false : 'redis-server is not installed';
const read = (name) => JSON.parse(fs.readFileSync(path.join(EXAMPLES, name), 'utf8'));

function connected(socket) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no connect within 3 s')), 3000);
    socket.once('connect', () => { clearTimeout(timer); resolve(socket); });
    socket.once('connect_error', (err) => { clearTimeout(timer); reject(err); });
  });
}

describe('examples/config', () => {
  it('every example passes check-config as written', async () => {
    const files = fs.readdirSync(EXAMPLES).filter((f) => f.endsWith('.json')).sort();
    assert.deepEqual(files, ['carolina.json', 'notes.json', 'studyconnect.json', 'vmt.json']);
    for (const file of files) {
      const res = await runSioc(['check-config', path.join(EXAMPLES, file)]);
      assert.deepEqual({ code: res.code, stderr: res.stderr }, { code: 0, stderr: '' }, file);
    }
  });

  describe('each serves its front end', { skip: REDIS_SKIP }, () => {
    let redis;
    let client;
    before(async () => {
      requireBin();
      redis = await startRedis();
      client = createClient({ socket: { host: '127.0.0.1', port: redis.port, reconnectStrategy: false } });
      client.on('error', () => {});
      await client.connect();
    });
    after(async () => {
      await client?.quit().catch(() => {});
      await redis?.stop();
    });

    /** The example with only the machine's ports, paths and Redis changed, started. */
    async function serve(t, name) {
      const config = read(name);
      const dir = tempDir(`example-${name}`);
      config.listen.port = 0;
      if (config.api) config.api.listen.port = 0;
      config.store.path = path.join(dir, config.store.path);
      if (config.auth.session) config.auth.session.redis.port = redis.port;
      const daemon = await startDaemon(dir, config);
      t.after(() => daemon.stopChecked());
      return { config, daemon };
    }

    /** A logged-in express-session, as connect-redis stores it; the cookie a browser sends. */
    async function sessionCookie(config, userId) {
      const { cookieName, secrets, redis: { prefix } } = config.auth.session;
      const sid = `sid-${process.pid}-${userId}-${Date.now()}`;
      const session = { cookie: { originalMaxAge: null, path: '/', httpOnly: true } };
      if (userId !== null) session.passport = { user: userId };
      await client.set(`${prefix}${sid}`, JSON.stringify(session));
      return `${cookieName}=${encodeURIComponent(`s:${signature.sign(sid, secrets[0])}`)}`;
    }

    it('studyconnect.json: the socketService connects with the back end\'s JWT and chats', async (t) => {
      const { config, daemon } = await serve(t, 'studyconnect.json');
      process.env.REACT_APP_API_URL = daemon.url('');
      const service = new SocketService();
      t.after(() => service.disconnect());
      await connected(service.init(jwt.sign({ id: 1, firstName: 'Ann' }, config.auth.jwt.secret)));
      const got = [];
      service.on('message:received', (m) => got.push(m));
      service.joinRoom(1);
      service.sendMessage(1, 'hello');
      for (let i = 0; i < 300 && got.length === 0; i++) await sleep(10);
      assert.equal(got[0]?.text, 'hello');
      assert.equal(got[0].sender.id, 1);
    });

    it('vmt.json: the page\'s socket connects before login, on "/"', async (t) => {
      const { daemon } = await serve(t, 'vmt.json');
      const socket = connectOnPageLoad(daemon.url(''));
      t.after(() => socket.disconnect());
      await connected(socket);
    });

    it('notes.json: /home with the session cookie receives notetitles', async (t) => {
      const { config, daemon } = await serve(t, 'notes.json');
      const socket = io(daemon.url('/home'), { reconnection: false, extraHeaders: { Cookie: await sessionCookie(config, 'u1') } });
      t.after(() => socket.disconnect());
      await connected(socket);
      const got = new Promise((resolve) => socket.once('notetitles', resolve));
      const res = await daemon.api('POST', '/emit', { namespace: '/home', event: 'notetitles', args: [{ notelist: [] }] }, { key: config.api.key });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(await got, { notelist: [] });
    });

    it('carolina.json: a visitor and a logged-in user connect to "/"', async (t) => {
      const { config, daemon } = await serve(t, 'carolina.json');
      for (const user of [null, 'u2']) {
        const svc = makeWebSocketsSvc(daemon.url(''), { extraHeaders: { Cookie: await sessionCookie(config, user) } });
        t.after(() => svc.close());
        await connected(svc.configureChannel('/', () => {}));
      }
    });
  });
});
