// The HTTP API for back ends (docs/http-api.md) against a running daemon:
// health, emit to a namespace / rooms / except, emit to a user, rooms
// (room:created, seed 003), members, presence, notifications, and the bad
// requests: no key, wrong key, bad JSON, unknown fields and routes, wrong
// methods, oversized bodies — each with its status and error body, and
// nothing stored or sent.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  requireBin, tempDir, baseConfig, startDaemon, makeUser, connectAs, presenceOf,
  createRoom, unique, sleep, API_KEY, ISO_RE,
} from '../lib/daemon.js';
import { ask } from '../lib/sio.js';
import { request } from '../lib/http.js';

const QUIET_MS = 250;
const MAX_BODY = 2048;

const apiError = (code, message, extra = {}) => ({ error: { code, message, ...extra } });

describe('HTTP API', () => {
  let daemon;
  before(async () => {
    requireBin();
    const dir = tempDir('api');
    daemon = await startDaemon(dir, baseConfig(dir, {
      api: { listen: { host: '127.0.0.1', port: 0 }, key: API_KEY, maxBody: MAX_BODY },
      channels: { '/': { driver: 'chat', auth: 'jwt' }, '/off': { driver: 'chat', enabled: false } },
    }));
  });
  after(async () => {
    await daemon?.stopChecked();
  });

  describe('health and keys', () => {
    it('GET /health needs no key: {status:"ok", uptimeSeconds, channels:[{name, driver, sockets}]}', async (t) => {
      const c = daemon.clients(t);
      await connectAs(c, makeUser('Ann'));
      const res = await daemon.api('GET', '/health', undefined, { key: null });
      assert.equal(res.status, 200);
      assert.match(res.header('content-type'), /^application\/json/);
      assert.equal(res.json.status, 'ok');
      assert.ok(Number.isInteger(res.json.uptimeSeconds) && res.json.uptimeSeconds >= 0);
      assert.equal(res.json.channels.length, 1, 'the disabled channel is not served');
      const [root] = res.json.channels;
      assert.equal(root.name, '/');
      assert.equal(root.driver, 'chat');
      assert.ok(root.sockets >= 1, `sockets ${root.sockets}`);
    });

    it('no key → 401 missing_api_key; a wrong key → 401 invalid_api_key; nothing is done', async () => {
      const id = unique('room-id');
      const body = { name: 'Nope', id };
      const missing = await daemon.api('POST', '/rooms', body, { key: null });
      assert.equal(missing.status, 401);
      assert.deepEqual(missing.json, apiError('missing_api_key', 'send the API key as "Authorization: Bearer <key>" or "X-API-Key: <key>"'));
      for (const key of [`${API_KEY}x`, API_KEY.slice(0, -1), 'x'.repeat(API_KEY.length), '']) {
        const wrong = await daemon.api('POST', '/rooms', body, { key });
        assert.equal(wrong.status, 401, `key ${JSON.stringify(key)}`);
        assert.deepEqual(wrong.json, key === '' ? missing.json : apiError('invalid_api_key', 'the API key is not valid'));
      }
      const wrongHeader = await daemon.api('POST', '/rooms', body, { key: null, headers: [['X-API-Key', 'wrong-key-wrong-key']] });
      assert.deepEqual([wrongHeader.status, wrongHeader.json], [401, apiError('invalid_api_key', 'the API key is not valid')]);
      // Nothing was created.
      const get = await daemon.api('GET', `/rooms/${id}`);
      assert.equal(get.status, 404);
      assert.equal(get.json.error.code, 'room_not_found');
    });

    it('the key is also taken from X-API-Key', async () => {
      const res = await daemon.api('GET', '/presence/users/someone', undefined, { key: null, headers: [['X-API-Key', API_KEY]] });
      assert.equal(res.status, 200);
    });

    it('unknown routes: 401 without a key (no probing), 404 with it; a known path with another method: 405', async () => {
      assert.equal((await daemon.api('GET', '/nope', undefined, { key: null })).status, 401);
      const notFound = await daemon.api('GET', '/nope');
      assert.deepEqual([notFound.status, notFound.json], [404, apiError('not_found', 'no route GET /nope')]);
      const wrongMethod = await daemon.api('GET', '/emit');
      assert.equal(wrongMethod.status, 405);
      assert.deepEqual(wrongMethod.json, apiError('method_not_allowed', 'GET is not allowed on /emit (allowed: POST)', { allow: 'POST' }));
    });
  });

  describe('bad bodies', () => {
    it('bad JSON → 400 invalid_json; nothing stored', async () => {
      const id = unique('room-id');
      const res = await daemon.api('POST', '/rooms', `{"name":"Broken","id":"${id}",}`);
      assert.equal(res.status, 400);
      assert.equal(res.json.error.code, 'invalid_json');
      assert.match(res.json.error.message, /^the body is not valid JSON: .+ \(line 1, column \d+\)$/);
      assert.equal((await daemon.api('GET', `/rooms/${id}`)).status, 404);
    });

    it('an empty body, or JSON that is not an object → 400 invalid_body', async () => {
      const empty = await daemon.api('POST', '/emit', '');
      assert.deepEqual([empty.status, empty.json], [400, apiError('invalid_body', 'expected a JSON object in the request body')]);
      const array = await daemon.api('POST', '/emit', '["event"]');
      assert.deepEqual([array.status, array.json], [400, apiError('invalid_body', 'the body must be a JSON object')]);
    });

    it('an unknown field (a typo such as "room") → 400 invalid_field with the field; nothing sent', async (t) => {
      const c = daemon.clients(t);
      const socket = await connectAs(c, makeUser('Ann'));
      const res = await daemon.api('POST', '/emit', { event: 'x', args: [1], room: 'lobby' });
      assert.equal(res.status, 400);
      assert.deepEqual(res.json, apiError('invalid_field', 'unknown field "room" (expected namespace, event, args, rooms, except, volatile)', { field: 'room' }));
      const missing = await daemon.api('POST', '/emit', { args: [] });
      assert.deepEqual([missing.status, missing.json], [400, apiError('invalid_field', 'event: expected a non-empty string of at most 256 bytes (missing)', { field: 'event' })]);
      await socket.inbox.none('x', QUIET_MS);
    });

    it(`a body over api.maxBody (${MAX_BODY} bytes) → 413; nothing stored`, async () => {
      const id = unique('room-id');
      const body = JSON.stringify({ name: 'x'.repeat(MAX_BODY), id });
      const res = await daemon.api('POST', '/rooms', body);
      // docs/http-api.md: answered by the HTTP layer, text/plain, connection closed.
      assert.deepEqual([res.status, res.text], [413, 'Payload Too Large']);
      assert.equal((await daemon.api('GET', `/rooms/${id}`)).status, 404);
      // The API still answers afterwards.
      assert.equal((await daemon.api('GET', '/health')).status, 200);
    });
  });

  it('status lines carry the standard reason phrases (201 Created, 401 Unauthorized, 409 Conflict)', async () => {
    const auth = [['Authorization', `Bearer ${API_KEY}`]];
    const id = unique('room-id');
    const created = await request(daemon.apiPort, { method: 'POST', path: '/rooms', headers: auth, body: JSON.stringify({ id, name: 'Reason' }) });
    const conflict = await request(daemon.apiPort, { method: 'POST', path: '/rooms', headers: auth, body: JSON.stringify({ id, name: 'Again' }) });
    const unauthorized = await request(daemon.apiPort, { method: 'GET', path: '/rooms/x' });
    assert.deepEqual([created.status, created.statusText], [201, 'Created']);
    assert.deepEqual([conflict.status, conflict.statusText], [409, 'Conflict']);
    assert.deepEqual([unauthorized.status, unauthorized.statusText], [401, 'Unauthorized']);
  });

  describe('emit', () => {
    it('POST /emit {event, args} reaches every socket of the namespace: {ok:true}', async (t) => {
      const c = daemon.clients(t);
      const [a, b] = [await connectAs(c, makeUser('Ann')), await connectAs(c, makeUser('Bob'), { mode: 'polling' })];
      const event = unique('announcement');
      const res = await daemon.api('POST', '/emit', { event, args: [{ text: 'maintenance at 5' }, 2] });
      assert.deepEqual([res.status, res.json], [200, { ok: true }]);
      assert.deepEqual(await a.inbox.take(event), [{ text: 'maintenance at 5' }, 2]);
      assert.deepEqual(await b.inbox.take(event), [{ text: 'maintenance at 5' }, 2]);
    });

    it('rooms and except narrow it (room:<id> rooms of the chat driver)', async (t) => {
      const c = daemon.clients(t);
      const [ann, bob, carol] = [makeUser('Ann'), makeUser('Bob'), makeUser('Carol')];
      const room = await createRoom(daemon);
      const annSocket = await connectAs(c, ann);
      const bobSocket = await connectAs(c, bob);
      const carolSocket = await connectAs(c, carol);
      await ask(annSocket, 'room:join', room.id);
      await ask(bobSocket, 'room:join', room.id);
      const event = unique('room-news');
      assert.equal((await daemon.api('POST', '/emit', { namespace: '/', event, args: ['hi'], rooms: [`room:${room.id}`], except: `user:${bob.id}` })).status, 200);
      assert.deepEqual(await annSocket.inbox.take(event), ['hi']);
      await bobSocket.inbox.none(event, QUIET_MS);
      await carolSocket.inbox.none(event, 0);
    });

    it('a reserved event name → 400 reserved_event; an unknown or disabled namespace → 404 channel_not_found', async () => {
      const reserved = await daemon.api('POST', '/emit', { event: 'disconnect', args: [] });
      assert.equal(reserved.status, 400);
      assert.equal(reserved.json.error.code, 'reserved_event');
      for (const namespace of ['/nope', '/off']) {
        const res = await daemon.api('POST', '/emit', { namespace, event: 'x' });
        assert.equal(res.status, 404, namespace);
        assert.deepEqual(res.json, apiError('channel_not_found', `no enabled channel "${namespace}" (enabled: "/")`));
      }
    });

    it('POST /users/{id}/emit reaches every tab of that user and nobody else', async (t) => {
      const c = daemon.clients(t);
      const [ann, bob] = [makeUser('Ann'), makeUser('Bob')];
      const annTab1 = await connectAs(c, ann);
      const annTab2 = await connectAs(c, ann, { mode: 'polling' });
      const bobSocket = await connectAs(c, bob);
      const event = unique('personal');
      const res = await daemon.api('POST', `/users/${encodeURIComponent(ann.id)}/emit`, { event, args: [{ n: 1 }] });
      assert.deepEqual([res.status, res.json], [200, { ok: true }]);
      assert.deepEqual(await annTab1.inbox.take(event), [{ n: 1 }]);
      assert.deepEqual(await annTab2.inbox.take(event), [{ n: 1 }]);
      await bobSocket.inbox.none(event, QUIET_MS);
      // A user with no socket: still 200, nobody gets it.
      assert.equal((await daemon.api('POST', `/users/${unique('offline')}/emit`, { event, args: [] })).status, 200);
    });
  });

  describe('rooms, members, presence', () => {
    it('POST /rooms → 201 with the stored room; room:created (seed 003) to the channel with isPublic and createdBy', async (t) => {
      const c = daemon.clients(t);
      const [owner, bob] = [makeUser('Olga'), makeUser('Bob')];
      const ownerSocket = await connectAs(c, owner); // the owner is a known user: createdBy has the names
      const bobSocket = await connectAs(c, bob);
      const res = await daemon.api('POST', '/rooms', { name: 'Chemistry', ownerId: owner.id });
      assert.equal(res.status, 201, res.text);
      const room = res.json;
      assert.equal(typeof room.id, 'string');
      assert.match(room.createdAt, ISO_RE);
      assert.deepEqual(room, { id: room.id, name: 'Chemistry', isPrivate: false, ownerId: owner.id, createdAt: room.createdAt });
      const expected = { ...room, isPublic: true, createdBy: { id: owner.id, firstName: owner.firstName, lastName: owner.lastName } };
      assert.deepEqual(await bobSocket.inbox.take('room:created'), [expected]);
      assert.deepEqual(await ownerSocket.inbox.take('room:created'), [expected]);
      assert.deepEqual(await daemon.apiOk('GET', `/rooms/${room.id}`), room);
    });

    it('a private room is announced to its owner only; a room with a given id; a duplicate id is refused', async (t) => {
      const c = daemon.clients(t);
      const [owner, bob] = [makeUser('Olga'), makeUser('Bob')];
      const ownerSocket = await connectAs(c, owner);
      const bobSocket = await connectAs(c, bob);
      const id = unique('private-room');
      const room = await createRoom(daemon, { id, name: 'Staff', isPrivate: true, ownerId: owner.id });
      assert.equal(room.id, id);
      const [created] = await ownerSocket.inbox.take('room:created');
      assert.equal(created.id, id);
      assert.equal(created.isPublic, false);
      await bobSocket.inbox.none('room:created', QUIET_MS);
      const again = await daemon.api('POST', '/rooms', { id, name: 'Again' });
      assert.deepEqual([again.status, again.json], [409, apiError('conflict', 'room already exists')]);
      assert.equal((await daemon.apiOk('GET', `/rooms/${id}`)).name, 'Staff');
    });

    it('a room created with numeric ids reads them back as numbers: GET /rooms/{id}, its members', async () => {
      const id = 1e9 + Math.floor(Math.random() * 1e9); // unique in this daemon's store
      const [ownerId, userId] = [id + 1, id + 2];
      await daemon.apiOk('PUT', `/users/${ownerId}`, { firstName: 'Ona' });
      await daemon.apiOk('PUT', `/users/${userId}`, { firstName: 'Uli' });
      const room = await createRoom(daemon, { id, name: 'Numbers', ownerId });
      assert.deepEqual(room, { id, name: 'Numbers', isPrivate: false, ownerId, createdAt: room.createdAt });
      assert.deepEqual(await daemon.apiOk('GET', `/rooms/${id}`), room);
      const added = await daemon.apiOk('POST', `/rooms/${id}/members`, { userId });
      assert.deepEqual(added, { roomId: id, userId, joinedAt: added.joinedAt });
      // The path carries text; the answer (and room:userLeft) carry the ids as the store holds them.
      assert.deepEqual(await daemon.apiOk('DELETE', `/rooms/${id}/members/${userId}`), { roomId: id, userId, removed: true });
    });

    it('members of an unknown room: 404 room_not_found; removing a non-member: removed false', async () => {
      const missing = await daemon.api('POST', `/rooms/${unique('nope')}/members`, { userId: 'u1' });
      assert.equal(missing.status, 404);
      assert.equal(missing.json.error.code, 'room_not_found');
      const room = await createRoom(daemon);
      const userId = unique('u');
      assert.deepEqual(await daemon.apiOk('DELETE', `/rooms/${room.id}/members/${userId}`), { roomId: room.id, userId, removed: false });
      const added = await daemon.apiOk('POST', `/rooms/${room.id}/members`, { userId });
      assert.match(added.joinedAt, ISO_RE);
      assert.deepEqual(await daemon.apiOk('POST', `/rooms/${room.id}/members`, { userId }), added, 'idempotent');
      const badUser = await daemon.api('POST', `/rooms/${room.id}/members`, { userId: '' });
      assert.equal(badUser.status, 400);
      assert.equal(badUser.json.error.field, 'userId');
    });

    it('GET /presence/users/{id} and /presence/rooms/{id} follow the sockets', async (t) => {
      const c = daemon.clients(t);
      const ann = makeUser('Ann');
      assert.deepEqual(await presenceOf(daemon, ann.id), { userId: ann.id, status: 'offline', lastActivity: null });
      const room = await createRoom(daemon);
      const socket = await connectAs(c, ann);
      await ask(socket, 'room:join', room.id);
      const online = await presenceOf(daemon, ann.id);
      assert.equal(online.status, 'online');
      assert.match(online.lastActivity, ISO_RE);
      assert.deepEqual(await daemon.apiOk('GET', `/presence/rooms/${room.id}`), { roomId: room.id, online: [ann.id] });
      socket.disconnect();
      // The server sees the disconnection a moment later: ask until it has (bounded).
      const deadline = Date.now() + 3000;
      while ((await presenceOf(daemon, ann.id)).status !== 'offline' && Date.now() < deadline) await sleep(10);
      assert.equal((await presenceOf(daemon, ann.id)).status, 'offline');
      assert.deepEqual(await daemon.apiOk('GET', `/presence/rooms/${room.id}`), { roomId: room.id, online: [] });
    });

    it('GET /presence/rooms/{id}?namespace= with a %00 is refused, not cut to the name before it', async () => {
      const room = await createRoom(daemon);
      assert.equal((await daemon.api('GET', `/presence/rooms/${room.id}?namespace=%2F`)).status, 200);
      const cut = await daemon.api('GET', `/presence/rooms/${room.id}?namespace=%2F%00junk`);
      assert.equal(cut.status, 400, cut.text);
      assert.equal(cut.json.error.field, 'namespace');
    });

    it('POST /notifications → 201 {id, userId, type, payload, read:false, createdAt}', async () => {
      const userId = unique('u');
      const res = await daemon.api('POST', '/notifications', { userId, type: 'room:accessGranted', payload: { roomId: 'r1' } });
      assert.equal(res.status, 201, res.text);
      assert.deepEqual(res.json, { id: res.json.id, userId, type: 'room:accessGranted', payload: { roomId: 'r1' }, read: false, createdAt: res.json.createdAt });
      assert.match(res.json.createdAt, ISO_RE);
      const bad = await daemon.api('POST', '/notifications', { userId, type: 'x', payload: 'not an object' });
      assert.deepEqual([bad.status, bad.json], [400, apiError('invalid_field', 'payload: expected an object', { field: 'payload' })]);
    });
  });
});
