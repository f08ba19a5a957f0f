// Issue 15 on `sioc serve`: both listeners survive pipelined requests (the API too), the API
// listener stops reading a client that does not read its answers, and SIGTERM with peers that
// neither read nor close is bounded by limits.shutdownTimeoutMs.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { requireBin, tempDir, baseConfig, startDaemon, API_KEY } from '../lib/daemon.js';
import { pipelinedRequests, pipelinedNoReadFlood, isSanitized } from '../lib/floods.js';
import { wsConnect } from '../lib/ws.js';

const HEALTH = Buffer.from('GET /health HTTP/1.1\r\nHost:\r\n\r\n');

describe('sioc serve under one hostile connection', () => {
  let daemon;
  before(async () => {
    requireBin();
    const dir = tempDir('hardening');
    daemon = await startDaemon(dir, baseConfig(dir, {
      api: { listen: { host: '127.0.0.1', port: 0 }, key: API_KEY },
      channels: { '/': { driver: 'chat', auth: 'jwt' } },
      limits: { maxBufferedBytes: 1 << 20 },
    }));
  });
  after(async () => {
    await daemon?.stopChecked();
  });

  it('the API answers 5,000 pipelined requests from one write, in full', async () => {
    const { answered } = await pipelinedRequests(daemon.apiPort, { count: 5000, request: HEALTH });
    assert.equal(answered, 5000);
    assert.ok(daemon.alive, daemon.describeExit());
  });

  it('the Socket.IO listener answers 5,000 pipelined requests from one write, in full', async () => {
    const request = Buffer.from('GET /socket.io/ HTTP/1.1\r\nHost:\r\n\r\n');
    const { answered } = await pipelinedRequests(daemon.port, { count: 5000, request });
    assert.equal(answered, 5000);
    assert.ok(daemon.alive, daemon.describeExit());
  });

  it('the API stops reading a client that never reads its answers', async () => {
    const result = await pipelinedNoReadFlood(daemon.child.pid, daemon.apiPort, { totalBytes: 32 << 20, durationMs: 3000, request: HEALTH });
    /* Each /health answer is about 150 bytes for 31 bytes asked: reading on would mean 150 MB. */
    if (!isSanitized(daemon.child.pid)) assert.ok(result.growth < 24 << 20, `RSS grew by ${result.growth} bytes`);
    assert.ok(result.sent < 30 << 20, `the daemon read ${result.sent} bytes without their answers leaving`);
    const res = await daemon.api('GET', '/health', undefined, { key: null });
    assert.equal(res.status, 200);
  });
});

describe('SIGTERM with peers that neither read nor close', () => {
  it('is bounded by limits.shutdownTimeoutMs', async () => {
    requireBin();
    const dir = tempDir('shutdown');
    const daemon = await startDaemon(dir, baseConfig(dir, {
      channels: { '/': { driver: 'chat', auth: 'jwt' } },
      limits: { shutdownTimeoutMs: 1000 },
    }));
    const peers = [];
    try {
      for (let i = 0; i < 20; i++) {
        const ws = await wsConnect(daemon.port, '/socket.io/?EIO=4&transport=websocket');
        assert.equal(ws.response.status, 101);
        ws.socket.pause();
        peers.push(ws);
      }
      const started = Date.now();
      process.kill(daemon.child.pid, 'SIGTERM');
      const exit = await Promise.race([daemon.exited, new Promise((resolve) => setTimeout(() => resolve(null), 4500))]);
      const took = Date.now() - started;
      assert.deepEqual(exit, { code: 0, signal: null }, `no clean exit within 4.5 s (${took} ms)`);
      assert.ok(took < 3000, `shutdown took ${took} ms with a 1000 ms bound`);
    } finally {
      for (const ws of peers) ws.close();
      await daemon.stop();
    }
  });
});
