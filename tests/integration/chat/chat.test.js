// Integration tests for examples/chat.c (the StudyConnect-style chat) with
// socket.io-client: authentication, presence, rooms, room messages and their
// validation, direct messages, typing indicators, and a clean exit on
// SIGTERM / SIGINT (exit code 0: with an ASan build that also means no leaks).
//
//   SIOC_CHAT=build/chat node --test tests/integration/chat/
//
// SIOC_CHAT is the server's command line; there is no Node reference for this
// server, so without it the suite is skipped. Every test uses its own user and
// room ids: presence broadcasts reach every connected client, and ids keep the
// tests from seeing each other's events.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, splitCommand } from '../lib/server.js';
import { Clients, ask, connectError, until, sleep } from '../lib/sio.js';

const COMMAND = process.env.SIOC_CHAT?.trim();
const SKIP = COMMAND ? false : 'SIOC_CHAT is not set (the chat server command, e.g. SIOC_CHAT=build/chat); the chat example has no Node reference';
const QUIET_MS = 250;
const ISO_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const ROOM_ID_ERROR = 'roomId must be a string of 1 to 128 bytes';
const TEXT_ERROR = 'text must be a string of 1 to 2000 bytes';
const MEMBER_ERROR = 'Not a member of this room';
const AUTH_ERROR = 'Authentication error: token required';

let counter = 0;
/** A name unique in this run (user and room ids). */
const unique = (name) => `${name}-${process.pid}-${++counter}`;

/** Connect a user (a new Engine.IO connection: a browser tab) with auth {token, name}. */
function connectUser(c, token, name, mode = 'websocket') {
  return c.connect(mode, '/', { auth: { token, name } });
}

/** Remove and return the args of the first `event` whose first argument satisfies `predicate`. */
async function takeMatching(socket, event, predicate, timeoutMs = 3000) {
  const items = socket.inbox.items;
  let found;
  await until(() => {
    const i = items.findIndex((item) => item[0] === event && predicate(item[1]));
    if (i >= 0) found = items.splice(i, 1)[0].slice(1);
    return i >= 0;
  }, `a matching "${event}" event on ${socket.id}`, timeoutMs);
  return found;
}

/** Assert that no `event` whose first argument satisfies `predicate` arrives within `ms`. */
async function noneMatching(socket, event, predicate, ms = QUIET_MS) {
  await sleep(ms);
  const got = socket.inbox.items.filter((item) => item[0] === event && predicate(item[1]));
  assert.deepEqual(got, [], `unexpected "${event}" events`);
}

const statusOf = (userId) => (payload) => payload?.userId === userId;

/** A created message's id and date are the server's: check their shape, return them. */
function checkServerFields(payload) {
  assert.equal(typeof payload.id, 'number');
  assert.match(payload.createdAt, ISO_RE);
  assert.ok(Math.abs(Date.parse(payload.createdAt) - Date.now()) < 10000, `createdAt ${payload.createdAt} is now`);
  return { id: payload.id, createdAt: payload.createdAt };
}

