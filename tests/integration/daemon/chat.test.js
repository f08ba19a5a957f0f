// The chat driver (StudyConnect, seeds 002 and 003) end to end with
// socket.io-client: presence with two tabs, study rooms (room:join /
// room:leave → room:userJoined / room:userLeft), messages stored before
// message:received reaches the whole room, direct messages, typing
// indicators and their expiry, room history with paging, private rooms,
// spoofed senders, text and rate limits, unknown recipients. Payloads are
// compared exactly; every refusal is checked for its error and for nothing
// stored (through the HTTP API's history and presence).
//
// Every test uses its own users and rooms: user:status goes to every socket
// of the channel, so the helpers match events by user id.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  requireBin, tempDir, baseConfig, startDaemon, makeUser, publicUser, connectAs, presenceOf,
  createRoom, roomMessages, unique, sleep, ISO_RE,
} from '../lib/daemon.js';
import { ask } from '../lib/sio.js';

const QUIET_MS = 250;
const LIMITS = { maxTextLength: 200, messagesPerSecond: 20, messageBurst: 10, typingTimeoutMs: 400, historyLimit: 10 };

const statusOf = (userId) => ([payload]) => payload?.userId === userId;
const err = (code, message) => ({ ok: false, error: { code, message } });

/** A stored message's server-made fields: a string id and an ISO date of now. */
function checkServerFields(payload) {
  assert.equal(typeof payload.id, 'string', `id ${JSON.stringify(payload.id)} is a string (store ids are strings)`);
  assert.ok(payload.id.length > 0);
  assert.match(payload.createdAt, ISO_RE);
  assert.ok(Math.abs(Date.parse(payload.createdAt) - Date.now()) < 10000, `createdAt ${payload.createdAt} is now`);
  return { id: payload.id, createdAt: payload.createdAt };
}

