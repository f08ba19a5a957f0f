// Carolina's channels (seed 004) and the Notes /home feed (seed 001):
// - main driver: a `session_id` event joins session.{sessionId} and, for an
//   authenticated socket, user.{userId}; emitToUser (POST /users/{id}/emit)
//   reaches every socket of that user; a broadcast on a channel
//   (POST /emit) reaches that channel only; a channel turned off refuses
//   connections ("Invalid namespace") and the API does not serve it.
// - feed driver: /home receives `notetitles {notelist}` published by the back
//   end through POST /emit; clients cannot send anything there.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { requireBin, tempDir, baseConfig, startDaemon, makeUser, connectAs, unique } from '../lib/daemon.js';
import { ask, connectError } from '../lib/sio.js';
import { request } from '../lib/http.js';

const QUIET_MS = 250;
const err = (code, message) => ({ ok: false, error: { code, message } });

describe('main driver (Carolina) and feed driver (Notes /home)', () => {
  let daemon;
  before(async () => {
    requireBin();
    const dir = tempDir('main-feed');
    daemon = await startDaemon(dir, baseConfig(dir, {
      cors: { origins: ['http://localhost:3000'], credentials: true },
      channels: {
        '/': { driver: 'main', auth: 'jwt' },
        '/guest': { driver: 'main', auth: 'none' },
        '/home': { driver: 'feed', auth: 'none' },
        '/other': { driver: 'main', auth: 'jwt', enabled: false },
      },
    }));
  });
  after(async () => {
    await daemon?.stopChecked();
  });

  describe('session_id (BaseChannel._configure)', () => {
    it('joins session.{id} and user.{id}; ack {ok, rooms}; the back end reaches the session and the user', async (t) => {
      const c = daemon.clients(t);
      const ann = makeUser('Ann');
      const socket = await connectAs(c, ann);
      const sessionId = unique('sess');
      assert.deepEqual(await ask(socket, 'session_id', sessionId), { ok: true, rooms: [`session.${sessionId}`, `user.${ann.id}`] });
      // Carolina's WebSocketsSvc.channels['/'].emit to a session's room:
      const event = unique('session-event');
      assert.deepEqual(await daemon.apiOk('POST', '/emit', { namespace: '/', event, args: [{ hello: 'session' }], rooms: [`session.${sessionId}`] }), { ok: true });
      assert.deepEqual(await socket.inbox.take(event), [{ hello: 'session' }]);
    });

    it('emitToUser (POST /users/{id}/emit) reaches every socket of the user that announced its session, nobody else', async (t) => {
      const c = daemon.clients(t);
      const [ann, bob] = [makeUser('Ann'), makeUser('Bob')];
      const tab1 = await connectAs(c, ann);
      const tab2 = await connectAs(c, ann, { mode: 'polling' });
      const bobSocket = await connectAs(c, bob);
      tab1.emit('session_id', unique('sess')); // as the frontend service does: no ack
      tab2.emit('session_id', { sessionId: unique('sess') });
      await ask(bobSocket, 'session_id', unique('sess'));
      const ack = await ask(tab1, 'session_id', unique('sess-again')); // also orders after the first
      assert.equal(ack.ok, true);
      await ask(tab2, 'session_id', { sessionId: unique('sess-again') });
      const event = unique('form-approved');
      const res = await daemon.api('POST', `/users/${encodeURIComponent(ann.id)}/emit`, { namespace: '/', event, args: [{ formId: 7 }] });
      assert.deepEqual([res.status, res.json], [200, { ok: true }]);
      assert.deepEqual(await tab1.inbox.take(event), [{ formId: 7 }]);
      assert.deepEqual(await tab2.inbox.take(event), [{ formId: 7 }]);
      await bobSocket.inbox.none(event, QUIET_MS);
      await tab1.inbox.none(event, 0);
    });

    it('a later session_id moves the socket to the new session room', async (t) => {
      const c = daemon.clients(t);
      const socket = await connectAs(c, makeUser('Ann'));
      const [before, after] = [unique('sess'), unique('sess')];
      await ask(socket, 'session_id', before);
      await ask(socket, 'session_id', after);
      const event = unique('ev');
      await daemon.apiOk('POST', '/emit', { event, args: ['old'], rooms: [`session.${before}`] });
      await daemon.apiOk('POST', '/emit', { event, args: ['new'], rooms: [`session.${after}`] });
      assert.deepEqual(await socket.inbox.take(event), ['new']);
      await socket.inbox.none(event, QUIET_MS);
    });

    it('an anonymous socket (auth "none") joins its session room only', async (t) => {
      const c = daemon.clients(t);
      const socket = await c.connect('websocket', '/guest');
      const sessionId = unique('sess');
      assert.deepEqual(await ask(socket, 'session_id', sessionId), { ok: true, rooms: [`session.${sessionId}`] });
    });

    it('a session_id that is not a string is refused (ack, or session:error)', async (t) => {
      const c = daemon.clients(t);
      const socket = await connectAs(c, makeUser('Ann'));
      const invalid = err('invalid_payload', 'sessionId must be a string of 1 to 256 bytes');
      for (const payload of [42, '', {}, null, 'x'.repeat(257)]) {
        assert.deepEqual(await ask(socket, 'session_id', payload), invalid, JSON.stringify(payload).slice(0, 20));
      }
      socket.emit('session_id', '');
      assert.deepEqual(await socket.inbox.take('session:error'), [invalid.error]);
    });

    it('a broadcast on a channel (POST /emit with its namespace) reaches that channel only', async (t) => {
      const c = daemon.clients(t);
      const main = await connectAs(c, makeUser('Ann'));
      const guest = await c.connect('websocket', '/guest');
      const home = await c.connect('websocket', '/home');
      const event = unique('some-event');
      await daemon.apiOk('POST', '/emit', { namespace: '/guest', event, args: [{ data: 1 }] });
      assert.deepEqual(await guest.inbox.take(event), [{ data: 1 }]);
      await main.inbox.none(event, QUIET_MS);
      await home.inbox.none(event, 0);
    });
  });

  describe('CORS from the config (browsers sending the session cookie, seeds 001 and 002)', () => {
    it('an allowed origin gets Access-Control-Allow-Origin and -Credentials; another origin gets neither', async () => {
      const path = '/socket.io/?EIO=4&transport=polling';
      const allowed = await request(daemon.port, { method: 'GET', path, headers: [['Origin', 'http://localhost:3000']] });
      assert.equal(allowed.status, 200);
      assert.equal(allowed.header('access-control-allow-origin'), 'http://localhost:3000');
      assert.equal(allowed.header('access-control-allow-credentials'), 'true');
      const preflight = await request(daemon.port, { method: 'OPTIONS', path, headers: [['Origin', 'http://localhost:3000'], ['Access-Control-Request-Method', 'POST']] });
      assert.equal(preflight.status, 204);
      assert.equal(preflight.header('access-control-allow-origin'), 'http://localhost:3000');
      const other = await request(daemon.port, { method: 'GET', path, headers: [['Origin', 'http://evil.example']] });
      assert.equal(other.header('access-control-allow-origin'), undefined);
      assert.equal(other.header('access-control-allow-credentials'), undefined);
    });
  });

  describe('channels turned off', () => {
    it('a disabled channel refuses connections with "Invalid namespace"; an unknown one too', async (t) => {
      const c = daemon.clients(t);
      for (const nsp of ['/other', '/nope']) {
        const socket = c.socket(c.manager('websocket'), nsp, { auth: { token: 'irrelevant' } });
        const error = await connectError(socket);
        assert.equal(error.message, 'Invalid namespace', nsp);
        assert.equal(socket.connected, false);
      }
    });

    it('the API does not serve a disabled channel', async () => {
      const res = await daemon.api('POST', '/emit', { namespace: '/other', event: 'x' });
      assert.equal(res.status, 404);
      assert.equal(res.json.error.code, 'channel_not_found');
      const health = await daemon.apiOk('GET', '/health');
      assert.deepEqual(health.channels.map((ch) => ch.name).sort(), ['/', '/guest', '/home']);
    });
  });

  describe('Notes /home feed', () => {
    it('the back end publishes notetitles {notelist} through POST /emit; every /home client gets it, other channels do not', async (t) => {
      const c = daemon.clients(t);
      const home1 = await c.connect('websocket', '/home');
      const home2 = await c.connect('polling', '/home');
      const main = await connectAs(c, makeUser('Ann'));
      const notelist = [{ key: 'n1', title: 'Groceries' }, { key: 'n2', title: 'Ideas ✓' }];
      // emitNoteTitles: io.of('/home').emit('notetitles', { notelist })
      const res = await daemon.api('POST', '/emit', { namespace: '/home', event: 'notetitles', args: [{ notelist }] });
      assert.deepEqual([res.status, res.json], [200, { ok: true }]);
      assert.deepEqual(await home1.inbox.take('notetitles'), [{ notelist }]);
      assert.deepEqual(await home2.inbox.take('notetitles'), [{ notelist }]);
      await main.inbox.none('notetitles', QUIET_MS);
      // Created, updated, destroyed: each publication arrives, in order.
      for (const n of [1, 2, 3]) await daemon.apiOk('POST', '/emit', { namespace: '/home', event: 'notetitles', args: [{ notelist: notelist.slice(0, n % 3) }] });
      assert.deepEqual(await home1.inbox.takeN('notetitles', 3), [[{ notelist: notelist.slice(0, 1) }], [{ notelist }], [{ notelist: [] }]]);
    });

    it('the feed is receive-only: a client event is refused (feed:error, or the ack)', async (t) => {
      const c = daemon.clients(t);
      const home = await c.connect('websocket', '/home');
      const other = await c.connect('websocket', '/home');
      assert.deepEqual(await ask(home, 'notetitles', { notelist: [] }), err('receive_only', 'This channel is receive-only'));
      home.emit('anything', 1);
      assert.deepEqual(await home.inbox.take('feed:error'), [{ code: 'receive_only', message: 'This channel is receive-only' }]);
      await other.inbox.none('notetitles', QUIET_MS);
    });
  });
});