describe('chat example', { skip: SKIP }, () => {
  let server;
  before(async () => {
    server = await startServer(splitCommand(COMMAND));
  });
  after(async () => {
    if (!server) return;
    const died = !server.alive;
    const description = server.describeExit();
    const status = await server.stop();
    assert.ok(!died, `the server died during the tests: ${description}`);
    // A clean exit; with an ASan build, LeakSanitizer would make it non-zero.
    assert.deepEqual(status, { code: 0, signal: null }, `exit status after SIGTERM; stderr:\n${server.stderr}`);
  });

  describe('authentication', () => {
    for (const [what, auth] of [
      ['no auth at all', undefined],
      ['no token', { name: 'Ann' }],
      ['an empty token', { token: '', name: 'Ann' }],
      ['a token that is not a string', { token: 42, name: 'Ann' }],
      ['no name', { token: unique('ann') }],
      ['a name that is not a string', { token: unique('ann'), name: 7 }],
    ]) {
      it(`refuses ${what} with connect_error "${AUTH_ERROR}"`, async (t) => {
        const c = new Clients(server, t);
        const socket = c.socket(c.manager('websocket'), '/', auth === undefined ? {} : { auth });
        const err = await connectError(socket);
        assert.equal(err.message, AUTH_ERROR);
        assert.equal(socket.connected, false);
      });
    }

    it('accepts {token, name} over polling and WebSocket; the user id is the token', async (t) => {
      const c = new Clients(server, t);
      const ann = unique('ann');
      const polling = await connectUser(c, ann, 'Ann', 'polling');
      const websocket = await connectUser(c, ann, 'Ann', 'websocket');
      assert.ok(polling.connected && websocket.connected);
      // Both tabs are in user:<id>: a direct message to the user reaches both.
      const acked = await ask(polling, 'dm:send', { recipientId: ann, text: 'note to self' });
      const [atPolling] = await polling.inbox.take('dm:received');
      assert.deepEqual(acked, { ok: true, id: atPolling.id });
      assert.deepEqual(await websocket.inbox.take('dm:received'), [atPolling]);
    });
  });

  describe('presence', () => {
    it('user:status online goes to the others when a user connects, not to the user itself', async (t) => {
      const c = new Clients(server, t);
      const [annId, bobId] = [unique('ann'), unique('bob')];
      const ann = await connectUser(c, annId, 'Ann');
      const bob = await connectUser(c, bobId, 'Bob', 'polling');
      assert.deepEqual(await takeMatching(ann, 'user:status', statusOf(bobId)), [{ userId: bobId, status: 'online' }]);
      await noneMatching(bob, 'user:status', statusOf(bobId));
    });

    it('offline only when the last tab of a user closes; a second tab is not a new "online"', async (t) => {
      const c = new Clients(server, t);
      const [annId, bobId] = [unique('ann'), unique('bob')];
      const ann = await connectUser(c, annId, 'Ann');
      const bobTab1 = await connectUser(c, bobId, 'Bob');
      assert.deepEqual(await takeMatching(ann, 'user:status', statusOf(bobId)), [{ userId: bobId, status: 'online' }]);
      const bobTab2 = await connectUser(c, bobId, 'Bob', 'polling');
      await noneMatching(ann, 'user:status', statusOf(bobId));

      bobTab1.disconnect();
      await noneMatching(ann, 'user:status', statusOf(bobId));
      // Bob is still online: a direct message still reaches his other tab.
      assert.equal((await ask(ann, 'dm:send', { recipientId: bobId, text: 'still there?' })).ok, true);
      await bobTab2.inbox.take('dm:received');

      bobTab2.io.engine.close(); // the last tab goes away without a goodbye
      assert.deepEqual(await takeMatching(ann, 'user:status', statusOf(bobId)), [{ userId: bobId, status: 'offline' }]);
      await noneMatching(ann, 'user:status', statusOf(bobId));
      assert.deepEqual(await ask(ann, 'dm:send', { recipientId: bobId, text: 'gone?' }), { ok: false, error: 'Recipient not found' });
    });
  });

  describe('rooms', () => {
    it('room:join tells the others in the room (room:userJoined), acks {ok:true}; room:leave tells them room:userLeft', async (t) => {
      const c = new Clients(server, t);
      const [annId, bobId, carolId, roomId] = [unique('ann'), unique('bob'), unique('carol'), unique('room')];
      const ann = await connectUser(c, annId, 'Ann');
      const bob = await connectUser(c, bobId, 'Bob', 'polling');
      const carol = await connectUser(c, carolId, 'Carol');

      assert.deepEqual(await ask(ann, 'room:join', { roomId }), { ok: true });
      await noneMatching(ann, 'room:userJoined', () => true, 0);
      assert.deepEqual(await ask(bob, 'room:join', { roomId }), { ok: true });
      assert.deepEqual(await ann.inbox.take('room:userJoined'), [{ roomId, userId: bobId, name: 'Bob' }]);

      assert.deepEqual(await ask(bob, 'room:leave', { roomId }), { ok: true });
      assert.deepEqual(await ann.inbox.take('room:userLeft'), [{ roomId, userId: bobId }]);
      await sleep(QUIET_MS);
      for (const socket of [ann, bob, carol]) {
        assert.equal(socket.inbox.count('room:userJoined') + socket.inbox.count('room:userLeft'), 0, `nothing more for ${socket.id}`);
      }
      // After leaving, Bob can no longer write there.
      assert.deepEqual(await ask(bob, 'message:send', { roomId, text: 'hi' }), { ok: false, error: MEMBER_ERROR });
    });

    it('join and leave without an ack work too; joining twice or leaving a room one is not in tells nobody', async (t) => {
      const c = new Clients(server, t);
      const [annId, bobId, roomId] = [unique('ann'), unique('bob'), unique('room')];
      const ann = await connectUser(c, annId, 'Ann');
      const bob = await connectUser(c, bobId, 'Bob');
      await ask(ann, 'room:join', { roomId });
      bob.emit('room:join', { roomId });
      assert.deepEqual(await ann.inbox.take('room:userJoined'), [{ roomId, userId: bobId, name: 'Bob' }]);
      assert.deepEqual(await ask(bob, 'room:join', { roomId }), { ok: true });
      assert.deepEqual(await ask(bob, 'room:leave', { roomId: unique('elsewhere') }), { ok: true });
      await ann.inbox.none('room:userJoined', QUIET_MS);
      await ann.inbox.none('room:userLeft', 0);
      bob.emit('room:leave', { roomId });
      assert.deepEqual(await ann.inbox.take('room:userLeft'), [{ roomId, userId: bobId }]);
    });

    it('an invalid roomId is refused through the ack', async (t) => {
      const c = new Clients(server, t);
      const ann = await connectUser(c, unique('ann'), 'Ann');
      for (const payload of [{}, { roomId: '' }, { roomId: 12 }, { roomId: 'x'.repeat(129) }, 'lobby', null]) {
        assert.deepEqual(await ask(ann, 'room:join', payload), { ok: false, error: ROOM_ID_ERROR }, JSON.stringify(payload));
        assert.deepEqual(await ask(ann, 'room:leave', payload), { ok: false, error: ROOM_ID_ERROR }, JSON.stringify(payload));
      }
      assert.deepEqual(await ask(ann, 'room:join', { roomId: 'x'.repeat(128) }), { ok: true });
    });
  });

  describe('room messages', () => {
    it('message:send reaches the whole room, sender included, with {id, roomId, sender, text, createdAt}; ack {ok:true, id}', async (t) => {
      const c = new Clients(server, t);
      const [annId, bobId, carolId, roomId] = [unique('ann'), unique('bob'), unique('carol'), unique('room')];
      const ann = await connectUser(c, annId, 'Ann');
      const bob = await connectUser(c, bobId, 'Bob', 'polling');
      const carol = await connectUser(c, carolId, 'Carol');
      await ask(ann, 'room:join', { roomId });
      await ask(bob, 'room:join', { roomId });

      const text = 'Hello, room! ünïcödé ✓';
      const acked = await ask(ann, 'message:send', { roomId, text });
      const [atAnn] = await ann.inbox.take('message:received');
      const [atBob] = await bob.inbox.take('message:received');
      const { id, createdAt } = checkServerFields(atAnn);
      assert.deepEqual(acked, { ok: true, id });
      const expected = { id, roomId, sender: { id: annId, name: 'Ann' }, text, createdAt };
      assert.deepEqual(atAnn, expected);
      assert.deepEqual(atBob, expected);
      await carol.inbox.none('message:received', QUIET_MS);
      assert.equal(ann.inbox.count('message:received') + bob.inbox.count('message:received'), 0, 'delivered once');

      // Without an ack the message goes out just the same; ids keep growing.
      bob.emit('message:send', { roomId, text: 'reply' });
      const [second] = await ann.inbox.take('message:received');
      assert.ok(second.id > id, `id ${second.id} after ${id}`);
      assert.deepEqual(second, { id: second.id, roomId, sender: { id: bobId, name: 'Bob' }, text: 'reply', createdAt: second.createdAt });
      assert.deepEqual(await bob.inbox.take('message:received'), [second]);
    });

    it('text is 1 to 2000 bytes (UTF-8 bytes, not characters)', async (t) => {
      const c = new Clients(server, t);
      const roomId = unique('room');
      const ann = await connectUser(c, unique('ann'), 'Ann');
      await ask(ann, 'room:join', { roomId });
      const longest = 'é'.repeat(1000); // 2000 bytes
      const accepted = await ask(ann, 'message:send', { roomId, text: longest });
      assert.equal(accepted.ok, true);
      assert.equal((await ann.inbox.take('message:received'))[0].text, longest);
      for (const text of [longest + 'x', 'x'.repeat(2001), '', undefined, 5, ['a']]) {
        assert.deepEqual(await ask(ann, 'message:send', { roomId, text }), { ok: false, error: TEXT_ERROR }, JSON.stringify(text)?.slice(0, 20));
      }
      await ann.inbox.none('message:received', QUIET_MS);
    });

    it('errors come through the ack when one is asked for', async (t) => {
      const c = new Clients(server, t);
      const [roomId, otherRoom] = [unique('room'), unique('room')];
      const ann = await connectUser(c, unique('ann'), 'Ann');
      const bob = await connectUser(c, unique('bob'), 'Bob');
      await ask(ann, 'room:join', { roomId });
      await ask(bob, 'room:join', { roomId: otherRoom });
      assert.deepEqual(await ask(ann, 'message:send', { text: 'no room' }), { ok: false, error: ROOM_ID_ERROR });
      assert.deepEqual(await ask(ann, 'message:send', { roomId: '', text: 'empty room' }), { ok: false, error: ROOM_ID_ERROR });
      assert.deepEqual(await ask(ann, 'message:send', 'not an object'), { ok: false, error: ROOM_ID_ERROR });
      assert.deepEqual(await ask(ann, 'message:send', { roomId: otherRoom, text: 'not a member' }), { ok: false, error: MEMBER_ERROR });
      await bob.inbox.none('message:received', QUIET_MS);
      assert.equal(ann.inbox.count('message:error'), 0, 'no message:error when an ack was asked for');
    });

    it('without an ack, errors come as a message:error {message} event', async (t) => {
      const c = new Clients(server, t);
      const [roomId, otherRoom] = [unique('room'), unique('room')];
      const ann = await connectUser(c, unique('ann'), 'Ann');
      const bob = await connectUser(c, unique('bob'), 'Bob');
      await ask(ann, 'room:join', { roomId });
      await ask(bob, 'room:join', { roomId: otherRoom });
      ann.emit('message:send', { roomId, text: '' });
      assert.deepEqual(await ann.inbox.take('message:error'), [{ message: TEXT_ERROR }]);
      ann.emit('message:send', { text: 'hi' });
      assert.deepEqual(await ann.inbox.take('message:error'), [{ message: ROOM_ID_ERROR }]);
      ann.emit('message:send', { roomId: otherRoom, text: 'hi' });
      assert.deepEqual(await ann.inbox.take('message:error'), [{ message: MEMBER_ERROR }]);
      await bob.inbox.none('message:received', QUIET_MS);
      await ann.inbox.none('message:received', 0);
    });
  });

  describe('direct messages', () => {
    it('dm:send reaches every tab of the recipient and the sender once, with {id, senderId, recipientId, text, createdAt}', async (t) => {
      const c = new Clients(server, t);
      const [annId, bobId, carolId] = [unique('ann'), unique('bob'), unique('carol')];
      const ann = await connectUser(c, annId, 'Ann');
      const bobTab1 = await connectUser(c, bobId, 'Bob');
      const bobTab2 = await connectUser(c, bobId, 'Bob', 'polling');
      const carol = await connectUser(c, carolId, 'Carol');

      const acked = await ask(ann, 'dm:send', { recipientId: bobId, text: 'psst' });
      const [atAnn] = await ann.inbox.take('dm:received');
      const { id, createdAt } = checkServerFields(atAnn);
      assert.deepEqual(acked, { ok: true, id });
      const expected = { id, senderId: annId, recipientId: bobId, text: 'psst', createdAt };
      assert.deepEqual(atAnn, expected);
      assert.deepEqual(await bobTab1.inbox.take('dm:received'), [expected]);
      assert.deepEqual(await bobTab2.inbox.take('dm:received'), [expected]);
      await carol.inbox.none('dm:received', QUIET_MS);
      for (const socket of [ann, bobTab1, bobTab2]) assert.equal(socket.inbox.count('dm:received'), 0, 'delivered once');

      // Without an ack, and to oneself: still exactly once.
      ann.emit('dm:send', { recipientId: annId, text: 'memo' });
      const [memo] = await ann.inbox.take('dm:received');
      assert.deepEqual(memo, { id: memo.id, senderId: annId, recipientId: annId, text: 'memo', createdAt: memo.createdAt });
      await ann.inbox.none('dm:received', QUIET_MS);
    });

    it('an unknown or offline recipient gets dm:error {message:"Recipient not found"} (or the ack, when asked)', async (t) => {
      const c = new Clients(server, t);
      const ann = await connectUser(c, unique('ann'), 'Ann');
      const nobody = unique('nobody');
      ann.emit('dm:send', { recipientId: nobody, text: 'hello?' });
      assert.deepEqual(await ann.inbox.take('dm:error'), [{ message: 'Recipient not found' }]);
      ann.emit('dm:send', { text: 'to whom?' });
      assert.deepEqual(await ann.inbox.take('dm:error'), [{ message: 'Recipient not found' }]);
      assert.deepEqual(await ask(ann, 'dm:send', { recipientId: nobody, text: 'hello?' }), { ok: false, error: 'Recipient not found' });
      await ann.inbox.none('dm:received', QUIET_MS);
      assert.equal(ann.inbox.count('dm:error'), 0);
    });

    it('dm text is validated as room text', async (t) => {
      const c = new Clients(server, t);
      const ann = await connectUser(c, unique('ann'), 'Ann');
      const bobId = unique('bob');
      const bob = await connectUser(c, bobId, 'Bob');
      assert.deepEqual(await ask(ann, 'dm:send', { recipientId: bobId, text: '' }), { ok: false, error: TEXT_ERROR });
      ann.emit('dm:send', { recipientId: bobId, text: 'x'.repeat(2001) });
      assert.deepEqual(await ann.inbox.take('dm:error'), [{ message: TEXT_ERROR }]);
      await bob.inbox.none('dm:received', QUIET_MS);
    });
  });

  describe('typing', () => {
    it('typing:start / typing:stop reach the others in the room only, as typing:update', async (t) => {
      const c = new Clients(server, t);
      const [annId, bobId, roomId] = [unique('ann'), unique('bob'), unique('room')];
      const ann = await connectUser(c, annId, 'Ann');
      const bob = await connectUser(c, bobId, 'Bob', 'polling');
      const carol = await connectUser(c, unique('carol'), 'Carol');
      await ask(ann, 'room:join', { roomId });
      await ask(bob, 'room:join', { roomId });

      ann.emit('typing:start', { roomId });
      assert.deepEqual(await bob.inbox.take('typing:update'), [{ roomId, userId: annId, name: 'Ann', isTyping: true }]);
      assert.deepEqual(await ask(ann, 'typing:stop', { roomId }), { ok: true });
      assert.deepEqual(await bob.inbox.take('typing:update'), [{ roomId, userId: annId, name: 'Ann', isTyping: false }]);
      await ann.inbox.none('typing:update', QUIET_MS);
      await carol.inbox.none('typing:update', 0);
      await bob.inbox.none('typing:update', 0);
    });

    it('typing in a room one is not in goes nowhere', async (t) => {
      const c = new Clients(server, t);
      const roomId = unique('room');
      const ann = await connectUser(c, unique('ann'), 'Ann');
      const bob = await connectUser(c, unique('bob'), 'Bob');
      await ask(bob, 'room:join', { roomId });
      ann.emit('typing:start', { roomId });
      assert.deepEqual(await ask(ann, 'typing:stop', { roomId }), { ok: false, error: MEMBER_ERROR });
      await bob.inbox.none('typing:update', QUIET_MS);
    });
  });
});

describe('chat example shutdown', { skip: SKIP }, () => {
  for (const signal of ['SIGTERM', 'SIGINT']) {
    it(`${signal} with clients connected closes them and exits 0`, async (t) => {
      const server = await startServer(splitCommand(COMMAND));
      t.after(() => server.stop());
      const c = new Clients(server, t);
      const roomId = unique('room');
      const ann = await connectUser(c, unique('ann'), 'Ann');
      const bob = await connectUser(c, unique('bob'), 'Bob', 'polling');
      await ask(ann, 'room:join', { roomId });
      await ask(bob, 'room:join', { roomId });
      await ask(ann, 'message:send', { roomId, text: 'bye' });

      const exited = new Promise((resolve) => server.child.once('exit', (code, sig) => resolve({ code, signal: sig })));
      process.kill(server.child.pid, signal);
      const timer = setTimeout(() => server.child.kill('SIGKILL'), 5000);
      const status = await exited.finally(() => clearTimeout(timer));
      assert.deepEqual(status, { code: 0, signal: null }, `exit status; stderr:\n${server.stderr}`);
      await ann.inbox.take('disconnect');
      await bob.inbox.take('disconnect');
    });
  }
});