describe('chat driver (StudyConnect)', () => {
  let daemon;
  before(async () => {
    requireBin();
    const dir = tempDir('chat');
    daemon = await startDaemon(dir, baseConfig(dir, {
      limits: LIMITS,
      channels: {
        '/': { driver: 'chat', auth: 'jwt' },
        '/strict': { driver: 'chat', auth: 'jwt', options: { autoCreateRooms: false } },
      },
    }));
  });
  after(async () => {
    await daemon?.stopChecked();
  });

  /** Users connected (one tab each) and joined to `roomId`; returns their sockets. */
  async function inRoom(c, roomId, users) {
    const sockets = [];
    for (const user of users) {
      const socket = await connectAs(c, user);
      const ack = await ask(socket, 'room:join', roomId);
      assert.equal(ack.ok, true, `${user.id} joins ${roomId}: ${JSON.stringify(ack)}`);
      sockets.push(socket);
    }
    for (const socket of sockets) socket.inbox.items.length = 0; // forget the joins
    return sockets;
  }

  describe('presence (user:status)', () => {
    it('online when a user connects, offline only when the last of two tabs closes; stored with lastActivity', async (t) => {
      const c = daemon.clients(t);
      const [ann, bob] = [makeUser('Ann'), makeUser('Bob')];
      const annSocket = await connectAs(c, ann);
      const bobTab1 = await connectAs(c, bob);
      assert.deepEqual(await annSocket.inbox.takeMatching('user:status', statusOf(bob.id)), [{ userId: bob.id, status: 'online' }]);
      const bobTab2 = await connectAs(c, bob, { mode: 'polling' });
      const stored = await presenceOf(daemon, bob.id);
      assert.equal(stored.status, 'online');
      assert.match(stored.lastActivity, ISO_RE);

      bobTab1.disconnect();
      await sleep(QUIET_MS);
      assert.deepEqual(annSocket.inbox.items.filter((i) => i[0] === 'user:status' && i[1]?.userId === bob.id), [], 'a second tab is not a new "online", closing one of two tabs is not "offline"');
      assert.equal((await presenceOf(daemon, bob.id)).status, 'online');

      bobTab2.io.engine.close(); // the last tab goes away without a goodbye
      assert.deepEqual(await annSocket.inbox.takeMatching('user:status', statusOf(bob.id)), [{ userId: bob.id, status: 'offline' }]);
      const after = await presenceOf(daemon, bob.id);
      assert.equal(after.status, 'offline');
      assert.match(after.lastActivity, ISO_RE);
      assert.ok(after.lastActivity >= stored.lastActivity);
      await sleep(QUIET_MS);
      assert.equal(annSocket.inbox.items.filter((i) => i[0] === 'user:status' && i[1]?.userId === bob.id).length, 0, 'one offline only');
    });

    it('the user itself does not get its own user:status', async (t) => {
      const c = daemon.clients(t);
      const carol = makeUser('Carol');
      const socket = await connectAs(c, carol);
      await sleep(QUIET_MS);
      assert.equal(socket.inbox.items.filter((i) => i[0] === 'user:status' && i[1]?.userId === carol.id).length, 0);
    });
  });

  describe('study rooms', () => {
    it('room:join (the raw roomId, as seed 002 sends it) → room:userJoined {roomId, user} to the others; room:leave → room:userLeft {roomId, userId}', async (t) => {
      const c = daemon.clients(t);
      const [ann, bob, carol] = [makeUser('Ann'), makeUser('Bob'), makeUser('Carol')];
      const room = await createRoom(daemon, { name: 'Algebra' });
      const [annSocket, bobSocket, carolSocket] = [await connectAs(c, ann), await connectAs(c, bob), await connectAs(c, carol)];

      const annAck = await ask(annSocket, 'room:join', room.id);
      assert.deepEqual(annAck, { ok: true, roomId: room.id, room });
      bobSocket.emit('room:join', room.id); // the seed's client: no ack
      assert.deepEqual(await annSocket.inbox.take('room:userJoined'), [{ roomId: room.id, user: publicUser(bob) }]);
      await bobSocket.inbox.none('room:userJoined', QUIET_MS);
      await carolSocket.inbox.none('room:userJoined', 0);
      assert.deepEqual((await daemon.apiOk('GET', `/presence/rooms/${room.id}`)).online.sort(), [ann.id, bob.id].sort());

      bobSocket.emit('room:leave', room.id);
      assert.deepEqual(await annSocket.inbox.take('room:userLeft'), [{ roomId: room.id, userId: bob.id }]);
      await carolSocket.inbox.none('room:userLeft', QUIET_MS);
      assert.deepEqual((await daemon.apiOk('GET', `/presence/rooms/${room.id}`)).online, [ann.id]);
      // After leaving, Bob gets nothing of the room.
      annSocket.emit('message:send', { roomId: room.id, text: 'still here?' });
      await annSocket.inbox.take('message:received');
      await bobSocket.inbox.none('message:received', QUIET_MS);
    });

    it('{roomId} objects work too; the ack of room:leave is {ok:true, roomId}', async (t) => {
      const c = daemon.clients(t);
      const [ann, bob] = [makeUser('Ann'), makeUser('Bob')];
      const room = await createRoom(daemon);
      const annSocket = await connectAs(c, ann);
      const bobSocket = await connectAs(c, bob);
      assert.equal((await ask(annSocket, 'room:join', { roomId: room.id })).ok, true);
      assert.equal((await ask(bobSocket, 'room:join', { roomId: room.id })).ok, true);
      assert.deepEqual(await annSocket.inbox.take('room:userJoined'), [{ roomId: room.id, user: publicUser(bob) }]);
      assert.deepEqual(await ask(bobSocket, 'room:leave', { roomId: room.id }), { ok: true, roomId: room.id });
      assert.deepEqual(await annSocket.inbox.take('room:userLeft'), [{ roomId: room.id, userId: bob.id }]);
    });

    it('integer room ids, as StudyConnect\'s database makes them, work as sent', async (t) => {
      const c = daemon.clients(t);
      const [ann, bob] = [makeUser('Ann'), makeUser('Bob')];
      const numericId = 700000 + (process.pid % 100000);
      const room = await createRoom(daemon, { id: numericId, name: 'Numeric' });
      assert.equal(room.id, numericId); // the room keeps its type, as its messages' roomId (store schema 3)
      const annSocket = await connectAs(c, ann);
      const bobSocket = await connectAs(c, bob);
      assert.equal((await ask(annSocket, 'room:join', numericId)).roomId, numericId);
      bobSocket.emit('room:join', numericId);
      assert.deepEqual(await annSocket.inbox.take('room:userJoined'), [{ roomId: numericId, user: publicUser(bob) }]);
      annSocket.emit('message:send', { roomId: numericId, text: 'numbers' });
      const [atBob] = await bobSocket.inbox.take('message:received');
      assert.equal(atBob.roomId, numericId);
      assert.deepEqual((await roomMessages(daemon, room.id)).map((m) => [m.roomId, m.text]), [[numericId, 'numbers']]); // as sent
    });

    it('a second tab joining the same room is not announced again', async (t) => {
      const c = daemon.clients(t);
      const [ann, bob] = [makeUser('Ann'), makeUser('Bob')];
      const room = await createRoom(daemon);
      const [annSocket] = await inRoom(c, room.id, [ann]);
      const bobTab1 = await connectAs(c, bob);
      const bobTab2 = await connectAs(c, bob, { mode: 'polling' });
      await ask(bobTab1, 'room:join', room.id);
      assert.deepEqual(await annSocket.inbox.take('room:userJoined'), [{ roomId: room.id, user: publicUser(bob) }]);
      await ask(bobTab2, 'room:join', room.id);
      await annSocket.inbox.none('room:userJoined', QUIET_MS);
    });

    it('rooms unknown to the store: created on first join by default; "Room not found" with autoCreateRooms false', async (t) => {
      const c = daemon.clients(t);
      const ann = makeUser('Ann');
      const roomId = unique('adhoc');
      const joined = await ask(await connectAs(c, ann), 'room:join', roomId);
      assert.equal(joined.ok, true);
      assert.deepEqual(joined.room, { id: roomId, name: roomId, isPrivate: false, ownerId: null, createdAt: joined.room.createdAt });
      const strict = await connectAs(c, ann, { nsp: '/strict' });
      const other = unique('adhoc');
      assert.deepEqual(await ask(strict, 'room:join', other), err('not_found', 'Room not found'));
      assert.equal((await daemon.api('GET', `/rooms/${other}`)).status, 404, 'nothing created');
      const room = await createRoom(daemon);
      assert.equal((await ask(strict, 'room:join', room.id)).ok, true);
    });

    it('room:join shares the rate limit: a socket cannot create rooms without bound', async (t) => {
      const c = daemon.clients(t);
      const ann = await connectAs(c, makeUser('Ann'));
      const prefix = `flood-${Date.now()}-`;
      const acks = await Promise.all(Array.from({ length: 3 * LIMITS.messageBurst }, (_, i) => ask(ann, 'room:join', `${prefix}${i}`)));
      const refused = acks.filter((a) => a.ok !== true);
      assert.ok(refused.length >= LIMITS.messageBurst, `most joins beyond the burst are refused, got ${refused.length}`);
      for (const r of refused) assert.deepEqual(r, err('rate_limited', 'Rate limit exceeded'));
    });

    it('an invalid roomId is refused (ack, or room:error without one)', async (t) => {
      const c = daemon.clients(t);
      const socket = await connectAs(c, makeUser('Ann'));
      const invalid = err('invalid_payload', 'roomId must be a string of 1 to 128 bytes or an integer');
      for (const payload of [{}, { roomId: '' }, { roomId: 'x'.repeat(129) }, { roomId: true }, null]) {
        assert.deepEqual(await ask(socket, 'room:join', payload), invalid, JSON.stringify(payload));
      }
      socket.emit('room:join', { roomId: '' });
      assert.deepEqual(await socket.inbox.take('room:error'), [invalid.error]);
    });
  });

  describe('messages', () => {
    it('message:send {roomId, text} is stored, then message:received {id, roomId, sender, text, createdAt} reaches the whole room, sender included', async (t) => {
      const c = daemon.clients(t);
      const [ann, bob, carol] = [makeUser('Ann'), makeUser('Bob'), makeUser('Carol')];
      const room = await createRoom(daemon, { name: 'Physics' });
      const [annSocket, bobSocket] = await inRoom(c, room.id, [ann, bob]);
      const carolSocket = await connectAs(c, carol);

      const text = 'Hello, room! ünïcödé ✓';
      annSocket.emit('message:send', { roomId: room.id, text }); // as the seed's socketService does
      const [atAnn] = await annSocket.inbox.take('message:received');
      const { id, createdAt } = checkServerFields(atAnn);
      const expected = { id, roomId: room.id, sender: publicUser(ann), text, createdAt };
      assert.deepEqual(atAnn, expected);
      assert.deepEqual(await bobSocket.inbox.take('message:received'), [expected]);
      await carolSocket.inbox.none('message:received', QUIET_MS);
      assert.equal(annSocket.inbox.count('message:received') + bobSocket.inbox.count('message:received'), 0, 'delivered once');

      // It was stored before it was broadcast: the history has it, with the same id and date.
      assert.deepEqual(await roomMessages(daemon, room.id), [{ id, roomId: room.id, senderId: ann.id, text, createdAt }]);

      // With an ack: {ok:true, message}.
      const acked = await ask(bobSocket, 'message:send', { roomId: room.id, text: 'reply' });
      const [second] = await annSocket.inbox.take('message:received');
      assert.deepEqual(acked, { ok: true, message: second });
      assert.deepEqual(second, { id: second.id, roomId: room.id, sender: publicUser(bob), text: 'reply', createdAt: second.createdAt });
      assert.notEqual(second.id, id);
      assert.deepEqual(await bobSocket.inbox.take('message:received'), [second]);
    });

    it('tabs of one user keep their own token\'s profile: the same claims share it, other claims do not', async (t) => {
      // The driver keeps one record per user for the tabs whose tokens say the same (issue 12);
      // a tab whose token was minted after a rename must still send as its own token says.
      const c = daemon.clients(t);
      const ann = makeUser('Ann');
      const renamed = { ...ann, firstName: 'Annie', lastName: 'Annsdottir' };
      const room = await createRoom(daemon);
      const [first, other, again] = await inRoom(c, room.id, [ann, renamed, ann]);
      const senders = [];
      for (const [socket, text] of [[first, 'one'], [other, 'two'], [again, 'three']]) {
        const acked = await ask(socket, 'message:send', { roomId: room.id, text });
        assert.equal(acked.ok, true, JSON.stringify(acked));
        senders.push(acked.message.sender);
      }
      assert.deepEqual(senders, [publicUser(ann), publicUser(renamed), publicUser(ann)]);
      const [received] = await other.inbox.takeMatching('message:received', ([m]) => m?.text === 'three');
      assert.deepEqual(received.sender, publicUser(ann));
    });

    it('a spoofed senderId / userId / sender in the payload is ignored: the sender is the token\'s user', async (t) => {
      const c = daemon.clients(t);
      const [ann, bob] = [makeUser('Ann'), makeUser('Bob')];
      const room = await createRoom(daemon);
      const [annSocket, bobSocket] = await inRoom(c, room.id, [ann, bob]);
      const spoof = { roomId: room.id, text: 'I am Bob', senderId: bob.id, userId: bob.id, sender: publicUser(bob) };
      const acked = await ask(annSocket, 'message:send', spoof);
      assert.equal(acked.ok, true);
      const [atBob] = await bobSocket.inbox.take('message:received');
      assert.deepEqual(atBob.sender, publicUser(ann));
      const stored = await roomMessages(daemon, room.id);
      assert.deepEqual(stored.map((m) => [m.senderId, m.text]), [[ann.id, 'I am Bob']]);

      // The same for a direct message.
      const dm = await ask(annSocket, 'dm:send', { recipientId: bob.id, text: 'from "Bob"', senderId: bob.id, sender: publicUser(bob) });
      assert.equal(dm.ok, true);
      const [received] = await bobSocket.inbox.take('dm:received');
      assert.equal(received.senderId, ann.id);
      assert.deepEqual(received.sender, publicUser(ann));
    });

    it('text longer than limits.maxTextLength: "Message too long", nothing stored or sent', async (t) => {
      const c = daemon.clients(t);
      const [ann, bob] = [makeUser('Ann'), makeUser('Bob')];
      const room = await createRoom(daemon);
      const [annSocket, bobSocket] = await inRoom(c, room.id, [ann, bob]);
      const tooLong = 'x'.repeat(LIMITS.maxTextLength + 1);
      assert.deepEqual(await ask(annSocket, 'message:send', { roomId: room.id, text: tooLong }), err('too_long', 'Message too long'));
      annSocket.emit('message:send', { roomId: room.id, text: 'é'.repeat(LIMITS.maxTextLength / 2 + 1) }); // bytes, not characters
      assert.deepEqual(await annSocket.inbox.take('message:error'), [{ code: 'too_long', message: 'Message too long' }]);
      assert.deepEqual(await ask(annSocket, 'dm:send', { recipientId: bob.id, text: tooLong }), err('too_long', 'Message too long'));
      await bobSocket.inbox.none('message:received', QUIET_MS);
      await bobSocket.inbox.none('dm:received', 0);
      assert.deepEqual(await roomMessages(daemon, room.id), []);
      // Exactly the limit is fine.
      const longest = 'y'.repeat(LIMITS.maxTextLength);
      assert.equal((await ask(annSocket, 'message:send', { roomId: room.id, text: longest })).ok, true);
      assert.equal((await bobSocket.inbox.take('message:received'))[0].text, longest);
    });

    it('empty or missing text, and a room the socket has not joined, are refused; nothing stored', async (t) => {
      const c = daemon.clients(t);
      const [ann, bob] = [makeUser('Ann'), makeUser('Bob')];
      const room = await createRoom(daemon);
      const [bobSocket] = await inRoom(c, room.id, [bob]);
      const annSocket = await connectAs(c, ann);
      assert.deepEqual(await ask(annSocket, 'message:send', { roomId: room.id, text: 'not joined' }), err('forbidden', 'Join the room before sending messages to it'));
      await ask(annSocket, 'room:join', room.id);
      assert.deepEqual(await ask(annSocket, 'message:send', { roomId: room.id, text: '' }), err('invalid_payload', 'Message text is required'));
      assert.deepEqual(await ask(annSocket, 'message:send', { roomId: room.id }), err('invalid_payload', 'Message text is required'));
      await bobSocket.inbox.none('message:received', QUIET_MS);
      assert.deepEqual(await roomMessages(daemon, room.id), []);
    });

    it('rate limit per socket: beyond the burst, "Rate limit exceeded"; only accepted messages are stored', async (t) => {
      const c = daemon.clients(t);
      const ann = makeUser('Ann');
      const room = await createRoom(daemon);
      const [annSocket] = await inRoom(c, room.id, [ann]);
      const total = 3 * LIMITS.messageBurst;
      const acks = await Promise.all(Array.from({ length: total }, (_, i) => ask(annSocket, 'message:send', { roomId: room.id, text: `flood ${i}` })));
      const accepted = acks.filter((a) => a.ok === true);
      const refused = acks.filter((a) => a.ok !== true);
      // The room:join took one token of the burst.
      assert.ok(accepted.length >= LIMITS.messageBurst - 1, `at least the burst (${LIMITS.messageBurst}) less the join is accepted, got ${accepted.length}`);
      assert.ok(refused.length >= 1, 'some are refused');
      for (const r of refused) assert.deepEqual(r, err('rate_limited', 'Rate limit exceeded'));
      const stored = await roomMessages(daemon, room.id);
      assert.deepEqual(stored.map((m) => m.id), accepted.map((a) => a.message.id), 'stored = acknowledged, in order');
      // The bucket refills: after a while the socket may send again.
      await sleep(1000 / LIMITS.messagesPerSecond * 3);
      assert.equal((await ask(annSocket, 'message:send', { roomId: room.id, text: 'later' })).ok, true);
    });
  });

  describe('direct messages', () => {
    it('dm:send {recipientId, text} → dm:received to every tab of the recipient and back to the sender', async (t) => {
      const c = daemon.clients(t);
      const [ann, bob, carol] = [makeUser('Ann'), makeUser('Bob'), makeUser('Carol')];
      const annSocket = await connectAs(c, ann);
      const bobTab1 = await connectAs(c, bob);
      const bobTab2 = await connectAs(c, bob, { mode: 'polling' });
      const carolSocket = await connectAs(c, carol);

      annSocket.emit('dm:send', { recipientId: bob.id, text: 'psst' });
      const [atAnn] = await annSocket.inbox.take('dm:received');
      const { id, createdAt } = checkServerFields(atAnn);
      // Seed 003's messageData {id, sender, recipientId, text, createdAt}, plus senderId.
      const expected = { id, sender: publicUser(ann), senderId: ann.id, recipientId: bob.id, text: 'psst', createdAt };
      assert.deepEqual(atAnn, expected);
      assert.deepEqual(await bobTab1.inbox.take('dm:received'), [expected]);
      assert.deepEqual(await bobTab2.inbox.take('dm:received'), [expected]);
      await carolSocket.inbox.none('dm:received', QUIET_MS);
      for (const s of [annSocket, bobTab1, bobTab2]) assert.equal(s.inbox.count('dm:received'), 0, 'delivered once');

      // With an ack: {ok:true, message}.
      const acked = await ask(bobTab1, 'dm:send', { recipientId: ann.id, text: 'hi back' });
      const [back] = await annSocket.inbox.take('dm:received');
      assert.deepEqual(acked, { ok: true, message: back });
      assert.equal(back.recipientId, ann.id);
    });

    it('a known user who is offline can still be written to (stored); the sender gets its copy', async (t) => {
      const c = daemon.clients(t);
      const [ann, dora] = [makeUser('Ann'), makeUser('Dora')];
      const doraSocket = await connectAs(c, dora);
      doraSocket.disconnect();
      const annSocket = await connectAs(c, ann);
      const acked = await ask(annSocket, 'dm:send', { recipientId: dora.id, text: 'when you are back' });
      assert.equal(acked.ok, true, JSON.stringify(acked));
      assert.equal(acked.message.recipientId, dora.id);
      assert.deepEqual(await annSocket.inbox.take('dm:received'), [acked.message]);
    });

    it('dm:history {userId} with an ack: the conversation both ways, oldest first, so an offline user catches up', async (t) => {
      const c = daemon.clients(t);
      const [ann, dora] = [makeUser('Ann'), makeUser('Dora')];
      const doraSocket = await connectAs(c, dora);
      doraSocket.disconnect();
      const annSocket = await connectAs(c, ann);
      const first = await ask(annSocket, 'dm:send', { recipientId: dora.id, text: 'one' });
      const second = await ask(annSocket, 'dm:send', { recipientId: dora.id, text: 'two' });
      const back = await connectAs(c, dora);
      const history = await ask(back, 'dm:history', { userId: ann.id });
      assert.equal(history.ok, true, JSON.stringify(history));
      assert.deepEqual(history.messages.map((m) => [m.id, m.senderId, m.recipientId, m.text]),
        [[first.message.id, ann.id, dora.id, 'one'], [second.message.id, ann.id, dora.id, 'two']]);
      const page = await ask(back, 'dm:history', { userId: ann.id, before: second.message.id, limit: 1 });
      assert.deepEqual(page.messages.map((m) => m.id), [first.message.id]);
      assert.deepEqual(await ask(back, 'dm:history', { userId: ann.id, limit: 0 }),
        err('invalid_payload', 'userId must be a user id, before a message id and limit a positive integer'));
    });

    it('an unknown recipient: dm:error {message:"Recipient not found"} (seed 003), or the ack; nothing sent', async (t) => {
      const c = daemon.clients(t);
      const ann = makeUser('Ann');
      const annSocket = await connectAs(c, ann);
      const nobody = unique('nobody');
      annSocket.emit('dm:send', { recipientId: nobody, text: 'hello?' });
      const [error] = await annSocket.inbox.take('dm:error');
      assert.equal(error.message, 'Recipient not found');
      assert.deepEqual(error, { code: 'not_found', message: 'Recipient not found' });
      assert.deepEqual(await ask(annSocket, 'dm:send', { recipientId: nobody, text: 'hello?' }), err('not_found', 'Recipient not found'));
      await annSocket.inbox.none('dm:received', QUIET_MS);
      // The unknown user was not created by the attempt.
      assert.deepEqual(await ask(annSocket, 'dm:send', { recipientId: nobody, text: 'again' }), err('not_found', 'Recipient not found'));
      assert.equal((await presenceOf(daemon, nobody)).lastActivity, null);
    });
  });

  describe('typing indicators', () => {
    it('typing:start / typing:stop {roomId} → typing:update {roomId, userId, firstName, isTyping} to the others in the room only', async (t) => {
      const c = daemon.clients(t);
      const [ann, bob, carol] = [makeUser('Ann'), makeUser('Bob'), makeUser('Carol')];
      const room = await createRoom(daemon);
      const [annSocket, bobSocket] = await inRoom(c, room.id, [ann, bob]);
      const carolSocket = await connectAs(c, carol);

      annSocket.emit('typing:start', { roomId: room.id });
      assert.deepEqual(await bobSocket.inbox.take('typing:update'), [{ roomId: room.id, userId: ann.id, firstName: 'Ann', isTyping: true }]);
      // typing:start on every key press: announced once.
      for (let i = 0; i < 5; i++) annSocket.emit('typing:start', { roomId: room.id });
      annSocket.emit('typing:stop', { roomId: room.id });
      assert.deepEqual(await bobSocket.inbox.take('typing:update'), [{ roomId: room.id, userId: ann.id, firstName: 'Ann', isTyping: false }]);
      await annSocket.inbox.none('typing:update', QUIET_MS);
      await carolSocket.inbox.none('typing:update', 0);
      await bobSocket.inbox.none('typing:update', 0);
    });

    it('a typing:start without its stop expires after limits.typingTimeoutMs (isTyping false)', async (t) => {
      const c = daemon.clients(t);
      const [ann, bob] = [makeUser('Ann'), makeUser('Bob')];
      const room = await createRoom(daemon);
      const [annSocket, bobSocket] = await inRoom(c, room.id, [ann, bob]);
      const started = Date.now();
      assert.deepEqual(await ask(annSocket, 'typing:start', { roomId: room.id }), { ok: true });
      assert.deepEqual(await bobSocket.inbox.take('typing:update'), [{ roomId: room.id, userId: ann.id, firstName: 'Ann', isTyping: true }]);
      assert.deepEqual(await bobSocket.inbox.take('typing:update', 3000), [{ roomId: room.id, userId: ann.id, firstName: 'Ann', isTyping: false }]);
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= LIMITS.typingTimeoutMs - 50 && elapsed < LIMITS.typingTimeoutMs + 1500, `expired after ${elapsed} ms`);
      await bobSocket.inbox.none('typing:update', QUIET_MS);
    });

    it('a socket that goes away while typing: the others see isTyping false', async (t) => {
      const c = daemon.clients(t);
      const [ann, bob] = [makeUser('Ann'), makeUser('Bob')];
      const room = await createRoom(daemon);
      const [annSocket, bobSocket] = await inRoom(c, room.id, [ann, bob]);
      annSocket.emit('typing:start', { roomId: room.id });
      assert.deepEqual(await bobSocket.inbox.take('typing:update'), [{ roomId: room.id, userId: ann.id, firstName: 'Ann', isTyping: true }]);
      annSocket.disconnect();
      const [update] = await bobSocket.inbox.take('typing:update', LIMITS.typingTimeoutMs / 2);
      assert.deepEqual(update, { roomId: room.id, userId: ann.id, firstName: 'Ann', isTyping: false });
    });

    it('typing in a room one has not joined is refused and reaches nobody', async (t) => {
      const c = daemon.clients(t);
      const [ann, bob] = [makeUser('Ann'), makeUser('Bob')];
      const room = await createRoom(daemon);
      const [bobSocket] = await inRoom(c, room.id, [bob]);
      const annSocket = await connectAs(c, ann);
      assert.deepEqual(await ask(annSocket, 'typing:start', { roomId: room.id }), err('forbidden', 'Not a member of this room'));
      annSocket.emit('typing:start', { roomId: room.id });
      assert.deepEqual(await annSocket.inbox.take('typing:error'), [{ code: 'forbidden', message: 'Not a member of this room' }]);
      await bobSocket.inbox.none('typing:update', QUIET_MS);
    });
  });

  describe('history', () => {
    it('room:history {roomId, limit, before} pages through the stored messages, oldest first, as message:received shows them', async (t) => {
      const c = daemon.clients(t);
      const [ann, bob] = [makeUser('Ann'), makeUser('Bob')];
      const room = await createRoom(daemon);
      const [annSocket, bobSocket] = await inRoom(c, room.id, [ann, bob]);
      const sent = [];
      for (let i = 0; i < 7; i++) {
        const socket = i % 2 ? bobSocket : annSocket;
        const ack = await ask(socket, 'message:send', { roomId: room.id, text: `m${i}` });
        assert.equal(ack.ok, true);
        sent.push(ack.message);
      }
      const page1 = await ask(annSocket, 'room:history', { roomId: room.id, limit: 3 });
      assert.deepEqual(page1, { ok: true, messages: sent.slice(4) });
      const page2 = await ask(annSocket, 'room:history', { roomId: room.id, limit: 3, before: page1.messages[0].id });
      assert.deepEqual(page2, { ok: true, messages: sent.slice(1, 4) });
      const page3 = await ask(annSocket, 'room:history', { roomId: room.id, limit: 3, before: page2.messages[0].id });
      assert.deepEqual(page3, { ok: true, messages: sent.slice(0, 1) });
      // Without a limit: everything up to limits.historyLimit.
      assert.deepEqual(await ask(bobSocket, 'room:history', { roomId: room.id }), { ok: true, messages: sent });
      // A limit above limits.historyLimit is clamped.
      assert.equal((await ask(bobSocket, 'room:history', { roomId: room.id, limit: 1000 })).messages.length, sent.length);
    });

    it('room:history needs an ack; bad paging arguments and unknown rooms are refused', async (t) => {
      const c = daemon.clients(t);
      const socket = await connectAs(c, makeUser('Ann'));
      socket.emit('room:history', { roomId: 'whatever' });
      assert.deepEqual(await socket.inbox.take('room:error'), [{ code: 'invalid_payload', message: 'room:history answers through an acknowledgement: pass a callback' }]);
      const room = await createRoom(daemon);
      assert.deepEqual(await ask(socket, 'room:history', { roomId: room.id, limit: 0 }), err('invalid_payload', 'before must be a message id and limit a positive integer'));
      assert.deepEqual(await ask(socket, 'room:history', { roomId: room.id, limit: 'ten' }), err('invalid_payload', 'before must be a message id and limit a positive integer'));
      assert.deepEqual(await ask(socket, 'room:history', { roomId: unique('no-such-room') }), err('not_found', 'Room not found'));
    });
  });

  describe('private rooms', () => {
    it('joining a private room one is not a member of is refused; nothing stored; the owner adds the member through the API', async (t) => {
      const c = daemon.clients(t);
      const [owner, bob] = [makeUser('Olga'), makeUser('Bob')];
      const room = await createRoom(daemon, { name: 'Secret', isPrivate: true, ownerId: owner.id });
      assert.equal(room.isPrivate, true);
      const [ownerSocket] = await inRoom(c, room.id, [owner]);
      await ask(ownerSocket, 'message:send', { roomId: room.id, text: 'members only' });
      const bobSocket = await connectAs(c, bob);

      const notMember = err('forbidden', 'Not a member of this private room');
      assert.deepEqual(await ask(bobSocket, 'room:join', room.id), notMember);
      bobSocket.emit('room:join', room.id);
      assert.deepEqual(await bobSocket.inbox.take('room:error'), [notMember.error]);
      await ownerSocket.inbox.none('room:userJoined', QUIET_MS);
      // Not let in: no messages, no history, cannot write, not in the room's presence.
      assert.deepEqual(await ask(bobSocket, 'message:send', { roomId: room.id, text: 'let me in' }), err('forbidden', 'Join the room before sending messages to it'));
      assert.deepEqual(await ask(bobSocket, 'room:history', { roomId: room.id }), notMember);
      ownerSocket.emit('message:send', { roomId: room.id, text: 'still private' });
      await ownerSocket.inbox.take('message:received');
      await bobSocket.inbox.none('message:received', QUIET_MS);
      assert.deepEqual((await daemon.apiOk('GET', `/presence/rooms/${room.id}`)).online, [owner.id]);
      assert.deepEqual((await roomMessages(daemon, room.id)).map((m) => m.text), ['members only', 'still private']);

      // The back end adds Bob: now he may join, read and write.
      const added = await daemon.apiOk('POST', `/rooms/${room.id}/members`, { userId: bob.id });
      assert.equal(added.roomId, room.id);
      assert.equal(added.userId, bob.id);
      assert.equal((await ask(bobSocket, 'room:join', room.id)).ok, true);
      assert.deepEqual(await ownerSocket.inbox.take('room:userJoined'), [{ roomId: room.id, user: publicUser(bob) }]);
      assert.equal((await ask(bobSocket, 'room:history', { roomId: room.id })).messages.length, 2);

      // And removes him again: he leaves the room at once, the others hear room:userLeft.
      const removed = await daemon.apiOk('DELETE', `/rooms/${room.id}/members/${bob.id}`);
      assert.deepEqual(removed, { roomId: room.id, userId: bob.id, removed: true });
      assert.deepEqual(await ownerSocket.inbox.take('room:userLeft'), [{ roomId: room.id, userId: bob.id }]);
      ownerSocket.emit('message:send', { roomId: room.id, text: 'after removal' });
      await ownerSocket.inbox.take('message:received');
      await bobSocket.inbox.none('message:received', QUIET_MS);
      assert.deepEqual(await ask(bobSocket, 'room:join', room.id), notMember);
    });
  });
});
