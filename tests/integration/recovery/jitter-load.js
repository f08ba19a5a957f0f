// The jitter load of issue 9, shared by recovery/jitter.test.js and bench/recovery.mjs: clients
// (socket.io-client, half WebSocket, half polling) spread over rooms, a publisher emitting a
// numbered message to one room after the other at a steady rate, and every client's transport
// cut (engine.close()) at random every cutMinMs..cutMaxMs. Each client checks that its room's
// numbers arrive exactly once and in order; a reconnection that is not recovered is counted.
// Every loop is bounded in count and time.
import { Manager } from 'socket.io-client';

const RECONNECT = { reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 300, randomizationFactor: 0.5 };

function connectedOnce(socket, timeoutMs) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no connect within ' + timeoutMs + ' ms')), timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * clientUrls: where the clients connect (round robin); publisherUrl: the publisher's server.
 * Resolves to {published, expected, received, duplicates, outOfOrder, missing, cuts,
 * reconnections, notRecovered, ratio} once every client has every message or settleMs passed.
 */
export async function runJitter({
  clientUrls, publisherUrl, clients = 200, rooms = 10, rateHz = 50, durationMs = 10_000,
  cutMinMs = 1500, cutMaxMs = 4000, settleMs = 20_000, transports = ['websocket', 'polling'],
}) {
  const managers = [];
  const members = [];
  const opened = (url, transport, extra = {}) => {
    const manager = new Manager(url, { transports: [transport], timeout: 5000, ...extra });
    managers.push(manager);
    return manager;
  };
  try {
    for (let i = 0; i < clients; i++) {
      const room = `jitter-${i % rooms}`;
      const transport = transports[i % transports.length];
      const socket = opened(clientUrls[i % clientUrls.length], transport, RECONNECT).socket('/', { auth: { room } });
      const member = { socket, room, next: 0, received: 0, duplicates: 0, outOfOrder: 0, reconnections: 0, notRecovered: 0, cuts: 0 };
      socket.on('j', (seq) => {
        if (seq === member.next) {
          member.next++;
          member.received++;
        } else if (seq < member.next) {
          member.duplicates++;
        } else {
          member.outOfOrder++; // a gap: what came between is missing or comes later
          member.next = seq + 1;
        }
      });
      let first = true;
      socket.on('connect', () => {
        if (first) {
          first = false;
          return;
        }
        member.reconnections++;
        if (!socket.recovered) member.notRecovered++;
      });
      members.push(member);
      await connectedOnce(socket, 10_000);
    }
    const publisher = opened(publisherUrl, 'websocket').socket('/');
    await connectedOnce(publisher, 10_000);
    // Every member's room join happened at its connection: publish from now on.
    const seqs = new Map();
    let published = 0;
    let turn = 0;
    const started = Date.now();
    const cutTimers = new Set();
    let cutting = true;
    const scheduleCut = (member) => {
      const timer = setTimeout(() => {
        cutTimers.delete(timer);
        if (!cutting) return;
        if (member.socket.connected) {
          member.cuts++;
          member.socket.io.engine.close();
        }
        scheduleCut(member);
      }, cutMinMs + Math.random() * (cutMaxMs - cutMinMs));
      cutTimers.add(timer);
    };
    for (const member of members) scheduleCut(member);
    await new Promise((resolve) => {
      const tick = setInterval(() => {
        const due = Math.floor(((Date.now() - started) * rateHz) / 1000);
        while (published < due) {
          const room = `jitter-${turn++ % rooms}`;
          const seq = seqs.get(room) ?? 0;
          seqs.set(room, seq + 1);
          publisher.emit('to-room', room, 'j', seq);
          published++;
        }
        if (Date.now() - started >= durationMs) {
          clearInterval(tick);
          resolve();
        }
      }, 10);
    });
    cutting = false;
    for (const timer of cutTimers) clearTimeout(timer);
    // Settle: every member connected again and at the end of its room's numbers.
    const deadline = Date.now() + settleMs;
    while (Date.now() < deadline && members.some((m) => !m.socket.connected || m.next < (seqs.get(m.room) ?? 0))) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const sum = (key) => members.reduce((total, m) => total + m[key], 0);
    const expected = members.reduce((total, m) => total + (seqs.get(m.room) ?? 0), 0);
    const received = sum('received');
    return {
      clients, published, expected, received,
      duplicates: sum('duplicates'), outOfOrder: sum('outOfOrder'), missing: expected - received,
      cuts: sum('cuts'), reconnections: sum('reconnections'), notRecovered: sum('notRecovered'),
      ratio: expected > 0 ? received / expected : 0,
    };
  } finally {
    for (const manager of managers) {
      try {
        for (const socket of Object.values(manager.nsps ?? {})) socket.disconnect();
        manager._close?.();
        manager.engine?.close();
      } catch {
        // already closed
      }
    }
  }
}
