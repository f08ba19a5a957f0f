// The daemon with `allowEIO3`: a socket.io-client 2.x front end on a chat channel outside "/",
// whose socket id is Node's "<namespace>#<engine id>" (longer than a v4 id). Events that wait on
// the store are answered to that socket (the driver keeps the whole id, not a truncated one).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import ioV2 from 'socket.io-client-v2';
import { requireBin, tempDir, baseConfig, startDaemon, makeUser, tokenFor, unique } from '../lib/daemon.js';

const ask = (socket, event, ...args) => new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error(`no ack to ${event} within 5 s`)), 5000);
  socket.emit(event, ...args, (answer) => { clearTimeout(timer); resolve(answer); });
});

describe('daemon with allowEIO3: socket.io-client 2 on a channel outside "/"', () => {
  let daemon;
  const sockets = [];
  before(async () => {
    requireBin();
    const dir = tempDir('eio3');
    daemon = await startDaemon(dir, baseConfig(dir, {
      allowEIO3: true,
      channels: { '/study': { driver: 'chat', auth: 'jwt' } },
    }));
  });
  after(async () => {
    for (const socket of sockets) socket.close();
    await daemon?.stopChecked();
  });

  for (const transports of [['websocket'], ['polling']]) {
    it(`${transports[0]}: room:join and message:send are acknowledged after the store, and message:received comes`, async () => {
      const ann = makeUser('Ann');
      const room = { id: unique('algebra') }; // created by its first join (autoCreateRooms)
      const socket = ioV2(`http://127.0.0.1:${daemon.port}/study`, {
        query: { token: tokenFor(ann) }, transports, forceNew: true, reconnection: false,
      });
      sockets.push(socket);
      await once(socket, 'connect');
      assert.equal(socket.id, `/study#${socket.io.engine.id}`, 'Node\'s v2 socket id');
      const joined = await ask(socket, 'room:join', room.id);
      assert.equal(joined.ok, true, JSON.stringify(joined));
      const received = once(socket, 'message:received');
      const acked = await ask(socket, 'message:send', { roomId: room.id, text: 'from a 2.x client' });
      assert.equal(acked.ok, true, JSON.stringify(acked));
      const [message] = await received;
      assert.deepEqual(acked.message, message);
      assert.equal(message.text, 'from a 2.x client');
      assert.equal(message.sender.id, ann.id);
    });
  }
});
