// The notifications driver (VMT, seed 000) end to end: SYNC_SOCKET bound to
// the authenticated user (VMT's (res, err) ack), notifications created
// through the HTTP API pushed at once to an online user as NEW_NOTIFICATION
// (what VMT's SocketProvider listens for), unread ones delivered when the
// user comes back and listed, marked read, the room access request / grant /
// deny flow (the owner is notified of a request, the requester of the
// answer, a grant adds the member: the chat channel lets them in), and
// notifications surviving a daemon restart.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  requireBin, tempDir, baseConfig, startDaemon, makeUser, publicUser, connectAs, createRoom, unique, ISO_RE,
} from '../lib/daemon.js';
import { ask, askAll } from '../lib/sio.js';

const QUIET_MS = 250;
const EVENT = 'NEW_NOTIFICATION';
const err = (code, message) => ({ ok: false, error: { code, message } });

/** A stored notification as VMT's client sees it (the driver's view). */
function view(stored) {
  const top = { ...stored.payload };
  delete top.room; // VMT's room and course stay in payload (and at the event's top level)
  delete top.course;
  return { ...top, ...stored, _id: stored.id, notificationType: stored.type, toUser: stored.userId, isTrashed: false };
}

describe('notifications driver (VMT)', () => {
  let dir;
  let config;
  let daemon;
  before(async () => {
    requireBin();
    dir = tempDir('vmt');
    config = baseConfig(dir, {
      channels: { '/': { driver: 'notifications', auth: 'jwt', options: { replayUnread: true } }, '/chat': { driver: 'chat', auth: 'jwt' } },
    });
    daemon = await startDaemon(dir, config);
  });
  after(async () => {
    await daemon?.stopChecked();
  });

  /** POST /notifications → the stored notification. */
  const notify = (userId, type, payload) => daemon.apiOk('POST', '/notifications', { userId, type, payload }, 201);

  describe('SYNC_SOCKET', () => {
    it('VMT\'s SocketProvider call: emit("SYNC_SOCKET", {socketId, userId}, (res, err)) → res {ok, userId, socketId}, err null', async (t) => {
      const c = daemon.clients(t);
      const ann = makeUser('Ann');
      const socket = await connectAs(c, ann);
      assert.deepEqual(await askAll(socket, 'SYNC_SOCKET', { socketId: socket.id, userId: ann.id }), [{ ok: true, userId: ann.id, socketId: socket.id }, null]);
      // The id alone, with VMT's location argument, works too.
      const [res, error] = await askAll(socket, 'SYNC_SOCKET', ann.id, { pathname: '/myVMT/rooms' });
      assert.equal(error, null);
      assert.equal(res.userId, ann.id);
    });

    it('SYNC_SOCKET naming another user is refused, and does not bind the socket to that user', async (t) => {
      const c = daemon.clients(t);
      const [ann, bob] = [makeUser('Ann'), makeUser('Bob')];
      const annSocket = await connectAs(c, ann);
      const refusal = { code: 'forbidden', message: 'SYNC_SOCKET names another user than the authenticated one' };
      assert.deepEqual(await askAll(annSocket, 'SYNC_SOCKET', { socketId: annSocket.id, userId: bob.id }), [null, refusal]);
      annSocket.emit('SYNC_SOCKET', { userId: bob.id });
      assert.deepEqual(await annSocket.inbox.take('notifications:error'), [refusal]);
      // Bob's notification does not reach Ann's socket.
      await notify(bob.id, 'requestAccess', { roomId: 'r' });
      await annSocket.inbox.none(EVENT, QUIET_MS);
    });
  });

  describe('delivery', () => {
    it('a notification created through the API is pushed at once to every socket of an online user, as NEW_NOTIFICATION {notification, room}', async (t) => {
      const c = daemon.clients(t);
      const [ann, bob] = [makeUser('Ann'), makeUser('Bob')];
      const annTab1 = await connectAs(c, ann);
      const annTab2 = await connectAs(c, ann, { mode: 'polling' });
      const bobSocket = await connectAs(c, bob);
      await askAll(annTab1, 'SYNC_SOCKET', { socketId: annTab1.id, userId: ann.id });
      const payload = { resourceType: 'room', resourceId: 'r42', room: { _id: 'r42', name: 'Geometry' } };
      const sentAt = Date.now();
      const stored = await notify(ann.id, 'grantedAccess', payload);
      assert.deepEqual(stored, { id: stored.id, userId: ann.id, type: 'grantedAccess', payload, read: false, createdAt: stored.createdAt });
      assert.match(stored.createdAt, ISO_RE);
      const expected = { notification: view(stored), room: payload.room };
      assert.deepEqual(await annTab1.inbox.take(EVENT, 1000), [expected]);
      assert.deepEqual(await annTab2.inbox.take(EVENT, 1000), [expected]);
      assert.ok(Date.now() - sentAt < 1000, 'pushed at once');
      await bobSocket.inbox.none(EVENT, QUIET_MS);
      await annTab1.inbox.none(EVENT, 0);
    });

    it('an offline user gets the unread ones, oldest first, when coming back; notifications:list lists them newest first', async (t) => {
      const c = daemon.clients(t);
      const dora = makeUser('Dora');
      const first = await notify(dora.id, 'requestAccess', { n: 1 });
      const second = await notify(dora.id, 'grantedAccess', { n: 2 });
      const socket = await connectAs(c, dora);
      assert.deepEqual(await socket.inbox.takeN(EVENT, 2), [[{ notification: view(first) }], [{ notification: view(second) }]]);
      await socket.inbox.none(EVENT, QUIET_MS);
      assert.deepEqual(await ask(socket, 'notifications:list', {}), { ok: true, notifications: [view(second), view(first)] });
      assert.deepEqual(await ask(socket, 'notifications:list', { limit: 1 }), { ok: true, notifications: [view(second)] });
      assert.deepEqual(await ask(socket, 'notifications:list', { limit: 0 }), err('invalid_payload', 'expected {unreadOnly?: boolean, limit?: 1 to 100}'));
    });

    it('notifications:read marks them read: not pushed again on the next connection, unreadOnly lists skip them', async (t) => {
      const c = daemon.clients(t);
      const eve = makeUser('Eve');
      const [a, b, d] = [await notify(eve.id, 't', { n: 'a' }), await notify(eve.id, 't', { n: 'b' }), await notify(eve.id, 't', { n: 'd' })];
      const tab = await connectAs(c, eve);
      await tab.inbox.takeN(EVENT, 3);
      assert.deepEqual(await ask(tab, 'notifications:read', { ids: [a.id, b.id] }), { ok: true, updated: 2 });
      assert.deepEqual((await ask(tab, 'notifications:list', { unreadOnly: true })).notifications, [view(d)]);
      const all = (await ask(tab, 'notifications:list', {})).notifications;
      assert.deepEqual(all.map((n) => [n.id, n.read]), [[d.id, false], [b.id, true], [a.id, true]]);
      tab.disconnect();
      const again = await connectAs(c, eve);
      assert.deepEqual(await again.inbox.take(EVENT), [{ notification: view(d) }]);
      await again.inbox.none(EVENT, QUIET_MS);
      assert.deepEqual(await ask(again, 'notifications:read', 'all'), { ok: true, updated: 1 });
      assert.deepEqual((await ask(again, 'notifications:list', { unreadOnly: true })).notifications, []);
      assert.deepEqual(await ask(again, 'notifications:read', { ids: [] }), err('invalid_payload', 'ids must be "all" or an array of 1 to 1000 notification ids'));
    });

    it("another user's notification ids cannot be marked read", async (t) => {
      const c = daemon.clients(t);
      const [ann, mallory] = [makeUser('Ann'), makeUser('Mallory')];
      const mine = await notify(ann.id, 't', {});
      const malSocket = await connectAs(c, mallory);
      assert.deepEqual(await ask(malSocket, 'notifications:read', { ids: [mine.id], userId: ann.id }), { ok: true, updated: 0 });
      const annSocket = await connectAs(c, ann);
      assert.deepEqual(await annSocket.inbox.take(EVENT), [{ notification: view(mine) }]);
      assert.deepEqual((await ask(annSocket, 'notifications:list', { unreadOnly: true })).notifications, [view(mine)]);
    });
  });

  describe('room access flow', () => {
    /** What a notification of the flow carries in its payload. */
    const fromUser = (user) => ({ ...publicUser(user), _id: user.id, username: `${user.firstName} ${user.lastName}` });

    it('request → the owner is notified (requestAccess); grant → the requester is notified (grantedAccess) and is a member', async (t) => {
      const c = daemon.clients(t);
      const [owner, bob] = [makeUser('Olga'), makeUser('Bob')];
      const room = await createRoom(daemon, { name: 'Calculus', isPrivate: true, ownerId: owner.id });
      const ownerSocket = await connectAs(c, owner);
      const bobSocket = await connectAs(c, bob);
      const bobChat = await connectAs(c, bob, { nsp: '/chat' });
      assert.deepEqual(await ask(bobChat, 'room:join', room.id), err('forbidden', 'Not a member of this private room'));

      const requested = await ask(bobSocket, 'room:requestAccess', room.id);
      assert.equal(requested.ok, true, JSON.stringify(requested));
      const request = requested.request;
      assert.deepEqual(request, { id: request.id, roomId: room.id, userId: bob.id, status: 'pending', createdAt: request.createdAt });
      const [toOwner] = await ownerSocket.inbox.take(EVENT);
      const requestPayload = { requestId: request.id, roomId: room.id, resourceType: 'room', resourceId: room.id, fromUser: fromUser(bob), roomName: 'Calculus' };
      assert.deepEqual(toOwner.notification.payload, requestPayload);
      assert.equal(toOwner.notification.type, 'requestAccess');
      assert.equal(toOwner.notification.notificationType, 'requestAccess');
      assert.equal(toOwner.notification.toUser, owner.id);
      assert.equal(toOwner.notification.fromUser.username, 'Bob Bobson');
      await bobSocket.inbox.none(EVENT, QUIET_MS);
      // Still not a member until the owner grants it; only the owner may.
      assert.deepEqual(await ask(bobChat, 'room:join', room.id), err('forbidden', 'Not a member of this private room'));
      assert.deepEqual(await ask(bobSocket, 'room:grantAccess', request.id), err('forbidden', 'Only the room owner can grant access'));

      const granted = await ask(ownerSocket, 'room:grantAccess', { requestId: request.id });
      assert.deepEqual(granted, { ok: true, request: { ...request, status: 'granted' } });
      const [toBob] = await bobSocket.inbox.take(EVENT);
      assert.equal(toBob.notification.type, 'grantedAccess');
      assert.equal(toBob.notification.toUser, bob.id);
      assert.deepEqual(toBob.notification.fromUser, fromUser(owner));
      assert.deepEqual(toBob.room, { ...room, _id: room.id }, 'the room, where VMT looks for it (data.room._id)');
      // The grant made Bob a member: the chat channel lets him in now.
      assert.equal((await ask(bobChat, 'room:join', room.id)).ok, true);
      assert.deepEqual(await ask(ownerSocket, 'room:grantAccess', request.id), err('conflict', 'This request was already granted'));
    });

    it('deny → deniedAccess to the requester, no membership', async (t) => {
      const c = daemon.clients(t);
      const [owner, carol] = [makeUser('Olga'), makeUser('Carol')];
      const room = await createRoom(daemon, { isPrivate: true, ownerId: owner.id });
      const ownerSocket = await connectAs(c, owner);
      const carolSocket = await connectAs(c, carol);
      const carolChat = await connectAs(c, carol, { nsp: '/chat' });
      const { request } = await ask(carolSocket, 'room:requestAccess', { roomId: room.id });
      await ownerSocket.inbox.take(EVENT);
      assert.deepEqual(await ask(ownerSocket, 'room:denyAccess', request.id), { ok: true, request: { ...request, status: 'denied' } });
      const [toCarol] = await carolSocket.inbox.take(EVENT);
      assert.equal(toCarol.notification.type, 'deniedAccess');
      assert.equal(toCarol.room, undefined);
      assert.deepEqual(await ask(carolChat, 'room:join', room.id), err('forbidden', 'Not a member of this private room'));
      assert.deepEqual(await ask(ownerSocket, 'room:grantAccess', request.id), err('conflict', 'This request was already denied'));
    });

    it('requests for unknown rooms, rooms without an owner, unknown request ids are refused (ack or room:error)', async (t) => {
      const c = daemon.clients(t);
      const socket = await connectAs(c, makeUser('Ann'));
      assert.deepEqual(await ask(socket, 'room:requestAccess', unique('nope')), err('not_found', 'Room not found'));
      const ownerless = await createRoom(daemon, { isPrivate: true });
      assert.deepEqual(await ask(socket, 'room:requestAccess', ownerless.id), err('conflict', 'This room has no owner to grant access'));
      assert.deepEqual(await ask(socket, 'room:grantAccess', unique('no-request')), err('not_found', 'Access request not found'));
      socket.emit('room:requestAccess', {});
      assert.deepEqual(await socket.inbox.take('room:error'), [{ code: 'invalid_payload', message: 'roomId must be a string of 1 to 128 bytes or an integer' }]);
    });
  });

  it('notifications and their read state survive a restart of the daemon', async (t) => {
    const frank = makeUser('Frank');
    const read = await notify(frank.id, 't', { n: 'read' });
    const unread = await notify(frank.id, 't', { n: 'unread' });
    {
      const c = daemon.clients();
      const socket = await connectAs(c, frank);
      await socket.inbox.takeN(EVENT, 2);
      assert.equal((await ask(socket, 'notifications:read', [read.id])).updated, 1);
      c.close();
    }
    await daemon.stopChecked();
    daemon = null;
    daemon = await startDaemon(dir, config);
    const c = daemon.clients(t);
    const socket = await connectAs(c, frank);
    assert.deepEqual(await socket.inbox.take(EVENT), [{ notification: view(unread) }]);
    await socket.inbox.none(EVENT, QUIET_MS);
    const list = (await ask(socket, 'notifications:list', {})).notifications;
    assert.deepEqual(list, [view(unread), { ...view(read), read: true }]);
  });
});
