// Authentication per channel, end to end against `sioc serve`:
// - JWT (seeds 002/003: auth.token; also an Authorization: Bearer header and
//   ?token=): missing, forged, expired, not yet valid, malformed, alg:none,
//   another HMAC algorithm, HS/RS confusion with an RS256 daemon, no user id.
//   Every refusal is a connect_error whose message starts "Authentication
//   error:" (the seeds' wording; the reasons are npm jsonwebtoken's) and
//   leaves nothing stored (the user has no presence afterwards).
// - Express session cookies (seed 001, passport.socketio) written by a real
//   express-session + connect-redis into a redis-server started here:
//   login, secret rotation, tampered / unsigned / unknown / user-less
//   sessions, and a channel with auth "any".
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { once } from 'node:events';
import jwt from 'jsonwebtoken';
import express from 'express';
import session from 'express-session';
import { RedisStore } from 'connect-redis';
import { createClient } from 'redis';
import signature from 'cookie-signature';
import {
  requireBin, tempDir, baseConfig, startDaemon, makeUser, tokenFor, publicUser, connectAs,
  haveRedis, startRedis, freePort, presenceOf, JWT_SECRET, sleep,
} from '../lib/daemon.js';
import { ask, connectError, RawSession } from '../lib/sio.js';

let rsaKey;
/** An RSA private key (PEM), made once. */
const rsaPrivateKey = () => (rsaKey ??= crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
const b64url = (x) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

/** The sid of a CONNECT reply's text for "/", or undefined. */
const parseConnectSid = (text) => (text.startsWith('0{') ? JSON.parse(text.slice(1)).sid : undefined);

/** Connect with `opts` and expect a refusal; returns the connect_error's message. */
async function refused(c, { nsp = '/', mode = 'websocket', auth, managerOpts } = {}) {
  const socket = c.socket(c.manager(mode, managerOpts), nsp, auth === undefined ? {} : { auth });
  const err = await connectError(socket);
  assert.equal(socket.connected, false);
  return err.message;
}

describe('JWT auth (HS256 daemon)', () => {
  let daemon;
  before(async () => {
    requireBin();
    const dir = tempDir('auth-jwt');
    daemon = await startDaemon(dir, baseConfig(dir, {
      channels: { '/': { driver: 'chat', auth: 'jwt' }, '/open': { driver: 'main', auth: 'none' } },
    }));
  });
  after(async () => {
    await daemon?.stopChecked();
  });

  it('a valid token in auth.token connects; the user is stored online', async (t) => {
    const c = daemon.clients(t);
    const ann = makeUser('Ann');
    const socket = await connectAs(c, ann);
    assert.ok(socket.connected);
    const presence = await presenceOf(daemon, ann.id);
    assert.equal(presence?.status, 'online');
    assert.equal(presence.userId, ann.id);
  });

  it('the token may also come as "Authorization: Bearer" or as ?token=', async (t) => {
    const c = daemon.clients(t);
    const [bob, carol] = [makeUser('Bob'), makeUser('Carol')];
    const viaHeader = c.socket(c.manager('websocket', { extraHeaders: { Authorization: `Bearer ${tokenFor(bob)}` } }), '/');
    const viaQuery = c.socket(c.manager('polling', { query: { token: tokenFor(carol) } }), '/');
    await Promise.all([once(viaHeader, 'connect'), once(viaQuery, 'connect')]);
    assert.equal((await presenceOf(daemon, bob.id))?.status, 'online');
    assert.equal((await presenceOf(daemon, carol.id))?.status, 'online');
  });

  const payload = (user, extra = {}) => ({ ...publicUser(user), iat: now(), ...extra });
  const refusals = [
    ['no token at all', () => undefined, 'Token not provided'],
    ['an auth object without a token', () => ({ name: 'x' }), 'Token not provided'],
    ['a token signed with another secret (forged)', (u) => ({ token: jwt.sign(payload(u), `${JWT_SECRET}-forged`) }), 'invalid signature'],
    ['an expired token', (u) => ({ token: jwt.sign(payload(u, { exp: now() - 60 }), JWT_SECRET) }), 'jwt expired'],
    ['a token not valid yet (nbf)', (u) => ({ token: jwt.sign(payload(u, { nbf: now() + 3600 }), JWT_SECRET) }), 'jwt not active'],
    // npm jsonwebtoken's words for an unsigned token, before it looks at the algorithm.
    ['an alg:none token', (u) => ({ token: `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(payload(u))}.` }), 'jwt signature is required'],
    ['an alg:none token with a signature copied from a valid one', (u) => {
      const valid = tokenFor(u).split('.');
      return { token: `${b64url({ alg: 'none', typ: 'JWT' })}.${valid[1]}.${valid[2]}` };
    }, 'invalid algorithm'],
    ['an HS384 token (the algorithm is pinned to HS256)', (u) => ({ token: jwt.sign(payload(u), JWT_SECRET, { algorithm: 'HS384' }) }), 'invalid algorithm'],
    ['an RS256 token (the algorithm is pinned to HS256)', (u) => ({ token: jwt.sign(payload(u), rsaPrivateKey(), { algorithm: 'RS256' }) }), 'invalid algorithm'],
    ['a valid token with its payload changed', (u) => {
      const [h, , s] = tokenFor(u).split('.');
      return { token: `${h}.${b64url(payload(u, { role: 'admin' }))}.${s}` };
    }, 'invalid signature'],
    ['garbage', () => ({ token: 'not-a-jwt' }), 'jwt malformed'],
    ['a token without id or sub', (u) => ({ token: jwt.sign({ firstName: u.firstName }, JWT_SECRET) }), 'token has no user id (id or sub)'],
  ];
  for (const [what, auth, reason] of refusals) {
    it(`refuses ${what}: connect_error "Authentication error: ${reason}", nothing stored`, async (t) => {
      const c = daemon.clients(t);
      const user = makeUser('Mallory');
      const message = await refused(c, { auth: auth(user) });
      assert.match(message, /^Authentication error:/);
      assert.equal(message, `Authentication error: ${reason}`);
      assert.equal((await presenceOf(daemon, user.id)).lastActivity, null, 'no presence stored for a refused user');
    });
  }

  it('refuses over polling too (the same message)', async (t) => {
    const c = daemon.clients(t);
    const user = makeUser('Mallory');
    assert.equal(await refused(c, { mode: 'polling', auth: { token: jwt.sign(publicUser(user), 'x'.repeat(32)) } }), 'Authentication error: invalid signature');
  });

  it('a refused socket can retry with a good token on the same connection', async (t) => {
    const c = daemon.clients(t);
    const user = makeUser('Dave');
    const socket = c.socket(c.manager('websocket'), '/', { auth: { token: 'bad' } });
    assert.equal((await connectError(socket)).message, 'Authentication error: jwt malformed');
    socket.auth = { token: tokenFor(user) };
    socket.connect();
    await once(socket, 'connect');
    assert.equal((await presenceOf(daemon, user.id))?.status, 'online');
  });

  it('a numeric id in the token becomes the string user id', async (t) => {
    const c = daemon.clients(t);
    const id = 900000 + (process.pid % 1000);
    await connectAs(c, null, { token: jwt.sign({ id, firstName: 'Num' }, JWT_SECRET) });
    const presence = await presenceOf(daemon, String(id));
    assert.equal(presence?.userId, String(id));
  });

  // The daemon reads auth.token from the CONNECT's text without the auth object
  // (sioc_socket_auth_string): escapes decode as JSON.parse decodes them, and a
  // token that is no string is no token, as before.
  const rawConnect = async (t, auth, headers) => {
    const raw = await RawSession.open(daemon, 'websocket', { headers });
    t.after(() => raw.stop());
    await raw.send(`40${auth}`);
    return raw;
  };
  const refusal = (reason) => `4${JSON.stringify({ message: `Authentication error: ${reason}` })}`;

  it('auth.token written with JSON escapes is the same token (\\u0065, \\/ and a surrogate-free \\u escape)', async (t) => {
    const user = makeUser('Escaped');
    const token = tokenFor(user);
    const escaped = `\\u00${token.charCodeAt(0).toString(16)}${token.slice(1, 5)}\\u00${token.charCodeAt(5).toString(16)}${token.slice(6)}`;
    assert.equal(JSON.parse(`"${escaped}"`), token);
    const raw = await rawConnect(t, `{"other":"a\\/b\\"c","token":"${escaped}","n":[1,{"token":2}]}`);
    const reply = await raw.nextText();
    assert.ok(parseConnectSid(reply), `expected a CONNECT reply, got ${reply}`);
    assert.equal((await presenceOf(daemon, user.id))?.status, 'online');
  });

  for (const [what, auth] of [
    ['a number', '{"token":42}'],
    ['null', '{"token":null}'],
    ['an object', '{"token":{"token":"x"}}'],
    ['a nested member only', '{"inner":{"token":"x"}}'],
  ]) {
    it(`auth.token that is ${what} is no token: "Token not provided"`, async (t) => {
      const raw = await rawConnect(t, auth);
      assert.equal(await raw.nextText(), refusal('Token not provided'));
    });
  }

  it('auth.token that is no string falls back to the Authorization header, as before', async (t) => {
    const user = makeUser('Header');
    const raw = await rawConnect(t, '{"token":7}', [['Authorization', `Bearer ${tokenFor(user)}`]]);
    const reply = await raw.nextText();
    assert.ok(parseConnectSid(reply), `expected a CONNECT reply, got ${reply}`);
    assert.equal((await presenceOf(daemon, user.id))?.status, 'online');
  });

  it('auth.token holding an escaped NUL byte is checked with it (refused: invalid token)', async (t) => {
    const token = tokenFor(makeUser('Nul'));
    const raw = await rawConnect(t, `{"token":"${token.slice(0, 10)}\\u0000${token.slice(10)}"}`);
    assert.equal(await raw.nextText(), refusal('invalid token'));
  });

  it('auth.token holding a lone surrogate escape is read with U+FFFD there (refused: jwt malformed, as Node)', async (t) => {
    const raw = await rawConnect(t, '{"token":"\\ud800"}');
    assert.equal(await raw.nextText(), refusal('jwt malformed'));
  });

  for (const auth of ['{"token":"abc', '{"token":"a\\x"}', '{"token":"abc"}x', '["token"]']) {
    it(`a malformed auth ${auth} closes the connection, as the parser refuses it`, async (t) => {
      const raw = await rawConnect(t, auth);
      await raw.waitClosed(5000);
      assert.deepEqual(raw.queue, []);
    });
  }

  it('a channel with auth "none" needs no token', async (t) => {
    const c = daemon.clients(t);
    const socket = await c.connect('websocket', '/open', {});
    assert.ok(socket.connected);
  });
});

describe('JWT auth (RS256 daemon): algorithm confusion', () => {
  let daemon;
  let privateKey;
  let publicPem;
  before(async () => {
    requireBin();
    const dir = tempDir('auth-rs');
    const pair = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    privateKey = pair.privateKey.export({ type: 'pkcs8', format: 'pem' });
    publicPem = pair.publicKey.export({ type: 'spki', format: 'pem' });
    const keyFile = path.join(dir, 'jwt-public.pem');
    fs.writeFileSync(keyFile, publicPem);
    daemon = await startDaemon(dir, baseConfig(dir, {
      auth: { jwt: { algorithm: 'RS256', publicKeyFile: keyFile } },
      channels: { '/': { driver: 'chat', auth: 'jwt' } },
    }));
  });
  after(async () => {
    await daemon?.stopChecked();
  });

  it('an RS256 token signed with the private key connects', async (t) => {
    const c = daemon.clients(t);
    const user = makeUser('Rita');
    await connectAs(c, user, { token: jwt.sign(publicUser(user), privateKey, { algorithm: 'RS256' }) });
    assert.equal((await presenceOf(daemon, user.id))?.status, 'online');
  });

  it('an HS256 token whose HMAC key is the public key PEM is refused ("invalid algorithm"), nothing stored', async (t) => {
    const c = daemon.clients(t);
    const user = makeUser('Mallory');
    const head = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ ...publicUser(user), iat: now() })}`;
    const sig = crypto.createHmac('sha256', publicPem).update(head).digest('base64url');
    assert.equal(await refused(c, { auth: { token: `${head}.${sig}` } }), 'Authentication error: invalid algorithm');
    assert.equal((await presenceOf(daemon, user.id)).lastActivity, null);
  });

  it('alg:none and an RS256 token from another key are refused', async (t) => {
    const c = daemon.clients(t);
    const user = makeUser('Mallory');
    assert.equal(await refused(c, { auth: { token: `${b64url({ alg: 'none' })}.${b64url(publicUser(user))}.` } }), 'Authentication error: jwt signature is required');
    assert.equal(await refused(c, { auth: { token: `${b64url({ alg: 'none' })}.${b64url(publicUser(user))}.c2ln` } }), 'Authentication error: invalid algorithm');
    const other = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' });
    assert.equal(await refused(c, { auth: { token: jwt.sign(publicUser(user), other, { algorithm: 'RS256' }) } }), 'Authentication error: invalid signature');
    assert.equal((await presenceOf(daemon, user.id)).lastActivity, null);
  });
});

const REDIS_SKIP = haveRedis() ? false : 'redis-server is not installed (Debian: apt-get install redis-server): the session tests need a real Redis';
const SESSION_SECRETS = ['current-session-secret', 'previous-session-secret'];

describe('Express session cookie auth (seed 001: express-session + connect-redis)', { skip: REDIS_SKIP }, () => {
  let daemon;
  let redis;
  let redisClient;
  let web; // the Express back end that logs users in
  let webPort;

  /** Log `userId` in through the Express app (passport's session layout); the Cookie header value. */
  async function login(userId, { path: route = '/login' } = {}) {
    const res = await fetch(`http://127.0.0.1:${webPort}${route}${userId ? `/${encodeURIComponent(userId)}` : ''}`, { method: 'POST' });
    assert.equal(res.status, 200);
    const setCookie = res.headers.get('set-cookie');
    assert.ok(setCookie, 'express-session set a cookie');
    return setCookie.split(';')[0]; // "connect.sid=s%3A<sid>.<sig>"
  }
  const sidOf = (cookie) => decodeURIComponent(cookie.split('=')[1]).slice(2).split('.')[0];

  before(async () => {
    requireBin();
    redis = await startRedis();
    redisClient = createClient({ socket: { host: '127.0.0.1', port: redis.port, reconnectStrategy: false } });
    redisClient.on('error', () => {}); // the last test stops Redis under it
    await redisClient.connect();
    const app = express();
    app.use(session({
      store: new RedisStore({ client: redisClient, prefix: 'sess:' }),
      secret: SESSION_SECRETS,
      name: 'connect.sid',
      resave: true,
      saveUninitialized: true,
    }));
    // What passport.serializeUser((user, done) => done(null, user.id)) leaves in the session.
    app.post('/login/:id', (req, res) => {
      req.session.passport = { user: req.params.id };
      res.json({ ok: true });
    });
    app.post('/anonymous', (req, res) => {
      req.session.visits = 1;
      res.json({ ok: true });
    });
    web = app.listen(0, '127.0.0.1');
    await once(web, 'listening');
    webPort = web.address().port;

    const dir = tempDir('auth-session');
    daemon = await startDaemon(dir, baseConfig(dir, {
      auth: {
        jwt: { algorithm: 'HS256', secret: JWT_SECRET },
        session: { cookieName: 'connect.sid', secrets: SESSION_SECRETS, redis: { host: '127.0.0.1', port: redis.port, prefix: 'sess:' } },
      },
      channels: { '/': { driver: 'chat', auth: 'session' }, '/any': { driver: 'chat', auth: 'any' }, '/carolina': { driver: 'main', auth: 'session' } },
    }));
  });
  after(async () => {
    try {
      await daemon?.stopChecked();
    } finally {
      web?.closeAllConnections?.();
      await new Promise((r) => (web ? web.close(r) : r()));
      try {
        await redisClient?.quit();
      } catch {
        // closed when Redis went away
      }
      await redis?.stop();
    }
  });

  const withCookie = (cookie) => ({ extraHeaders: { Cookie: cookie } });

  it('the cookie express-session set after a login connects, as passport.user; over polling and WebSocket', async (t) => {
    const c = daemon.clients(t);
    const userId = makeUser('Sam').id;
    const cookie = await login(userId);
    await c.connect('websocket', '/', { managerOpts: withCookie(cookie) });
    await c.connect('polling', '/', { managerOpts: withCookie(`theme=dark; ${cookie}; other=1`) });
    const presence = await presenceOf(daemon, userId);
    assert.equal(presence?.userId, userId);
    assert.equal(presence.status, 'online');
  });

  it('secret rotation: a cookie signed with the previous secret still connects', async (t) => {
    const c = daemon.clients(t);
    const userId = makeUser('Rot').id;
    const sid = sidOf(await login(userId));
    const cookie = `connect.sid=${encodeURIComponent(`s:${signature.sign(sid, SESSION_SECRETS[1])}`)}`;
    await c.connect('websocket', '/', { managerOpts: withCookie(cookie) });
    assert.equal((await presenceOf(daemon, userId))?.status, 'online');
  });

  const tamper = (cookie) => {
    const value = decodeURIComponent(cookie.split('=')[1]);
    const last = value.at(-1) === 'A' ? 'B' : 'A';
    return `connect.sid=${encodeURIComponent(value.slice(0, -1) + last)}`;
  };
  const sessionRefusals = [
    ['no cookie', async () => undefined, 'no session cookie'],
    ['another cookie only', async () => 'theme=dark', 'no session cookie'],
    ['a tampered signature', async (id) => tamper(await login(id)), 'invalid session cookie signature'],
    ['a session id swapped under a valid signature', async (id) => {
      const other = sidOf(await login(makeUser('Other').id));
      const value = decodeURIComponent((await login(id)).split('=')[1]);
      return `connect.sid=${encodeURIComponent(`s:${other}.${value.split('.').at(-1)}`)}`;
    }, 'invalid session cookie signature'],
    ['a cookie signed with a secret not in the config', async (id) => {
      const sid = sidOf(await login(id));
      return `connect.sid=${encodeURIComponent(`s:${signature.sign(sid, 'some-other-secret')}`)}`;
    }, 'invalid session cookie signature'],
    ['an unsigned cookie', async (id) => `connect.sid=${sidOf(await login(id))}`, 'unsigned session cookie'],
    ['a well-signed id of a session that does not exist', async () => `connect.sid=${encodeURIComponent(`s:${signature.sign('no-such-session-id', SESSION_SECRETS[0])}`)}`, 'session not found'],
  ];
  for (const [what, cookie, reason] of sessionRefusals) {
    it(`refuses ${what}: "Authentication error: ${reason}", nothing stored`, async (t) => {
      const c = daemon.clients(t);
      const userId = makeUser('Mallory').id;
      const header = await cookie(userId);
      const message = await refused(c, { managerOpts: header ? withCookie(header) : {} });
      assert.equal(message, `Authentication error: ${reason}`);
      assert.equal((await presenceOf(daemon, userId)).lastActivity, null, 'no presence stored for a refused user');
    });
  }

  it('refuses a session without a passport user ("no user in this session")', async (t) => {
    const c = daemon.clients(t);
    const cookie = await login(null, { path: '/anonymous' });
    assert.equal(await refused(c, { managerOpts: withCookie(cookie) }), 'Authentication error: no user in this session');
  });

  it('a session destroyed in Redis (logged out) no longer connects', async (t) => {
    const c = daemon.clients(t);
    const userId = makeUser('Gone').id;
    const cookie = await login(userId);
    await redisClient.del(`sess:${sidOf(cookie)}`);
    assert.equal(await refused(c, { managerOpts: withCookie(cookie) }), 'Authentication error: session not found');
    assert.equal((await presenceOf(daemon, userId)).lastActivity, null);
  });

  it('a channel with auth "any" takes a JWT or a session cookie', async (t) => {
    const c = daemon.clients(t);
    const jwtUser = makeUser('Jay');
    const cookieUserId = makeUser('Coco').id;
    await connectAs(c, jwtUser, { nsp: '/any' });
    await c.connect('websocket', '/any', { managerOpts: withCookie(await login(cookieUserId)) });
    assert.equal((await presenceOf(daemon, jwtUser.id))?.status, 'online');
    assert.equal((await presenceOf(daemon, cookieUserId))?.status, 'online');
    assert.equal(await refused(c, { nsp: '/any', auth: { token: 'bad' } }), 'Authentication error: jwt malformed');
    // A JWT is not enough on a session channel.
    assert.equal(await refused(c, { auth: { token: tokenFor(makeUser('Nope')) } }), 'Authentication error: no session cookie');
  });

  it('main driver with session auth (seed 004): session_id must be the connection\'s own session', async (t) => {
    const c = daemon.clients(t);
    const userId = makeUser('Carla').id;
    const cookie = await login(userId);
    const sid = sidOf(cookie);
    const socket = await c.connect('websocket', '/carolina', { managerOpts: withCookie(cookie) });
    assert.deepEqual(await ask(socket, 'session_id', sid), { ok: true, rooms: [`session.${sid}`, `user.${userId}`] });
    assert.deepEqual(await ask(socket, 'session_id', 'someone-elses-session'), { ok: false, error: { code: 'forbidden', message: 'sessionId is not the session of this connection' } });
  });

  // Last: it stops Redis.
  it('Redis down: a clear refusal, not a hang; Redis back (empty): the daemon reconnects by itself', async (t) => {
    const c = daemon.clients(t);
    const userId = makeUser('Ruth').id;
    const cookie = await login(userId);
    await redis.stop();
    const started = Date.now();
    assert.equal(await refused(c, { managerOpts: withCookie(cookie) }), 'Authentication error: session store unavailable');
    assert.ok(Date.now() - started < 5000);
    // Redis comes back on the same port, without the old sessions; a session written now works.
    redis = await startRedis({ port: redis.port });
    const client = createClient({ socket: { host: '127.0.0.1', port: redis.port, reconnectStrategy: false } });
    client.on('error', () => {});
    await client.connect();
    t.after(() => client.quit().catch(() => {}));
    const sid = `fresh-${process.pid}`;
    await client.set(`sess:${sid}`, JSON.stringify({ cookie: { path: '/', httpOnly: true }, passport: { user: userId } }));
    const fresh = `connect.sid=${encodeURIComponent(`s:${signature.sign(sid, SESSION_SECRETS[0])}`)}`;
    let last;
    for (let attempt = 0; attempt < 30; attempt++) {
      const socket = c.socket(c.manager('websocket', withCookie(fresh)), '/');
      last = await new Promise((resolve) => {
        socket.once('connect', () => resolve('connected'));
        socket.once('connect_error', (e) => resolve(e.message));
      });
      if (last === 'connected') break;
      await sleep(250);
    }
    assert.equal(last, 'connected', 'the daemon reconnected to Redis');
    assert.equal((await presenceOf(daemon, userId)).status, 'online');
  });
});

