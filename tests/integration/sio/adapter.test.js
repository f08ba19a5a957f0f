// Server-side socket management as the clients see it: fetchSockets (id,
// rooms, data, handshake.auth; sorted by id), socketsJoin / socketsLeave,
// disconnectSockets(false / true), socket.data through fetchSockets.
// Fresh dynamic namespace per test; rooms are compared as sets.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSiocEcho, Clients, MODES, ask, freshNamespace, sleep, until } from '../lib/sio.js';

const QUIET_MS = 250;

function sortRooms(list) {
  return list.map((s) => ({ ...s, rooms: [...s.rooms].sort() }));
}

function expected(socket, { rooms = [], data = {}, auth = {} } = {}) {
  return { id: socket.id, rooms: [socket.id, ...rooms].sort(), data, auth };
}

const byId = (a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

describe('sio fetchSockets / socketsJoin / socketsLeave / disconnectSockets', () => {
  let server;
  before(async () => {
    server = await startSiocEcho([]);
  });
  after(async () => {
    await server?.stopChecked();
  });

  for (const mode of Object.keys(MODES)) {
    describe(mode, () => {
      it('fetch-sockets lists {id, rooms, data, auth} of the namespace sorted by id; with a room only its members', async (t) => {
        const c = new Clients(server, t);
        const nsp = freshNamespace();
        const a = await c.connect(mode, nsp, { auth: { who: 'a', room: 'r' } });
        const b = await c.connect(mode, nsp, { auth: { who: 'b' } });
        const d = await c.connect(mode, nsp);
        const all = await ask(b, 'fetch-sockets', null);
        assert.deepEqual(all.map((s) => s.id), [a.id, b.id, d.id].sort(), 'sorted by id');
        assert.deepEqual(sortRooms(all), [
          expected(a, { rooms: ['r'], auth: { who: 'a', room: 'r' } }),
          expected(b, { auth: { who: 'b' } }),
          expected(d),
        ].sort(byId));
        assert.deepEqual(sortRooms(await ask(d, 'fetch-sockets', 'r')), [expected(a, { rooms: ['r'], auth: { who: 'a', room: 'r' } })]);
        assert.deepEqual(await ask(d, 'fetch-sockets', 'empty-room'), []);
        // Other namespaces are not listed.
        const other = await c.connect(mode, freshNamespace());
        assert.deepEqual(sortRooms(await ask(other, 'fetch-sockets', null)), [expected(other)]);
      });

      it('socket.data set with set-data shows up in fetch-sockets', async (t) => {
        const c = new Clients(server, t);
        const nsp = freshNamespace();
        const a = await c.connect(mode, nsp);
        const b = await c.connect(mode, nsp);
        await ask(a, 'set-data', { name: 'alice', tags: ['x', 'y'], n: 1.25 });
        const list = await ask(b, 'fetch-sockets', null);
        const entryA = list.find((s) => s.id === a.id);
        const entryB = list.find((s) => s.id === b.id);
        assert.deepEqual(entryA.data, { name: 'alice', tags: ['x', 'y'], n: 1.25 });
        assert.deepEqual(entryB.data, {});
      });

      it('sockets-join: the sockets of a room join a target room; seen in rooms and by to-room', async (t) => {
        const c = new Clients(server, t);
        const nsp = freshNamespace();
        const a = await c.connect(mode, nsp, { auth: { room: 'src' } });
        const b = await c.connect(mode, nsp);
        assert.equal(await ask(b, 'sockets-join', 'src', 'dst'), undefined);
        assert.deepEqual((await ask(a, 'rooms')).sort(), [a.id, 'dst', 'src'].sort());
        assert.deepEqual(await ask(b, 'rooms'), [b.id]);
        b.emit('to-room', 'dst', 'dst-event', 1);
        assert.deepEqual(await a.inbox.take('dst-event'), [1]);

        // Every socket of a room; the sender too when it is a member.
        await ask(b, 'join', 'both');
        await ask(a, 'join', 'both');
        await ask(a, 'sockets-join', 'both', 'all-1');
        assert.deepEqual((await ask(b, 'rooms')).sort(), [b.id, 'all-1', 'both'].sort());
        assert.deepEqual((await ask(a, 'rooms')).sort(), [a.id, 'all-1', 'both', 'dst', 'src'].sort());
        // A socket id as the room: just that socket.
        await ask(a, 'sockets-join', b.id, 'only-b');
        assert.deepEqual((await ask(b, 'rooms')).sort(), [b.id, 'all-1', 'both', 'only-b'].sort());
        assert.ok(!(await ask(a, 'rooms')).includes('only-b'));
        await sleep(QUIET_MS);
        assert.equal(b.inbox.count('dst-event'), 0);
      });

      it('sockets-leave: the sockets leave the target room; events to it stop', async (t) => {
        const c = new Clients(server, t);
        const nsp = freshNamespace();
        const a = await c.connect(mode, nsp, { auth: { room: 'club' } });
        const b = await c.connect(mode, nsp, { auth: { room: 'club' } });
        const watcher = await c.connect(mode, nsp);
        await ask(a, 'join', 'keep');
        await ask(watcher, 'sockets-leave', 'keep', 'club');
        assert.deepEqual((await ask(a, 'rooms')).sort(), [a.id, 'keep'].sort());
        assert.deepEqual((await ask(b, 'rooms')).sort(), [b.id, 'club'].sort());
        await ask(watcher, 'sockets-leave', 'club', 'club');
        assert.deepEqual(await ask(b, 'rooms'), [b.id]);
        watcher.emit('to-room', 'club', 'club-event');
        watcher.emit('to-room', 'keep', 'keep-event');
        assert.deepEqual(await a.inbox.take('keep-event'), []);
        await sleep(QUIET_MS);
        assert.equal(a.inbox.count('club-event') + b.inbox.count('club-event'), 0);
      });

      it('disconnect-sockets(room, false): the members get "io server disconnect"; their other namespaces and other sockets stay', async (t) => {
        const c = new Clients(server, t);
        const nsp = freshNamespace();
        const m = c.manager(mode);
        const target = await c.connect(mode, nsp, { manager: m, auth: { room: 'doomed' } });
        const sibling = await c.connect(mode, '/custom', { manager: m });
        const bystander = await c.connect(mode, nsp);
        assert.equal(await ask(bystander, 'disconnect-sockets', 'doomed', false), undefined);
        assert.deepEqual(await target.inbox.take('disconnect'), ['io server disconnect', undefined]);
        assert.equal(target.connected, false);
        assert.equal(await ask(sibling, 'message-with-ack', 'sibling'), 'sibling');
        assert.equal(await ask(bystander, 'message-with-ack', 'bystander'), 'bystander');
        assert.deepEqual(sortRooms(await ask(bystander, 'fetch-sockets', null)), [expected(bystander)]);
        assert.equal(bystander.inbox.count('disconnect'), 0);
      });

      it('disconnect-sockets(room, true): the whole connection of each member is closed (all its namespaces)', async (t) => {
        const c = new Clients(server, t);
        const nsp = freshNamespace();
        const m = c.manager(mode);
        const target = await c.connect(mode, nsp, { manager: m, auth: { room: 'doomed' } });
        const sibling = await c.connect(mode, '/custom', { manager: m });
        const bystander = await c.connect(mode, nsp);
        await ask(bystander, 'disconnect-sockets', 'doomed', true);
        assert.deepEqual(await target.inbox.take('disconnect'), ['io server disconnect', undefined]);
        assert.deepEqual(await sibling.inbox.take('disconnect'), ['io server disconnect', undefined]);
        await until(() => m.engine?.readyState !== 'open', 'the Engine.IO connection to close');
        assert.equal(await ask(bystander, 'message-with-ack', 'bystander'), 'bystander');
      });

      it('disconnect-sockets(room, false) with the caller in the room: it gets its ack, then is disconnected too', async (t) => {
        const c = new Clients(server, t);
        const nsp = freshNamespace();
        const a = await c.connect(mode, nsp, { auth: { room: 'everyone' } });
        const b = await c.connect(mode, nsp, { auth: { room: 'everyone' } });
        assert.equal(await ask(a, 'disconnect-sockets', 'everyone', false), undefined);
        assert.deepEqual(await a.inbox.take('disconnect'), ['io server disconnect', undefined]);
        assert.deepEqual(await b.inbox.take('disconnect'), ['io server disconnect', undefined]);
        const fresh = await c.connect(mode, nsp);
        assert.deepEqual(sortRooms(await ask(fresh, 'fetch-sockets', null)), [expected(fresh)]);
      });
    });
  }
});
