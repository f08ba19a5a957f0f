// The seeds' own front-end code against `sioc serve` (issue 11): each flow is played with the
// client code the seed documents (daemon/seeds/*.js hold it as the seed gives it), so a change
// that breaks an unchanged front end fails here.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import express from 'express';
import session from 'express-session';
import jwt from 'jsonwebtoken';
import { RedisStore } from 'connect-redis';
import { createClient } from 'redis';
import {
  requireBin, tempDir, baseConfig, startDaemon, tokenFor, sleep, haveRedis, startRedis, JWT_SECRET,
} from '../lib/daemon.js';
import SocketService from './seeds/studyconnect-client.js';
import { connectOnPageLoad, syncSocket } from './seeds/vmt-client.js';
import { makeWebSocketsSvc } from './seeds/carolina-client.js';

const WAIT_MS = 3000;

/** Resolves with the first `event` the socket gets (rejects after WAIT_MS). */
function next(socket, event, match = () => true) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off(event, on);
      reject(new Error(`no ${event} within ${WAIT_MS} ms`));
    }, WAIT_MS);
    const on = (...args) => {
      if (!match(...args)) return;
      clearTimeout(timer);
      socket.off(event, on);
      resolve(args);
    };
    socket.on(event, on);
  });
}

/** Collects every `event` the socket gets. */
function collect(socket, event) {
  const items = [];
  socket.on(event, (payload) => items.push(payload));
  return items;
}

