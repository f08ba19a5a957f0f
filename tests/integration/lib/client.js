// engine.io-client (Node) wrapped in promises with a message queue.
import { Socket } from 'engine.io-client';

export const MODES = {
  polling: { transports: ['polling'], upgrade: false },
  websocket: { transports: ['websocket'], upgrade: false },
  upgrade: { transports: ['polling', 'websocket'], upgrade: true },
};

/** Wraps an engine.io-client Socket: queued messages, counted pings, promises. */
export class EioClient {
  constructor(socket) {
    this.socket = socket;
    this.messages = [];
    this.waiters = [];
    this.pings = 0;
    this.closeReason = null;
    socket.on('message', (data) => {
      this.messages.push(data);
      this.wake();
    });
    socket.on('ping', () => this.pings++);
    socket.on('close', (reason) => {
      this.closeReason = reason;
      this.wake();
    });
  }

  wake() {
    for (const w of [...this.waiters]) w();
  }

  get sid() {
    return this.socket.id;
  }

  get transportName() {
    return this.socket.transport?.name;
  }

  send(data) {
    this.socket.send(data);
  }

  /** Resolve with the next `count` messages (rejects on close or timeout). */
  next(count = 1, timeoutMs = 5000) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        remove();
        reject(new Error(`got ${this.messages.length} of ${count} messages within ${timeoutMs} ms`));
      }, timeoutMs);
      const remove = () => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
      };
      const check = () => {
        if (this.messages.length >= count) {
          remove();
          resolve(this.messages.splice(0, count));
        } else if (this.closeReason) {
          remove();
          reject(new Error(`client closed (${this.closeReason}) after ${this.messages.length} of ${count} messages`));
        }
      };
      this.waiters.push(check);
      check();
    });
  }

  /** Resolve once the transport is websocket (after an upgrade). */
  upgraded(timeoutMs = 5000) {
    if (this.transportName === 'websocket') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no upgrade within ${timeoutMs} ms`)), timeoutMs);
      this.socket.once('upgrade', () => {
        clearTimeout(timer);
        resolve();
      });
      this.socket.once('upgradeError', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  close() {
    this.socket.close();
  }
}

/** Connect to `server` with a mode of MODES; resolves once open. */
export function openClient(server, mode, extra = {}, timeoutMs = 5000) {
  const socket = new Socket(`http://127.0.0.1:${server.port}`, { ...MODES[mode], ...extra });
  const client = new EioClient(socket);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error(`engine.io-client (${mode}) did not open within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('open', () => {
      clearTimeout(timer);
      resolve(client);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      socket.close();
      reject(err instanceof Error ? err : new Error(String(err)));
    });
  });
}
