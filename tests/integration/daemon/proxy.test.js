// The proxy driver (issue 11): a channel whose logic stays in the app's back end. The back end
// here is a small Express app that keeps express-session sessions itself (MemoryStore) and
// answers sioc's connect and event POSTs: Carolina's MyCustomChannel (seed 004), VMT's
// SYNC_SOCKET (seed 000) and Notes' /home (seed 001), each driven by the seed's own front-end
// code; then the failure cases (back end down, slow, answering garbage) and per-socket order.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import express from 'express';
import session from 'express-session';
import signature from 'cookie-signature';
import { io } from 'socket.io-client';
import { requireBin, tempDir, baseConfig, startDaemon, sleep } from '../lib/daemon.js';
import { makeWebSocketsSvc } from './seeds/carolina-client.js';
import { connectOnPageLoad, syncSocket } from './seeds/vmt-client.js';

const SECRET = 'proxy-test-session-secret';
const WAIT_MS = 3000;

async function until(predicate, what) {
  const deadline = Date.now() + WAIT_MS;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Resolves once the back end has answered every event the socket sent before: one socket's
 * events are answered in arrival order, so the ack of a new one comes after theirs. */
function settled(socket) {
  return new Promise((resolve) => socket.emit('fast', 'barrier', resolve));
}

/** The app's back end: sessions, logins, and the proxy endpoints for three channels. */
async function startBackEnd() {
  const store = new session.MemoryStore();
  const app = express();
  const seen = []; // every event POST, for the order checks
  const uploads = []; // the bodies of the 'upload' event POSTs, as received
  app.use(express.json({ limit: '4mb' }));
  app.use(session({ store, secret: SECRET, name: 'connect.sid', resave: false, saveUninitialized: true }));
  app.get('/page', (req, res) => {
    req.session.visited = true;
    res.json({ ok: true });
  });
  app.post('/login/:id', (req, res) => {
    req.session.passport = { user: Number(req.params.id) };
    res.json({ ok: true });
  });
  // The session of a handshake's cookie, as express-session reads it.
  const sessionOf = (handshake) => new Promise((resolve) => {
    const cookie = (handshake?.headers?.cookie ?? '').split(/; */).find((c) => c.startsWith('connect.sid='));
    const value = cookie && decodeURIComponent(cookie.slice('connect.sid='.length));
    const sid = value?.startsWith('s:') ? signature.unsign(value.slice(2), SECRET) : false;
    if (!sid) return resolve(null);
    store.get(sid, (err, sess) => resolve(sess ? { sid, ...sess } : null));
  });

  // Carolina: BaseChannel puts the socket in session.{id} and, logged in, user.{id};
  // MyCustomChannel's checkin joins 'authenticated' when the socket has a user.
  app.post('/carolina/connect', async (req, res) => {
    const sess = await sessionOf(req.body.handshake);
    const userId = sess?.passport?.user;
    res.json({ accept: true, user: userId ? { id: userId } : null, data: { sessionId: sess?.sid ?? null }, rooms: userId ? [] : ['visitors'] });
  });
  app.post('/carolina/event', (req, res) => {
    const { event, args, user, data } = req.body;
    seen.push(event);
    if (event === 'session_id') {
      if (args[0] !== data.sessionId) return res.json({ ack: [{ ok: false }] });
      return res.json({ join: [`session.${args[0]}`, ...(user ? [`user.${user.id}`] : [])] });
    }
    if (event === 'checkin') return res.json(user ? { join: ['authenticated'], emit: [{ event: 'checked-in', args: [user.id] }] } : {});
    if (event === 'slow') return setTimeout(() => res.json({ ack: [`slow ${args[0]}`] }), 300);
    if (event === 'fast') return res.json({ ack: [`fast ${args[0]}`] });
    if (event === 'upload') {
      uploads.push(req.body);
      return res.json({ ack: ['stored'] });
    }
    if (event === 'garbage') return res.type('text').send('not json');
    if (event === 'fail') return res.status(500).json({ error: 'boom' });
    if (event === 'weird') return res.json({ emit: 'x', join: [1, null, {}, ''], leave: 5, ack: 'no', data: 3 });
    if (event === 'nul') return res.json({ join: ['evil\u0000cut', 'kept'], emit: [{ event: 'to\u0000cut', args: [] }, { event: 'to', args: ['whole'] }] });
    if (event === 'bye') return res.json({ emit: [{ event: 'bye', args: [] }], disconnect: true });
    if (event === 'shout') return res.json({ emit: [{ event: 'shouted', args: [args[0]], users: [user.id] }] });
    res.json({});
  });

  // VMT: the socket opens before login; SYNC_SOCKET ties it to the session's user, never to the
  // bare claim (the back end checks the claim against the session the handshake proves).
  app.post('/vmt/connect', async (req, res) => {
    const sess = await sessionOf(req.body.handshake);
    res.json({ accept: true, data: { sid: sess?.sid ?? null } });
  });
  app.post('/vmt/event', (req, res) => {
    const { event, args, data } = req.body;
    if (event !== 'SYNC_SOCKET') return res.json({});
    store.get(data.sid, (err, sess) => {
      const userId = sess?.passport?.user;
      if (!userId || userId !== args[0]) return res.json({ ack: [null, { message: 'not logged in as this user' }] });
      res.json({ join: [`user:${userId}`], ack: [{ ok: true, userId }, null] });
    });
  });

  // Notes' /home: only logged-in users (passport.socketio's authorize).
  app.post('/notes/connect', async (req, res) => {
    const sess = await sessionOf(req.body.handshake);
    const userId = sess?.passport?.user;
    res.json(userId ? { accept: true, user: { id: userId } } : { accept: false, message: 'Not logged in' });
  });

  const web = app.listen(0, '127.0.0.1');
  await once(web, 'listening');
  const base = `http://127.0.0.1:${web.address().port}`;
  return {
    base,
    seen,
    uploads,
    async visit() {
      const res = await fetch(`${base}/page`);
      return res.headers.get('set-cookie').split(';')[0];
    },
    async login(cookie, id) {
      await fetch(`${base}/login/${id}`, { method: 'POST', headers: { Cookie: cookie } });
    },
    async close() {
      web.closeAllConnections?.();
      await new Promise((r) => web.close(r));
    },
  };
}

describe('proxy driver: the channel logic in an Express back end', () => {
  let backEnd;
  let daemon;
  const cleanups = [];
  let ids = 500;
  before(async () => {
    requireBin();
    backEnd = await startBackEnd();
    const dir = tempDir('proxy');
    const proxy = (name, extra = {}) => ({
      driver: 'proxy', auth: 'none', options: { connectUrl: `${backEnd.base}/${name}/connect`, eventUrl: `${backEnd.base}/${name}/event`, timeoutMs: 1000, ...extra },
    });
    daemon = await startDaemon(dir, baseConfig(dir, {
      limits: { maxQueuedEvents: 3 },
      channels: {
        '/': proxy('carolina'),
        '/vmt': proxy('vmt'),
        '/home': { driver: 'proxy', auth: 'none', options: { connectUrl: `${backEnd.base}/notes/connect` } },
        '/down': { driver: 'proxy', auth: 'none', options: { eventUrl: 'http://127.0.0.1:9/event', timeoutMs: 500 } },
      },
    }));
  });
  after(async () => {
    for (const cleanup of cleanups) cleanup();
    try {
      await daemon?.stopChecked();
    } finally {
      await backEnd?.close();
    }
  });

  /** A page running Carolina's frontend: the seed's configureChannel with checkin. */
  async function carolinaPage(cookie) {
    const WebSocketsSvc = makeWebSocketsSvc(daemon.url(''), { forceNew: true, extraHeaders: { Cookie: cookie } }); // a browser each
    cleanups.push(() => WebSocketsSvc.close());
    const got = [];
    // connect channel and configure socket connection (seed 004, "Frontend")
    WebSocketsSvc.configureChannel('/', (socket) => {
      socket.on('connect', () => {
        got.push(['connect']);
      });
      socket.on('some-event', (data) => {
        // data from the server
        got.push(['some-event', data]);
      });
      socket.on('checked-in', (id) => got.push(['checked-in', id]));

      // more events

      // send initial checkin
      socket.emit('checkin');
    });
    const socket = WebSocketsSvc.connect('/');
    await until(() => got.length > 0, 'the connection');
    return { socket, got };
  }

  it('Carolina\'s MyCustomChannel: checkin joins "authenticated" for a logged-in user only', async () => {
    const userId = ++ids;
    const userCookie = await backEnd.visit();
    await backEnd.login(userCookie, userId);
    const user = await carolinaPage(userCookie);
    const visitor = await carolinaPage(await backEnd.visit());
    await until(() => user.got.some(([e]) => e === 'checked-in'), 'checked-in');
    await settled(user.socket); // session_id answered too
    await daemon.apiOk('POST', '/emit', { event: 'some-event', args: ['for members'], rooms: ['authenticated'] });
    await daemon.apiOk('POST', `/users/${userId}/emit`, { event: 'some-event', args: ['emitToUser'] });
    await until(() => user.got.filter(([e]) => e === 'some-event').length === 2, 'the member events');
    assert.deepEqual(user.got.filter(([e]) => e === 'some-event'), [['some-event', 'for members'], ['some-event', 'emitToUser']]);
    assert.deepEqual(user.got.find(([e]) => e === 'checked-in'), ['checked-in', userId]);
    // The connect answer's rooms: visitors were put in 'visitors'. The API's emits reach a socket
    // in order, so once this one has arrived, a member event sent before it would have too.
    await daemon.apiOk('POST', '/emit', { event: 'some-event', args: ['for visitors'], rooms: ['visitors'] });
    await until(() => visitor.got.length >= 2, 'the visitors event');
    assert.deepEqual(visitor.got, [['connect'], ['some-event', 'for visitors']], 'the visitor is in no member room');
    assert.equal(user.got.filter(([e]) => e === 'some-event').length, 2, 'the member is not a visitor');
  });

  it('VMT through the proxy: SYNC_SOCKET binds only the session\'s user; notifications then arrive', async () => {
    const userId = ++ids;
    const cookie = await backEnd.visit();
    const socket = connectOnPageLoad(daemon.url('/vmt'), { forceNew: true, extraHeaders: { Cookie: cookie } }); // a browser of its own
    cleanups.push(() => socket.disconnect());
    await once(socket, 'connect');
    const got = [];
    assert.deepEqual(await syncSocket(socket, { _id: userId }, (n) => got.push(n)), [null, { message: 'not logged in as this user' }]);
    await backEnd.login(cookie, userId);
    assert.deepEqual(await syncSocket(socket, { _id: userId }, () => {}), [{ ok: true, userId }, null]);
    await daemon.apiOk('POST', `/users/${userId}/emit`, { namespace: '/vmt', event: 'NEW_NOTIFICATION', args: [{ notification: { notificationType: 'grantedAccess' } }] });
    await until(() => got.length >= 1, 'the notification');
    assert.equal(got[0].notification.notificationType, 'grantedAccess');
  });

  it('Notes\' /home through the connect proxy: a logged-in session connects and gets notetitles; anonymous is refused', async () => {
    const cookie = await backEnd.visit();
    const refused = io(daemon.url('/home'), { reconnection: false, extraHeaders: { Cookie: cookie } });
    cleanups.push(() => refused.disconnect());
    const [err] = await once(refused, 'connect_error');
    assert.equal(err.message, 'Authentication error: Not logged in');
    await backEnd.login(cookie, ++ids);
    const socket = io(daemon.url('/home'), { reconnection: false, extraHeaders: { Cookie: cookie } });
    cleanups.push(() => socket.disconnect());
    await once(socket, 'connect');
    const titles = once(socket, 'notetitles');
    await daemon.apiOk('POST', '/emit', { namespace: '/home', event: 'notetitles', args: [{ notelist: [{ key: 'n1', title: 'One' }] }] });
    assert.deepEqual(await titles, [{ notelist: [{ key: 'n1', title: 'One' }] }]);
  });

  it('one socket\'s events reach the back end and answer in arrival order, however slow the first', async () => {
    const { socket } = await carolinaPage(await backEnd.visit());
    await settled(socket); // checkin and session_id answered
    const acks = [];
    socket.emit('slow', 1, (a) => acks.push(a));
    socket.emit('fast', 2, (a) => acks.push(a));
    socket.emit('fast', 3, (a) => acks.push(a));
    await until(() => acks.length === 3, 'three acks');
    assert.deepEqual(acks, ['slow 1', 'fast 2', 'fast 3']);
  });

  it('at most limits.maxQueuedEvents wait behind a slow one: the rest are refused rate_limited, in order', async () => {
    const { socket } = await carolinaPage(await backEnd.visit());
    await settled(socket); // checkin and session_id answered
    const acks = [];
    socket.emit('slow', 0, (a) => acks.push(a));
    for (let i = 1; i <= 5; i++) socket.emit('fast', i, (a) => acks.push(a));
    await until(() => acks.length === 6, 'six answers');
    const refused = { ok: false, error: { code: 'rate_limited', message: 'Too many events waiting for earlier ones' } };
    assert.deepEqual(acks, [refused, refused, 'slow 0', 'fast 1', 'fast 2', 'fast 3']);
  });

  it('an answer of the wrong shapes changes nothing and acknowledges {ok: true}', async () => {
    const { socket } = await carolinaPage(await backEnd.visit());
    const ack = await new Promise((resolve) => socket.emit('weird', (a) => resolve(a)));
    assert.deepEqual(ack, { ok: true });
    assert.equal(socket.connected, true);
  });

  it('an answer with a NUL in a string is refused whole (unavailable): nothing of it is applied, no name cut at the NUL', async () => {
    const { socket, got } = await carolinaPage(await backEnd.visit());
    const to = [];
    socket.on('to', (...args) => to.push(args));
    const ack = await new Promise((resolve) => socket.emit('nul', (a) => resolve(a)));
    assert.deepEqual(ack, { ok: false, error: { code: 'unavailable', message: 'The back end did not answer' } });
    // Neither 'evil' (the cut name) nor 'kept' was joined; the marker to the socket's own room
    // comes after anything sent before it.
    await daemon.apiOk('POST', '/emit', { event: 'some-event', args: ['evil'], rooms: ['evil'] });
    await daemon.apiOk('POST', '/emit', { event: 'some-event', args: ['kept'], rooms: ['kept'] });
    await daemon.apiOk('POST', '/emit', { event: 'some-event', args: ['marker'], rooms: [socket.id] });
    await until(() => got.some(([e, a]) => e === 'some-event' && a === 'marker'), 'the marker');
    assert.deepEqual(got.filter(([e]) => e === 'some-event'), [['some-event', 'marker']]);
    assert.deepEqual(to, []);
  });

  it('back-end failures: an ack error and a log line, the socket stays; emit to users, disconnect', async () => {
    const userId = ++ids;
    const cookie = await backEnd.visit();
    await backEnd.login(cookie, userId);
    const { socket, got } = await carolinaPage(cookie);
    const ask = (event) => new Promise((resolve) => socket.emit(event, 'x', (a) => resolve(a)));
    const unavailable = { ok: false, error: { code: 'unavailable', message: 'The back end did not answer' } };
    assert.deepEqual(await ask('garbage'), unavailable);
    assert.deepEqual(await ask('fail'), unavailable);
    assert.equal(socket.connected, true);
    assert.deepEqual(await ask('fast'), 'fast x', 'the next event still goes through');
    assert.match(daemon.stderr, /proxy http:\/\/127\.0\.0\.1:\d+\/carolina\/event: event fail of socket \S+: back end failed: not a JSON object \(status 500\)/);
    socket.emit('shout', 'hey');
    await until(() => got.some(([e]) => e === 'checked-in'), 'checkin');
    const shouted = new Promise((resolve) => socket.once('shouted', resolve));
    assert.equal(await shouted, 'hey');
    const disconnected = once(socket, 'disconnect');
    socket.emit('bye');
    assert.equal((await disconnected)[0], 'io server disconnect');
  });

  it('a back end that cannot be reached: ack error without an ack callback comes as proxy:error', async () => {
    const socket = io(daemon.url('/down'), { reconnection: false });
    cleanups.push(() => socket.disconnect());
    await once(socket, 'connect');
    const error = once(socket, 'proxy:error');
    socket.emit('anything', 1);
    assert.deepEqual(await error, [{ code: 'unavailable', message: 'The back end did not answer' }]);
    assert.equal(socket.connected, true);
  });

  it('binary attachments reach the back end as base64 in attachments, the placeholders left in args', async () => {
    const socket = io(daemon.url('/'), { reconnection: false, forceNew: true });
    cleanups.push(() => socket.disconnect());
    await once(socket, 'connect');
    const first = Buffer.from([0, 1, 2, 253, 254, 255]);
    const second = Buffer.from('sioc'.repeat(1000));
    const from = backEnd.uploads.length;
    const ack = await socket.timeout(WAIT_MS).emitWithAck('upload', 'note.bin', first, { nested: [second], n: 1 });
    assert.deepEqual(ack, 'stored');
    assert.equal(backEnd.uploads.length, from + 1);
    const body = backEnd.uploads[from];
    assert.deepEqual(body.args, ['note.bin', { _placeholder: true, num: 0 }, { nested: [{ _placeholder: true, num: 1 }], n: 1 }]);
    assert.deepEqual(body.attachments, [first.toString('base64'), second.toString('base64')]);
    assert.deepEqual(Buffer.from(body.attachments[1], 'base64'), second);
    // An event without binary parts has no attachments member (the body stays as before).
    await socket.timeout(WAIT_MS).emitWithAck('upload', 'plain');
    assert.deepEqual(backEnd.uploads[from + 1].args, ['plain']);
    assert.equal('attachments' in backEnd.uploads[from + 1], false);
  });

  it('attachments over 1 MiB in all are not forwarded: too_long through the ack, the back end never asked', async () => {
    const dir = tempDir('proxy-big');
    const big = await startDaemon(dir, baseConfig(dir, {
      limits: { maxPayload: 3000000 },
      channels: { '/': { driver: 'proxy', auth: 'none', options: { eventUrl: `${backEnd.base}/carolina/event` } } },
    }));
    try {
      const socket = io(big.url('/'), { reconnection: false, forceNew: true, transports: ['websocket'] });
      try {
        await once(socket, 'connect');
        const from = backEnd.uploads.length;
        const half = Buffer.alloc(512 * 1024, 7);
        const refused = await socket.timeout(WAIT_MS).emitWithAck('upload', half, half, Buffer.from([1]));
        assert.deepEqual(refused, { ok: false, error: { code: 'too_long', message: 'Binary attachments over 1 MiB in all' } });
        // Exactly 1 MiB passes.
        const ok = await socket.timeout(WAIT_MS).emitWithAck('upload', half, half);
        assert.equal(ok, 'stored');
        assert.equal(backEnd.uploads.length, from + 1);
        assert.deepEqual(backEnd.uploads[from].attachments.map((a) => Buffer.from(a, 'base64').length), [half.length, half.length]);
      } finally {
        socket.disconnect();
      }
    } finally {
      await big.stopChecked();
    }
  });
});
