// The daemon's life: SIGTERM with clients connected (they are disconnected,
// the process exits 0, writes in flight are finished), and what the SQLite
// store keeps across a restart on the same file: rooms, private membership,
// messages and their history, users (a DM to an offline user), presence.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  requireBin, tempDir, baseConfig, startDaemon, makeUser, publicUser, connectAs, presenceOf, tokenFor, sleep,
  createRoom, roomMessages, ISO_RE,
} from '../lib/daemon.js';
import { ask, Clients } from '../lib/sio.js';

/** SIGTERM and wait for the exit (SIGKILL after 5 s). */
async function terminate(daemon) {
  process.kill(daemon.child.pid, 'SIGTERM');
  const timer = setTimeout(() => daemon.child.kill('SIGKILL'), 5000);
  try {
    return await daemon.exited;
  } finally {
    clearTimeout(timer);
  }
}

describe('SIGTERM and restart', () => {
  let dir;
  let config;
  let first;
  let second;
  const ann = makeUser('Ann');
  const bob = makeUser('Bob');
  const carol = makeUser('Carol');
  const state = {};

  before(async () => {
    requireBin();
    dir = tempDir('persist');
    config = baseConfig(dir, { channels: { '/': { driver: 'chat', auth: 'jwt' } } });
    first = await startDaemon(dir, config);
  });
  after(async () => {
    state.reconnecting?.close();
    await first?.stop();
    await second?.stop();
  });

  it('first run: rooms, private membership, messages; a user who goes offline', async (t) => {
    const c = first.clients(t);
    state.room = await createRoom(first, { name: 'Persistent', ownerId: ann.id });
    state.privateRoom = await createRoom(first, { name: 'Private', isPrivate: true, ownerId: ann.id });
    await first.apiOk('POST', `/rooms/${state.privateRoom.id}/members`, { userId: bob.id });
    const annSocket = await connectAs(c, ann);
    const bobSocket = await connectAs(c, bob);
    const carolSocket = await connectAs(c, carol);
    for (const s of [annSocket, bobSocket]) assert.equal((await ask(s, 'room:join', state.room.id)).ok, true);
    assert.equal((await ask(bobSocket, 'room:join', state.privateRoom.id)).ok, true);
    state.messages = [];
    for (const [socket, text] of [[annSocket, 'first'], [bobSocket, 'second'], [annSocket, 'third']]) {
      const ack = await ask(socket, 'message:send', { roomId: state.room.id, text });
      assert.equal(ack.ok, true);
      state.messages.push(ack.message);
    }
    state.privateMessage = (await ask(bobSocket, 'message:send', { roomId: state.privateRoom.id, text: 'secret' })).message;
    carolSocket.disconnect();
    state.carolPresence = await presenceOf(first, carol.id);
    assert.equal(state.carolPresence.status, 'offline');
  });

  it('SIGTERM with clients connected: every client is disconnected, writes in flight finish, exit 0', async (t) => {
    const c = first.clients(t);
    const annSocket = await connectAs(c, ann);
    const bobSocket = await connectAs(c, bob, { mode: 'polling' });
    // A client as the seeds make it: socket.io-client's automatic reconnection on.
    const reconnecting = new Clients(first);
    state.reconnecting = reconnecting;
    const carolSocket = await connectAs(reconnecting, carol, {
      managerOpts: { reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 200, randomizationFactor: 0 },
    });
    state.carolSocket = carolSocket;
    await ask(annSocket, 'room:join', state.room.id);
    await ask(carolSocket, 'room:join', state.room.id);
    // A raw Engine.IO polling session, connected last and idle: its GET is pending.
    const raw = await c.raw('polling');
    await raw.connect('/', { token: tokenFor(makeUser('Raw')) });
    await sleep(100);
    // Messages still on their way to the store when the signal comes.
    const acks = [];
    for (let i = 0; i < 5; i++) {
      acks.push(ask(annSocket, 'message:send', { roomId: state.room.id, text: `late ${i}` }).catch((e) => ({ lost: e.message })));
    }
    const status = await terminate(first);
    // What was acknowledged before the end (the next test checks it was stored).
    state.late = (await Promise.all(acks)).filter((a) => a.ok).map((a) => a.message);
    assert.deepEqual(status, { code: 0, signal: null }, `exit status after SIGTERM; stderr:\n${first.stderr}`);
    assert.doesNotMatch(first.stderr, /ERROR: (Address|Leak)Sanitizer|runtime error:/);
    // Like Node's io.close(): the transport is closed, so socket.io-client reconnects by itself
    // once the daemon is back (an "io server disconnect" would keep it away for good).
    const [annReason] = await annSocket.inbox.take('disconnect');
    const [carolReason] = await carolSocket.inbox.take('disconnect');
    assert.deepEqual([annReason, carolReason], ['transport close', 'transport close'], 'WebSocket clients see the close');
    // A polling client between two GETs cannot be told; one with a GET pending gets the close packet.
    const [bobReason] = await bobSocket.inbox.take('disconnect');
    assert.ok(['transport close', 'transport error'].includes(bobReason), bobReason);
    assert.deepEqual(await raw.waitClosed(), { how: 'close-packet' });
  });

  it('second run on the same database (and port): rooms, membership, messages and history are still there', async (t) => {
    // The same Socket.IO port, so that the reconnecting client finds the daemon again.
    second = await startDaemon(dir, { ...config, listen: { host: '127.0.0.1', port: first.port } });
    const c = second.clients(t);
    assert.deepEqual(await second.apiOk('GET', `/rooms/${state.room.id}`), state.room);
    assert.deepEqual(await second.apiOk('GET', `/rooms/${state.privateRoom.id}`), state.privateRoom);

    // Every acknowledged message is stored, those acknowledged during the shutdown too.
    const stored = await roomMessages(second, state.room.id);
    const expected = [...state.messages, ...state.late].map((m) => ({ id: m.id, roomId: m.roomId, senderId: m.sender.id, text: m.text, createdAt: m.createdAt }));
    assert.deepEqual(stored.slice(0, expected.length), expected);
    for (const m of stored.slice(expected.length)) assert.match(m.text, /^late \d$/, 'only the late ones were possibly stored without an ack');

    // room:history after the restart, as a reconnecting client catches up.
    const bobSocket = await connectAs(c, bob);
    const history = await ask(bobSocket, 'room:history', { roomId: state.room.id, limit: 3 });
    assert.equal(history.ok, true);
    const lastThree = stored.slice(-3).map((m) => ({ id: m.id, roomId: state.room.id, sender: publicUser(m.senderId === ann.id ? ann : bob), text: m.text, createdAt: m.createdAt }));
    assert.deepEqual(history.messages, lastThree);

    // The seeds' client reconnected by itself and catches up on what it missed.
    const carolSocket = state.carolSocket;
    await carolSocket.inbox.take('connect', 5000);
    assert.equal((await ask(carolSocket, 'room:join', state.room.id)).ok, true);
    assert.deepEqual((await ask(carolSocket, 'room:history', { roomId: state.room.id, limit: 3 })).messages, lastThree);

    // Private membership survived: Bob may enter, Carol may not.
    assert.equal((await ask(bobSocket, 'room:join', state.privateRoom.id)).ok, true);
    assert.deepEqual((await ask(bobSocket, 'room:history', { roomId: state.privateRoom.id })).messages, [state.privateMessage]);
    assert.deepEqual(await ask(carolSocket, 'room:join', state.privateRoom.id), { ok: false, error: { code: 'forbidden', message: 'Not a member of this private room' } });

    // Users survived: a DM to Ann, who has not connected to this run, is accepted.
    const dm = await ask(carolSocket, 'dm:send', { recipientId: ann.id, text: 'after the restart' });
    assert.equal(dm.ok, true, JSON.stringify(dm));
  });

  it('presence survived: lastActivity is kept across the restart; a user never seen has none', async () => {
    const carolNow = await presenceOf(second, carol.id);
    assert.match(carolNow.lastActivity, ISO_RE);
    assert.ok(carolNow.lastActivity >= state.carolPresence.lastActivity);
    const annNow = await presenceOf(second, ann.id);
    assert.equal(annNow.status, 'offline', 'Ann has not connected to the second run');
    assert.match(annNow.lastActivity, ISO_RE, "Ann's presence from the first run");
    assert.equal((await presenceOf(second, makeUser('Dave').id)).lastActivity, null);
  });

  it('the second run stops cleanly too', async () => {
    await second.stopChecked();
    second = null;
  });
});