describe('Session store Redis refused at start, then started, stopped and restarted', { skip: REDIS_SKIP }, () => {
  let daemon;
  let redis;
  let port;
  const withCookie = (cookie) => ({ extraHeaders: { Cookie: cookie } });

  /** A session for userId written straight into Redis (what connect-redis stores); its cookie. */
  async function sessionCookie(userId) {
    const client = createClient({ socket: { host: '127.0.0.1', port, reconnectStrategy: false } });
    client.on('error', () => {});
    await client.connect();
    const sid = `s-${userId}`;
    await client.set(`sess:${sid}`, JSON.stringify({ cookie: { path: '/', httpOnly: true }, passport: { user: userId } }));
    await client.quit();
    return `connect.sid=${encodeURIComponent(`s:${signature.sign(sid, SESSION_SECRETS[0])}`)}`;
  }

  /** Tries a session-cookie socket until it connects (bounded: 40 tries, 250 ms apart). */
  async function connectsEventually(c, cookie) {
    let last;
    for (let attempt = 0; attempt < 40; attempt++) {
      const socket = c.socket(c.manager('websocket', withCookie(cookie)), '/');
      last = await new Promise((resolve) => {
        socket.once('connect', () => resolve('connected'));
        socket.once('connect_error', (e) => resolve(e.message));
      });
      if (last === 'connected') return last;
      socket.close();
      await sleep(250);
    }
    return last;
  }

  before(async () => {
    requireBin();
    port = await freePort(); // nothing listens there yet: the store's first connect is refused
    const dir = tempDir('auth-session-refused');
    daemon = await startDaemon(dir, baseConfig(dir, {
      auth: {
        jwt: { algorithm: 'HS256', secret: JWT_SECRET },
        session: { cookieName: 'connect.sid', secrets: SESSION_SECRETS, redis: { host: '127.0.0.1', port, prefix: 'sess:' } },
      },
      channels: { '/': { driver: 'chat', auth: 'session' } },
    }));
  });
  after(async () => {
    try {
      await daemon?.stopChecked();
    } finally {
      await redis?.stop();
    }
  });

  it('refused at start: "session store unavailable" at once; Redis started later: the daemon connects by itself', async (t) => {
    const c = daemon.clients(t);
    const nobody = `connect.sid=${encodeURIComponent(`s:${signature.sign('nobody', SESSION_SECRETS[0])}`)}`;
    const started = Date.now();
    assert.equal(await refused(c, { managerOpts: withCookie(nobody) }), 'Authentication error: session store unavailable');
    assert.ok(Date.now() - started < 5000);
    await sleep(300); // a few refused reconnects: each must end in a retry, not a hang
    redis = await startRedis({ port });
    const userId = makeUser('Early').id;
    assert.equal(await connectsEventually(c, await sessionCookie(userId)), 'connected', 'the store connected after refusals');
    assert.equal((await presenceOf(daemon, userId))?.status, 'online');
  });

  it('stopped and restarted: the daemon reconnects and a session-cookie socket connects afterwards', async (t) => {
    const c = daemon.clients(t);
    await redis.stop();
    redis = null;
    const nobody = `connect.sid=${encodeURIComponent(`s:${signature.sign('nobody', SESSION_SECRETS[0])}`)}`;
    assert.equal(await refused(c, { managerOpts: withCookie(nobody) }), 'Authentication error: session store unavailable');
    await sleep(300);
    redis = await startRedis({ port });
    const userId = makeUser('Late').id;
    assert.equal(await connectsEventually(c, await sessionCookie(userId)), 'connected', 'the store reconnected');
    assert.equal((await presenceOf(daemon, userId))?.status, 'online');
  });
});
