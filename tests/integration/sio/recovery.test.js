// Connection state recovery (--recovery: maxDisconnectionDuration 120000,
// skipMiddlewares true). socket.io-client recovers by itself when the server
// sent a `pid` in its CONNECT reply and the client got at least one event
// carrying an offset: with recovery on, Node appends an offset (a string) to
// every EVENT it sends without an ack id — broadcasts *and* socket.emit()
// (stored as a broadcast to the socket's own room), not volatile ones — and
// the client sends {pid, offset: <last one seen>} in its CONNECT packet on
// reconnection.
//
// What triggers a recovery: the server must have seen a *recoverable*
// disconnection reason ("transport close", "transport error", "ping
// timeout", "forced close", ...). `socket.io.engine.close()` on the client
// gives "transport close" on the server and the Manager reconnects by
// itself; `socket.disconnect()` gives "client namespace disconnect", which
// is not recoverable.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSiocEcho, Clients, MODES, ask, sleep, parseConnect } from '../lib/sio.js';

const RECONNECT = { reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 200, randomizationFactor: 0 };

function once(socket, event, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${timeoutMs} ms`)), timeoutMs);
    socket.once(event, (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}

describe('sio connection state recovery (--recovery)', () => {
  let server;
  before(async () => {
    server = await startSiocEcho(['--recovery']);
  });
  after(async () => {
    await server?.stopChecked();
  });

  for (const mode of Object.keys(MODES)) {
    describe(mode, () => {
      it('every server event without ack carries an offset (a string) as its last argument; events with an ack do not', async (t) => {
        const c = new Clients(server, t);
        const a = await c.connect(mode, '/', { auth: { room: 'offsets' } });
        const [auth, authOffset] = await a.inbox.take('auth');
        assert.deepEqual(auth, { room: 'offsets' });
        assert.equal(typeof authOffset, 'string', 'socket.emit() is stored too: offset appended');
        a.emit('to-room', 'offsets', 'ev', 1);
        a.emit('to-room', 'offsets', 'ev', 2);
        const [first, second] = await a.inbox.takeN('ev', 2);
        assert.equal(first.length, 2);
        assert.equal(first[0], 1);
        assert.equal(typeof first[1], 'string');
        assert.equal(second[0], 2);
        assert.equal(typeof second[1], 'string');
        assert.notEqual(first[1], second[1], 'each event has its own offset');
        a.emit('message', 'x');
        const back = await a.inbox.take('message-back');
        assert.equal(back.length, 2);
        assert.equal(back[0], 'x');
        assert.equal(typeof back[1], 'string');
        // An event with an ack is not stored: no offset; acks never carry one.
        a.on('q', (...args) => args.pop()(args));
        assert.deepEqual(await ask(a, 'server-ack', 2000, 'q', 'y'), { response: [['y']] });
        assert.deepEqual(await ask(a, 'message-with-ack', 'z'), 'z');
        assert.equal(await ask(a, 'recovered'), false);
      });

      it('engine.close() → the client reconnects with the same id, recovered, rooms and data kept, missed events in order', async (t) => {
        const c = new Clients(server, t);
        const a = await c.connect(mode, '/', { auth: { room: 'news' }, managerOpts: RECONNECT });
        const b = await c.connect(mode, '/');
        const id = a.id;
        assert.equal(a.recovered, false);
        await ask(a, 'join', 'extra');
        await ask(a, 'set-data', { kept: true });
        b.emit('to-room', 'news', 'ev', 0);
        assert.equal((await a.inbox.take('ev'))[0], 0, 'a has an offset now');

        const reconnected = once(a, 'connect');
        a.io.engine.close();
        const [leftId, reason] = await b.inbox.takeMatching('left', (args) => args[0] === id);
        assert.equal(leftId, id);
        assert.equal(reason, 'transport close');
        b.emit('to-room', 'news', 'ev', 1);
        b.emit('to-room', 'extra', 'ev', 2);
        b.emit('to-room', 'elsewhere', 'ev', 'not for a');
        b.emit('to-rooms-except', { to: ['news', 'extra'], except: [] }, 'ev', 3);
        await ask(b, 'message-with-ack', 'sync');
        await reconnected;

        assert.equal(a.id, id, 'same id');
        assert.equal(a.recovered, true);
        assert.equal(await ask(a, 'recovered'), true);
        const missed = await a.inbox.takeN('ev', 3);
        assert.deepEqual(missed.map((args) => args[0]), [1, 2, 3], 'missed events, in order');
        for (const args of missed) assert.equal(typeof args[1], 'string');
        await sleep(100);
        assert.equal(a.inbox.count('ev'), 0, 'nothing else');
        assert.deepEqual((await ask(a, 'rooms')).sort(), [id, 'extra', 'news'].sort());
        assert.deepEqual(await ask(a, 'get-data'), { kept: true });
        // The connection handler ran again: a new `auth` event.
        assert.equal(a.inbox.count('auth'), 2);
        // Live events flow again.
        b.emit('to-room', 'news', 'ev', 4);
        assert.equal((await a.inbox.take('ev'))[0], 4);
      });

      it('socket.disconnect() then connect() is not recovered (new id, rooms gone)', async (t) => {
        const c = new Clients(server, t);
        const a = await c.connect(mode, '/', { managerOpts: RECONNECT });
        await ask(a, 'join', 'room-x');
        a.emit('to-room', 'room-x', 'ev', 0);
        await a.inbox.take('ev');
        const id = a.id;
        a.disconnect();
        const reconnected = once(a, 'connect');
        a.connect();
        await reconnected;
        assert.notEqual(a.id, id);
        assert.equal(a.recovered, false);
        assert.equal(await ask(a, 'recovered'), false);
        assert.deepEqual(await ask(a, 'rooms'), [a.id]);
      });
    });
  }

  for (const transport of ['polling', 'websocket']) {
    describe(`raw ${transport}`, () => {
      it('CONNECT reply is {"sid","pid"}; {pid, offset} unknown to the server → a new session (new sid and pid)', async (t) => {
        const c = new Clients(server, t);
        const raw = await c.raw(transport);
        const first = await raw.connect('/');
        assert.deepEqual(Object.keys(first), ['sid', 'pid']);
        assert.match(first.sid, /^[A-Za-z0-9_-]{20}$/);
        assert.match(first.pid, /^[A-Za-z0-9_-]{20}$/);
        assert.match(await raw.nextText(), /^2\["auth",\{\},"[^"]+"\]$/);

        const raw2 = await c.raw(transport);
        const auth = { pid: 'AAAAAAAAAAAAAAAAAAAA', offset: 'nope' };
        const second = await raw2.connect('/', auth);
        assert.notEqual(second.sid, first.sid);
        assert.notEqual(second.pid, auth.pid);
        assert.ok((await raw2.nextText()).startsWith(`2["auth",${JSON.stringify(auth)},"`));
        await raw2.send('421["recovered"]');
        assert.equal(await raw2.nextText(), '31[false]');
      });

      it('raw recovery on /custom: the missed events are sent first (offset appended), then the CONNECT reply with the same sid and pid', async (t) => {
        // /custom: no `left` broadcasts there, so the missed events are exactly ours.
        const c = new Clients(server, t);
        const sender = await c.connect('websocket', '/custom');
        const raw = await c.raw(transport);
        const { sid, pid } = await raw.connect('/custom', { room: 'wire' });
        assert.match(await raw.nextText(), /^2\/custom,\["auth",\{"room":"wire"\},"[^"]+"\]$/);
        sender.emit('to-room', 'wire', 'w', 0);
        const m0 = /^2\/custom,\["w",0,"([^"]+)"\]$/.exec(await raw.nextText());
        assert.ok(m0, 'broadcast with offset');
        const offset = m0[1];
        // End the session the way a dying transport would ("transport close").
        if (transport === 'polling') await raw.send('1');
        else raw.ws.sendClose(1000);
        const deadline = Date.now() + 3000;
        while ((await ask(sender, 'fetch-sockets', null)).some((s) => s.id === sid)) {
          assert.ok(Date.now() < deadline, 'the server did not notice the disconnection');
          await sleep(50);
        }
        sender.emit('to-room', 'wire', 'w', 1, { b: true });
        sender.emit('to-room', 'not-wire', 'w', 'not for us');
        sender.emit('to-room', sid, 'w', 2);
        await ask(sender, 'message-with-ack', 'sync');

        const again = await c.raw(transport);
        await again.send(`40/custom,${JSON.stringify({ pid, offset })}`);
        const packets = [await again.nextText(), await again.nextText(), await again.nextText(), await again.nextText()];
        assert.match(packets[0], /^2\/custom,\["w",1,\{"b":true\},"[^"]+"\]$/, 'the missed events first, in order');
        assert.match(packets[1], /^2\/custom,\["w",2,"[^"]+"\]$/);
        assert.deepEqual(parseConnect(packets[2], '/custom'), { sid, pid }, 'then the CONNECT reply: same sid and pid');
        assert.ok(packets[3].startsWith(`2/custom,["auth",${JSON.stringify({ pid, offset })},"`),
          `then the connection handler runs again: ${packets[3]}`);
        await again.send('42/custom,1["recovered"]');
        assert.equal(await again.nextText(), '3/custom,1[true]');
        await again.send('42/custom,2["rooms"]');
        const rooms = JSON.parse((await again.nextText()).slice('3/custom,2'.length))[0];
        assert.deepEqual(rooms.sort(), [sid, 'wire'].sort());
      });
    });
  }
});
