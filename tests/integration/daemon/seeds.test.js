// The seeds' own front-end code against `sioc serve` (issue 11): each flow is played with the
// client code the seed documents (daemon/seeds/*.js hold it as the seed gives it), so a change
// that breaks an unchanged front end fails here.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  requireBin, tempDir, baseConfig, startDaemon, tokenFor, sleep,
} from '../lib/daemon.js';
import SocketService from './seeds/studyconnect-client.js';

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
    daemon = await startDaemon(dir, baseConfig(dir));
    process.env.REACT_APP_API_URL = daemon.url('');
  });
  after(async () => {
    for (const service of services) service.disconnect();
    await daemon?.stopChecked();
  });

  /** A browser logged in as user: the seed's init(token), connected. */
  async function login(user) {
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
    await sleep(100);
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

    // Read back from the store (history), ids are the store's text for now: not asserted here.
  });
});
