// Jitter (issue 9): 200 socket.io-client clients (100 over WebSocket, 100 over polling, in the
// same window) in 10 rooms on one sioc node, a publisher on a second node emitting 50 numbered
// messages a second, and every client's transport cut at random every 1.5 to 4 s. Both nodes
// keep recovery in Redis (--recovery --redis-mode streams). Every message must reach every member
// of its room exactly once and in order, and every reconnection must be recovered.
//
// The suite runs a 10 s window (RECOVERY_JITTER_MS to change it); bench/recovery.mjs runs the 60 s
// one the issue describes, beside Node socket.io with in-memory recovery.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.js';
import { isSioReference, siocEchoCommand } from '../lib/sio.js';
import { haveRedis, startRedis } from '../lib/daemon.js';
import { runJitter } from './jitter-load.js';

const DURATION_MS = Number(process.env.RECOVERY_JITTER_MS ?? 10_000);

describe('jitter: connections cut at random under a steady publisher, recovery in Redis', { skip: !haveRedis() && 'redis-server is not installed' }, () => {
  let redis;
  let nodes = [];
  before(async () => {
    redis = await startRedis();
    const flags = ['--recovery', '--redis', `redis://127.0.0.1:${redis.port}`, '--redis-mode', 'streams'];
    nodes = [await startServer(siocEchoCommand(), flags), await startServer(siocEchoCommand(), flags)];
  });
  after(async () => {
    for (const node of nodes) await node.stopChecked();
    await redis?.stop();
  });

  // Two Node nodes with @socket.io/redis-streams-adapter 0.3 do not hold this (measured on this
  // suite's 10 s window, 2026-12-07: 9,990 of 10,000 delivered, 18 duplicates, 5 out of order, 10
  // missing; docs/recovery.md): what is asserted here is sioc's guarantee, not Node's.
  const notNodes = isSioReference() && 'Node nodes lose and duplicate messages under this load (docs/recovery.md)';
  it(`200 clients over WebSocket and polling, cuts every 1.5-4 s for ${DURATION_MS / 1000} s: 100% delivered exactly once, in order, every reconnection recovered`, { timeout: DURATION_MS + 90_000, skip: notNodes }, async () => {
    const result = await runJitter({
      clientUrls: [nodes[0].url()], publisherUrl: nodes[1].url(), durationMs: DURATION_MS,
    });
    const summary = JSON.stringify(result);
    assert.ok(result.cuts >= result.clients * Math.floor(DURATION_MS / 6000), `every client cut, on average, every few seconds: ${summary}`);
    assert.equal(result.reconnections, result.cuts, `every cut reconnected: ${summary}`);
    assert.equal(result.notRecovered, 0, `every reconnection recovered: ${summary}`);
    assert.equal(result.duplicates, 0, `no duplicate: ${summary}`);
    assert.equal(result.outOfOrder, 0, `no gap or reordering: ${summary}`);
    assert.equal(result.missing, 0, `nothing missing: ${summary}`);
    assert.equal(result.received, result.expected, summary);
  });
});
