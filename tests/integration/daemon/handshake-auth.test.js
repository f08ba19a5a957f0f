// What a daemon socket keeps of its CONNECT's auth (auth.keepHandshakeAuth, docs/config.md), as a
// Node socket.io 4.8 node of the same cluster sees it through fetchSockets(): two daemons and the
// Node reference (ref/sioc-echo.js with @socket.io/redis-adapter 8.3) on one redis-server, a
// chat channel on /custom. By default the daemon gives the auth back once its JWT middleware
// verified the token, so the Node node finds `handshake.auth` {}; with keepHandshakeAuth true the
// socket keeps it for its life, as Node does.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient } from 'redis';
import {
  requireBin, tempDir, baseConfig, startDaemon, makeUser, tokenFor, connectAs, haveRedis, startRedis,
} from '../lib/daemon.js';
import { startServer } from '../lib/server.js';
import { Clients, ask, until } from '../lib/sio.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const NODE_ECHO = [process.execPath, path.resolve(here, '../ref/sioc-echo.js')];
const NSP = '/custom'; // one of the reference's namespaces
const WAIT_MS = 10_000; // for something that must come: generous, the machine may be loaded

describe('the CONNECT\'s auth of a daemon socket, seen by a Node node of its cluster', { skip: !haveRedis() && 'redis-server is not installed' }, () => {
  let redis;
  let released; // the default
  let kept; // auth.keepHandshakeAuth: true
  let node;
  before(async () => {
    requireBin();
    redis = await startRedis();
    const dir = tempDir('handshake-auth');
    const config = (keep) => {
      const base = baseConfig(dir, {
        store: { driver: 'sqlite', path: path.join(dir, 'shared.db') },
        cluster: { redis: { url: `redis://127.0.0.1:${redis.port}` }, mode: 'classic', key: 'socket.io', requestsTimeoutMs: 1500 },
        channels: { [NSP]: { driver: 'chat', auth: 'jwt' } },
      });
      if (keep !== undefined) base.auth.keepHandshakeAuth = keep;
      return base;
    };
    released = await startDaemon(dir, config(undefined), { name: 'released.json' });
    kept = await startDaemon(dir, config(true), { name: 'kept.json' });
    node = await startServer(NODE_ECHO, ['--redis', `redis://127.0.0.1:${redis.port}`, '--redis-mode', 'classic',
      '--redis-requests-timeout', '1500']);
    // Every node subscribed to the namespace's request channel.
    const client = createClient({ socket: { host: '127.0.0.1', port: redis.port, reconnectStrategy: false } });
    client.on('error', () => {});
    await client.connect();
    try {
      const channel = `socket.io-request#${NSP}#`;
      await until(async () => (await client.pubSubNumSub(channel))[channel] === 3, 'three nodes subscribed', WAIT_MS);
    } finally {
      await client.quit();
    }
  });
  after(async () => {
    await released?.stopChecked();
    await kept?.stopChecked();
    await node?.stopChecked();
    await redis?.stop();
  });

  it('is {} once the daemon verified the token, and the token with keepHandshakeAuth', async (t) => {
    const [ann, bob] = [makeUser('Ann'), makeUser('Bob')];
    const annToken = tokenFor(ann);
    const bobToken = tokenFor(bob);
    const annSocket = await connectAs(released.clients(t), ann, { nsp: NSP, token: annToken });
    const bobSocket = await connectAs(kept.clients(t), bob, { nsp: NSP, token: bobToken });
    const asker = await new Clients(node, t).connect('websocket', NSP, { auth: { who: 'node' } });
    const list = await ask(asker, 'fetch-sockets', null);
    const authOf = (id) => list.find((s) => s.id === id)?.auth;
    assert.deepEqual(authOf(annSocket.id), {}, JSON.stringify(list));
    assert.deepEqual(authOf(bobSocket.id), { token: bobToken });
    assert.deepEqual(authOf(asker.id), { who: 'node' });
    // The user came through the token all the same (socket.data, from the chat driver's record).
    assert.equal(list.find((s) => s.id === annSocket.id)?.data?.user?.id, ann.id);
  });
});
