// Users who never connected (issue 11, item 5) without a database statement: the back end
// registers them through PUT /users/{userId}. A registered user can receive a DM before
// opening the app; a token that carries only {id} gets the registered profile as its sender.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { requireBin, tempDir, baseConfig, startDaemon, makeUser, connectAs, publicUser, unique } from '../lib/daemon.js';
import { ask, Clients } from '../lib/sio.js';

describe('PUT /users/{userId}', () => {
  let daemon;
  before(async () => {
    requireBin();
    const dir = tempDir('users');
    daemon = await startDaemon(dir, baseConfig(dir));
  });
  after(async () => {
    await daemon?.stopChecked();
  });

  it('a DM to a user the back end registered, who never connected', async (t) => {
    const ann = makeUser('Ann');
    const bobId = unique('bob');
    const socket = await connectAs(new Clients(daemon, t), ann);
    const before = await ask(socket, 'dm:send', { recipientId: bobId, text: 'too early' });
    assert.equal(before.ok, false);
    assert.equal(before.error.message, 'Recipient not found');
    const stored = await daemon.apiOk('PUT', `/users/${bobId}`, { firstName: 'Bob', lastName: 'Bobson' });
    assert.deepEqual(stored, { id: bobId, firstName: 'Bob', lastName: 'Bobson', role: null, avatar: null });
    const ack = await ask(socket, 'dm:send', { recipientId: bobId, text: 'hi Bob' });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    assert.deepEqual(ack.message.sender, publicUser(ann));
  });

  it('an {id}-only token gets the registered profile; null clears a field, absent keeps it', async (t) => {
    const id = unique('carol');
    await daemon.apiOk('PUT', `/users/${id}`, { firstName: 'Carol', lastName: 'Carolson', role: 'tutor', avatar: 'c.png' });
    await daemon.apiOk('PUT', `/users/${id}`, { avatar: null });
    const socket = await connectAs(new Clients(daemon, t), { id });
    const room = unique('room');
    assert.equal((await ask(socket, 'room:join', room)).ok, true);
    const ack = await ask(socket, 'message:send', { roomId: room, text: 'hello' });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    const received = ack.message;
    assert.deepEqual(received.sender, { id, firstName: 'Carol', lastName: 'Carolson', role: 'tutor', avatar: null });
  });

  it('refuses unknown fields and non-string values', async () => {
    const typo = await daemon.api('PUT', '/users/u1', { firstname: 'x' });
    assert.equal(typo.status, 400, typo.text);
    assert.equal(typo.json.error.code, 'invalid_field');
    const number = await daemon.api('PUT', '/users/u1', { firstName: 12 });
    assert.equal(number.status, 400, number.text);
  });
});
