// One-connection floods that must not grow a server's memory without bound (issue 15):
// pipelined requests, pings without reading the pongs, pipelined requests without reading the
// answers. Each is bounded in bytes and time and talks to 127.0.0.1 only. Used by
// eio/floods.test.js (assertions) and bench/floods.mjs (figures).
import fs from 'node:fs';
import net from 'node:net';
import crypto from 'node:crypto';
import { encodeFrame, OP } from './ws.js';

/** Resident set size of a process in bytes (Linux), or null. */
export function rssBytes(pid) {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /^VmRSS:\s+(\d+) kB/m.exec(status);
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** True when pid runs with AddressSanitizer, whose quarantine keeps freed memory resident. */
export function isSanitized(pid) {
  try {
    return /libasan|libclang_rt\.asan/.test(fs.readFileSync(`/proc/${pid}/maps`, 'utf8'));
  } catch {
    return false;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function connect(port) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/**
 * Writes `total` bytes made of `unit` repeated, in 64 KiB writes, waiting for 'drain' (at most
 * `stallMs` each: a server that stopped reading is what we want to see). Returns the bytes the
 * kernel took. Stops at `deadline` (ms since the epoch).
 */
async function writeBounded(socket, unit, total, deadline, stallMs = 200) {
  const per = Math.max(1, Math.floor(65536 / unit.length));
  const chunk = Buffer.concat(Array.from({ length: per }, () => unit));
  let written = 0;
  while (written < total && Date.now() < deadline && !socket.destroyed) {
    const flushed = socket.write(chunk);
    written += chunk.length;
    if (!flushed) {
      const drained = await new Promise((resolve) => {
        const timer = setTimeout(() => resolve(false), stallMs);
        socket.once('drain', () => {
          clearTimeout(timer);
          resolve(true);
        });
      });
      if (!drained) break; /* the server stopped reading: flow control holds us back */
    }
  }
  return written - socket.writableLength;
}

/** Peak RSS of pid while `work` runs (sampled every 50 ms), and RSS before. */
async function measure(pid, work) {
  const before = rssBytes(pid);
  let peak = before;
  let running = true;
  const sampler = (async () => {
    while (running) {
      const now = rssBytes(pid);
      if (now !== null && now > peak) peak = now;
      await sleep(50);
    }
  })();
  let result;
  try {
    result = await work();
  } finally {
    running = false;
    await sampler;
  }
  const after = rssBytes(pid);
  if (after !== null && after > peak) peak = after;
  return { before, peak, growth: peak - before, ...result };
}

const TINY_REQUEST = Buffer.from('GET /engine.io/ HTTP/1.1\r\nHost:\r\n\r\n');

/**
 * One write of `count` tiny pipelined requests (a 64 KiB write holds about 2,300), answers
 * read. Resolves to { answered } once `count` responses came or after `timeoutMs`.
 */
export async function pipelinedRequests(port, { count = 2300, timeoutMs = 10_000, request = TINY_REQUEST } = {}) {
  const socket = await connect(port);
  let answered = 0;
  let tail = '';
  const done = new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    socket.on('data', (data) => {
      const text = tail + data.toString('latin1');
      answered += text.split('HTTP/1.1 ').length - 1;
      tail = text.slice(-9);
      if (tail.includes('HTTP/1.1 ')) tail = ''; /* counted already */
      if (answered >= count) {
        clearTimeout(timer);
        resolve();
      }
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.on('error', () => {});
  });
  socket.write(Buffer.concat(Array.from({ length: count }, () => request)));
  await done;
  socket.destroy();
  return { answered };
}

/** The three floods against a server process pid on port; figures in bytes. */
export async function pipelinedRequestsFlood(pid, port, opts = {}) {
  return measure(pid, () => pipelinedRequests(port, opts));
}

/**
 * A WebSocket client that sends pings (125-byte payloads) and never reads: up to `totalBytes`
 * or `durationMs`. `path` is the Engine.IO WebSocket URL.
 */
export async function pingFlood(pid, port, path, { totalBytes = 64 << 20, durationMs = 5000 } = {}) {
  const socket = await connect(port);
  socket.on('error', () => {});
  const key = crypto.randomBytes(16).toString('base64');
  socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: Upgrade\r\n` +
    `Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n\r\n`);
  await new Promise((resolve) => socket.once('data', resolve)); /* the 101 */
  socket.pause();
  const ping = encodeFrame({ opcode: OP.PING, payload: Buffer.alloc(125, 0x70) });
  try {
    return await measure(pid, async () => {
      const sent = await writeBounded(socket, ping, totalBytes, Date.now() + durationMs);
      await sleep(300); /* let the server handle what it read */
      return { sent };
    });
  } finally {
    socket.destroy();
  }
}

/** Pipelined requests written for `durationMs` (or `totalBytes`) while no answer is read. */
export async function pipelinedNoReadFlood(pid, port, { totalBytes = 64 << 20, durationMs = 5000, request = TINY_REQUEST } = {}) {
  const socket = await connect(port);
  socket.on('error', () => {});
  socket.pause();
  try {
    return await measure(pid, async () => {
      const sent = await writeBounded(socket, request, totalBytes, Date.now() + durationMs);
      await sleep(300);
      return { sent };
    });
  } finally {
    socket.destroy();
  }
}