async function until(predicate, what) {
  const deadline = Date.now() + WAIT_MS;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

let numericIds = 1000;
/** A user of StudyConnect's database: Sequelize ids are numbers. */
function numericUser(firstName) {
  return { id: ++numericIds, firstName, lastName: `${firstName}son`, role: 'student', avatar: null };
}

describe('StudyConnect (seeds 002, 003) with its own socketService', () => {
  let daemon;
  const services = [];
  before(async () => {
    requireBin();
    const dir = tempDir('seeds-studyconnect');
    daemon = await startDaemon(dir, baseConfig(dir, {
      channels: {
        '/': { driver: 'chat', auth: 'jwt' },
        '/scoped': { driver: 'chat', auth: 'jwt', options: { presence: 'rooms' } },
      },
    }));
    process.env.REACT_APP_API_URL = daemon.url('');
  });
  after(async () => {
    for (const service of services) service.disconnect();
    await daemon?.stopChecked();
  });

  /** A browser logged in as user: the seed's init(token), connected. */
  async function login(user, nsp = '') {
    process.env.REACT_APP_API_URL = daemon.url(nsp);
    const service = new SocketService();
    services.push(service);
    const socket = service.init(tokenFor(user));
    await next(socket, 'connect');
    return service;
  }

  it('joinRoom(id) then sendMessage(id, text) at once: the message arrives (events in arrival order)', async () => {
    const [ann, bob] = [numericUser('Ann'), numericUser('Bob')];
    const annService = await login(ann);
    const bobService = await login(bob);
    const annGot = collect(annService.socket, 'message:received');
    const bobGot = collect(bobService.socket, 'message:received');
    const annErrors = collect(annService.socket, 'message:error');
    bobService.joinRoom(77);
    // Bob's join is handled before his next event is (a socket's events in arrival order).
    await bobService.socket.timeout(WAIT_MS).emitWithAck('room:history', { roomId: 77 });
    // ChatContainer: the room is joined when currentRoomId changes, a message may follow at once.
    annService.joinRoom(77);
    annService.sendMessage(77, 'first');
    annService.sendMessage(77, 'second');
    annService.leaveRoom(77);
    annService.joinRoom(77);
    annService.sendMessage(77, 'third');
    await until(() => annGot.length === 3 && bobGot.length === 3, 'three messages on both sockets');
    assert.deepEqual(annErrors, []);
    assert.deepEqual(annGot.map((m) => m.text), ['first', 'second', 'third']);
    assert.deepEqual(bobGot.map((m) => m.text), ['first', 'second', 'third']);
  });

  it('a numeric JWT id comes back as a number: msg.sender.id === currentUser.id', async () => {
    const currentUser = numericUser('Carol');
    const other = numericUser('Dan');
    const carolService = await login(currentUser);
    const danService = await login(other);
    const statuses = collect(carolService.socket, 'user:status');
    danService.disconnect();
    await until(() => statuses.some((s) => s.userId === other.id && s.status === 'offline'), 'offline of Dan');
    assert.equal(typeof statuses[0].userId, 'number');

    const messages = collect(carolService.socket, 'message:received');
    carolService.joinRoom(5);
    carolService.sendMessage(5, 'mine');
    await until(() => messages.length === 1, 'the message');
    // ChatContainer's test for "my-message".
    const msg = messages[0];
    assert.equal(msg.sender.id === currentUser.id ? 'my-message' : 'other-message', 'my-message');
    assert.deepEqual(msg.sender, { id: currentUser.id, firstName: 'Carol', lastName: 'Carolson', role: 'student', avatar: null });
    assert.equal(msg.roomId, 5);

    const dms = collect(carolService.socket, 'dm:received');
    carolService.sendDirectMessage(currentUser.id, 'note to self');
    await until(() => dms.length === 1, 'the dm');
    assert.equal(dms[0].sender.id, currentUser.id);
    assert.equal(dms[0].recipientId, currentUser.id);
    assert.equal(dms[0].senderId, currentUser.id);

    // The HTTP API's live presence: the ids as the tokens gave them.
    assert.deepEqual((await daemon.apiOk('GET', '/presence/rooms/5')).online, [currentUser.id]);
  });

  it('read back from the store after a reconnect, ids keep their type: history sender.id === currentUser.id', async () => {
    const currentUser = numericUser('Erin');
    const friend = numericUser('Finn');
    let erin = await login(currentUser);
    await login(friend); // a registered recipient for the DM
    const live = collect(erin.socket, 'message:received');
    const dms = collect(erin.socket, 'dm:received');
    erin.joinRoom(6);
    erin.sendMessage(6, 'before the reload');
    erin.sendDirectMessage(friend.id, 'dm before the reload');
    await until(() => live.length === 1 && dms.length === 1, 'the message and the dm');
    // The page reloads: a new socketService, the same user, history from the store.
    erin.disconnect();
    erin = await login(currentUser);
    erin.joinRoom(6);
    const history = await erin.socket.timeout(WAIT_MS).emitWithAck('room:history', { roomId: 6 });
    assert.equal(history.ok, true, JSON.stringify(history));
    assert.equal(history.messages.length, 1);
    const msg = history.messages[0];
    assert.equal(msg.sender.id === currentUser.id ? 'my-message' : 'other-message', 'my-message');
    assert.strictEqual(msg.sender.id, currentUser.id);
    assert.equal(msg.sender.firstName, 'Erin');
    const dmHistory = await erin.socket.timeout(WAIT_MS).emitWithAck('dm:history', { userId: friend.id });
    assert.equal(dmHistory.ok, true, JSON.stringify(dmHistory));
    assert.equal(dmHistory.messages.length, 1);
    const dm = dmHistory.messages[0];
    assert.strictEqual(dm.senderId, currentUser.id);
    assert.strictEqual(dm.recipientId, friend.id);
    assert.strictEqual(dm.sender?.id ?? dm.senderId, currentUser.id);
    assert.equal(dm.text, 'dm before the reload');
  });

  it('options.presence "rooms": user:status only reaches those who share a study room', async () => {
    const [ann, bob, carol] = [numericUser('Ann'), numericUser('Bob'), numericUser('Carol')];
    const annService = await login(ann, '/scoped');
    const carolService = await login(carol, '/scoped');
    const annStatus = collect(annService.socket, 'user:status');
    const carolStatus = collect(carolService.socket, 'user:status');
    const joined = collect(annService.socket, 'room:userJoined');
    annService.joinRoom(9);
    const bobService = await login(bob, '/scoped');
    bobService.joinRoom(9);
    await until(() => joined.length === 1, 'Bob joins');
    bobService.disconnect();
    await until(() => annStatus.length === 1, 'Bob offline at Ann');
    assert.deepEqual(annStatus, [{ userId: bob.id, status: 'offline' }]);
    // Ann has Bob's offline, so it was sent; an event to Carol sent after it arrives after
    // anything sent to her before.
    const marker = next(carolService.socket, 'marker');
    await daemon.apiOk('POST', `/users/${carol.id}/emit`, { namespace: '/scoped', event: 'marker', args: [] });
    await marker;
    assert.deepEqual(carolStatus, [], 'Carol shares no room with Bob: no online, no offline');
  });
});

const REDIS_SKIP = haveRedis() ? false : 'redis-server is not installed (Debian: apt-get install redis-server)';
const SESSION_SECRETS = ['seeds-session-secret'];

/**
 * An Express back end with express-session in Redis (connect-redis), as VMT's, Notes' and
 * Carolina's servers keep sessions: GET /page gives a visitor a session (saveUninitialized),
 * POST /login/:id puts passport's user in that same session.
 */
async function startSessionBackEnd(redisPort) {
  const client = createClient({ socket: { host: '127.0.0.1', port: redisPort, reconnectStrategy: false } });
  client.on('error', () => {});
  await client.connect();
  const app = express();
  app.use(session({
    store: new RedisStore({ client, prefix: 'sess:' }),
    secret: SESSION_SECRETS,
    name: 'connect.sid',
    resave: true,
    saveUninitialized: true,
  }));
  app.get('/page', (req, res) => {
    req.session.visited = true;
    res.json({ ok: true });
  });
  app.post('/login/:id', (req, res) => {
    const id = /^\d+$/.test(req.params.id) ? Number(req.params.id) : req.params.id;
    req.session.passport = { user: id };
    res.json({ ok: true });
  });
  const web = app.listen(0, '127.0.0.1');
  await once(web, 'listening');
  const base = `http://127.0.0.1:${web.address().port}`;
  return {
    /** The visitor's cookie ("connect.sid=..."), as a browser keeps it. */
    async visit() {
      const res = await fetch(`${base}/page`);
      return res.headers.get('set-cookie').split(';')[0];
    },
    async login(cookie, id) {
      const res = await fetch(`${base}/login/${id}`, { method: 'POST', headers: { Cookie: cookie } });
      assert.equal(res.status, 200);
    },
    async close() {
      web.closeAllConnections?.();
      await new Promise((r) => web.close(r));
      await client.quit().catch(() => {});
    },
  };
}

describe('VMT (seed 000): the socket opens before login, SYNC_SOCKET binds the user with proof', { skip: REDIS_SKIP }, () => {
  let redis;
  let backEnd;
  let daemon;
  const sockets = [];
  before(async () => {
    requireBin();
    redis = await startRedis();
    backEnd = await startSessionBackEnd(redis.port);
    const dir = tempDir('seeds-vmt');
    daemon = await startDaemon(dir, baseConfig(dir, {
      auth: {
        jwt: { algorithm: 'HS256', secret: JWT_SECRET },
        session: { cookieName: 'connect.sid', secrets: SESSION_SECRETS, redis: { host: '127.0.0.1', port: redis.port, prefix: 'sess:' } },
      },
      channels: { '/': { driver: 'notifications', auth: 'optional' } },
    }));
  });
  after(async () => {
    for (const socket of sockets) socket.disconnect();
    try {
      await daemon?.stopChecked();
    } finally {
      await backEnd?.close();
      await redis?.stop();
    }
  });

  const notify = (userId, type) => daemon.apiOk('POST', '/notifications', { userId, type, payload: { note: type } }, 201);
  async function pageLoad(cookie) {
    const socket = connectOnPageLoad(daemon.url(''), { forceNew: true, ...(cookie ? { extraHeaders: { Cookie: cookie } } : {}) }); // a browser each
    sockets.push(socket);
    await next(socket, 'connect');
    return socket;
  }

  it('anonymous at page load; SYNC_SOCKET before login is refused and binds nothing; after login it binds, and notifications arrive without a reload', async () => {
    const user = { _id: ++numericIds };
    const cookie = await backEnd.visit();
    const socket = await pageLoad(cookie);
    const got = [];
    const [res0, err0] = await syncSocket(socket, user, (n) => got.push(n));
    assert.equal(res0, null);
    assert.deepEqual(err0, { code: 'forbidden', message: 'Authentication error: no user in this session' });
    await notify(user._id, 'requestAccess'); // must never reach this socket: checked below

    await backEnd.login(cookie, user._id);
    const [res, err] = await syncSocket(socket, user, () => {});
    assert.equal(err, null);
    assert.deepEqual(res, { ok: true, userId: user._id, socketId: socket.id });
    await notify(user._id, 'grantedAccess');
    await until(() => got.length >= 1, 'the notification');
    // Notifications reach a socket in order: a requestAccess pushed to the unproven claim
    // would have come first.
    assert.deepEqual(got.map((n) => n.notification.notificationType), ['grantedAccess'], 'an unproven claim receives nothing');
    // The HTTP API got a numeric userId: toUser reads back from the store as that number.
    assert.strictEqual(got[0].notification.toUser, user._id);
  });

  it('a logged-in session cannot bind to another user than its own', async () => {
    const [ann, mallory] = [{ _id: ++numericIds }, { _id: ++numericIds }];
    const cookie = await backEnd.visit();
    await backEnd.login(cookie, mallory._id);
    const socket = await pageLoad(cookie);
    const [res, err] = await syncSocket(socket, ann, () => {});
    assert.equal(res, null);
    assert.deepEqual(err, { code: 'forbidden', message: 'SYNC_SOCKET names another user than the authenticated one' });
  });

  it('a token in SYNC_SOCKET ({userId, token}) is proof too; a forged one is refused', async () => {
    const user = numericUser('Tom');
    const socket = await pageLoad(null);
    const ask = (payload) => new Promise((resolve) => socket.emit('SYNC_SOCKET', payload, (...a) => resolve(a)));
    const [, forged] = await ask({ userId: user.id, token: jwt.sign(user, 'x'.repeat(32)) });
    assert.deepEqual(forged, { code: 'forbidden', message: 'Authentication error: invalid signature' });
    const [res] = await ask({ userId: user.id, token: tokenFor(user) });
    assert.deepEqual(res, { ok: true, userId: user.id, socketId: socket.id });
  });

  it('by default only notifications created while connected are pushed: no replay of unread ones on each page load', async () => {
    const user = { _id: ++numericIds };
    const cookie = await backEnd.visit();
    await backEnd.login(cookie, user._id);
    await notify(user._id, 'requestAccess'); // while offline
    const socket = await pageLoad(cookie);
    const got = [];
    const [res] = await syncSocket(socket, user, (n) => got.push(n.notification.notificationType));
    assert.equal(res.ok, true);
    await notify(user._id, 'grantedAccess');
    await notify(user._id, 'marker'); // in order after it: once it is here, a replay would be too
    await until(() => got.length >= 2, 'the new notifications');
    assert.deepEqual(got, ['grantedAccess', 'marker']);
  });
});

describe('Carolina (seed 004): anonymous visitors and logged-in users on one channel', { skip: REDIS_SKIP }, () => {
  let redis;
  let backEnd;
  let daemon;
  const services = [];
  before(async () => {
    requireBin();
    redis = await startRedis();
    backEnd = await startSessionBackEnd(redis.port);
    const dir = tempDir('seeds-carolina');
    daemon = await startDaemon(dir, baseConfig(dir, {
      auth: { session: { cookieName: 'connect.sid', secrets: SESSION_SECRETS, redis: { host: '127.0.0.1', port: redis.port, prefix: 'sess:' } } },
      channels: { '/': { driver: 'main', auth: 'optional' } },
    }));
  });
  after(async () => {
    for (const service of services) service.close();
    try {
      await daemon?.stopChecked();
    } finally {
      await backEnd?.close();
      await redis?.stop();
    }
  });

  /** A browser page with the seed's frontend code: configureChannel('/') with 'some-event'. */
  async function page(cookie) {
    const WebSocketsSvc = makeWebSocketsSvc(daemon.url(''), { forceNew: true, extraHeaders: { Cookie: cookie } }); // a browser each
    services.push(WebSocketsSvc);
    const got = [];
    // The seed's frontend, as given.
    WebSocketsSvc.configureChannel('/', (socket) => {
      socket.on('connect', () => {
        got.push('connect');
      });
      socket.on('some-event', (data) => {
        // data from the server
        got.push(data);
      });
    });
    const socket = WebSocketsSvc.connect('/');
    await until(() => got.includes('connect'), 'the connection');
    return { socket, got };
  }

  /** Resolves once the page's session_id (sent at connect) is handled: a second one, acked,
   * is answered after it (a socket's events in arrival order). */
  function settled(pageOf, cookie) {
    const sid = decodeURIComponent(cookie.split('=')[1]).slice(2).split('.')[0];
    return new Promise((resolve) => pageOf.socket.emit('session_id', sid, resolve));
  }

  it('a visitor joins session.{id} only; a logged-in user also user.{id}, where emitToUser reaches every tab', async () => {
    const userId = ++numericIds;
    const visitorCookie = await backEnd.visit();
    const userCookie = await backEnd.visit();
    await backEnd.login(userCookie, userId);
    const visitor = await page(visitorCookie);
    const tab1 = await page(userCookie);
    const tab2 = await page(userCookie);
    await Promise.all([settled(visitor, visitorCookie), settled(tab1, userCookie), settled(tab2, userCookie)]);

    // WebSocketsSvc.channels['/'].emitToUser(specificUser, 'some-event', data)
    await daemon.apiOk('POST', `/users/${userId}/emit`, { namespace: '/', event: 'some-event', args: [{ for: 'user' }] });
    await until(() => tab1.got.length === 2 && tab2.got.length === 2, 'some-event on both tabs');
    assert.deepEqual(tab1.got[1], { for: 'user' });
    // WebSocketsSvc.channels['/'].emit('some-event', data): everyone, the visitor too.
    await daemon.apiOk('POST', '/emit', { namespace: '/', event: 'some-event', args: [{ for: 'all' }] });
    await until(() => visitor.got.length === 2, 'the broadcast at the visitor');
    assert.deepEqual(visitor.got, ['connect', { for: 'all' }], 'the visitor got no user event');

    const visitorSid = decodeURIComponent(visitorCookie.split('=')[1]).slice(2).split('.')[0];
    await daemon.apiOk('POST', '/emit', { namespace: '/', event: 'some-event', args: [{ for: 'session' }], rooms: [`session.${visitorSid}`] });
    await until(() => visitor.got.length === 3, 'the session event');
    assert.deepEqual(visitor.got[2], { for: 'session' });
    await daemon.apiOk('POST', `/users/${userId}/emit`, { namespace: '/', event: 'some-event', args: ['marker'] });
    await until(() => tab1.got.length >= 4, 'the marker');
    assert.deepEqual(tab1.got, ['connect', { for: 'user' }, { for: 'all' }, 'marker'], 'the user tabs got the broadcast, not the session event');
  });

  it('a visitor who logs in while connected: its next session_id joins user.{id} (the session is read again)', async () => {
    const userId = ++numericIds;
    const cookie = await backEnd.visit();
    const visitor = await page(cookie);
    const sid = decodeURIComponent(cookie.split('=')[1]).slice(2).split('.')[0];
    const ask = () => new Promise((resolve) => visitor.socket.emit('session_id', sid, (a) => resolve(a)));
    assert.deepEqual(await ask(), { ok: true, rooms: [`session.${sid}`] });
    await backEnd.login(cookie, userId);
    assert.deepEqual(await ask(), { ok: true, rooms: [`session.${sid}`, `user.${userId}`] });
    await daemon.apiOk('POST', `/users/${userId}/emit`, { event: 'some-event', args: ['welcome'] });
    await until(() => visitor.got.length === 2, 'emitToUser after login');
    assert.deepEqual(visitor.got[1], 'welcome');
  });

  it('the back end puts sockets in rooms and disconnects them through the HTTP API (by user, socket id or room)', async () => {
    const userId = ++numericIds;
    const userCookie = await backEnd.visit();
    await backEnd.login(userCookie, userId);
    const visitorCookie = await backEnd.visit();
    const tab = await page(userCookie);
    const visitor = await page(visitorCookie);
    await Promise.all([settled(tab, userCookie), settled(visitor, visitorCookie)]);
    assert.deepEqual(await daemon.apiOk('POST', '/sockets/join', { userId, rooms: ['authenticated'] }), { ok: true });
    assert.deepEqual(await daemon.apiOk('POST', '/sockets/join', { socketId: visitor.socket.id, rooms: 'visitors' }), { ok: true });
    await daemon.apiOk('POST', '/emit', { event: 'some-event', args: ['members'], rooms: ['authenticated'] });
    await daemon.apiOk('POST', '/emit', { event: 'some-event', args: ['guests'], rooms: ['visitors'] });
    await until(() => tab.got.length === 2 && visitor.got.length === 2, 'the room events');
    assert.deepEqual([tab.got[1], visitor.got[1]], ['members', 'guests']);
    await daemon.apiOk('POST', '/sockets/leave', { userId, rooms: ['authenticated'] });
    await daemon.apiOk('POST', '/emit', { event: 'some-event', args: ['members again'], rooms: ['authenticated'] });
    const bad = await daemon.api('POST', '/sockets/join', { userId, socketId: 'x', rooms: ['a'] });
    assert.equal(bad.status, 400);
    await daemon.apiOk('POST', '/sockets/disconnect', { room: 'visitors' });
    await until(() => !visitor.socket.connected, 'the visitor disconnected');
    await daemon.apiOk('POST', `/users/${userId}/emit`, { event: 'some-event', args: ['marker'] });
    await until(() => tab.got.length >= 3, 'the marker');
    assert.deepEqual(tab.got, ['connect', 'members', 'marker'], 'left the room: nothing more');
    assert.equal(tab.socket.connected, true);
  });
});
