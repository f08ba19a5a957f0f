// The Node.js side of the comparison (issue 5): socket.io 4.8 with the handlers that sioc's
// bench/sioc-bench.json serves, on the same namespaces and with the same options.
//
//   /      the bench driver's handlers (daemon/drivers/bench.c): echo, join, publish
//   /auth  the same, behind the JWT check of seeds 002/003 (the connect scenario)
//   /chat  StudyConnect (seeds 002 and 003): JWT in auth.token, presence, study rooms, chat
//          messages, direct messages, typing, stored in SQLite (better-sqlite3)
//
// Where the seeds are silent, it does what sioc's chat driver does (daemon/drivers/chat.c), so
// that both servers do the same work: the user comes from the token's claims (id or sub),
// rooms are created on first join, events are acknowledged with {ok:true,...} when the client
// asks, presence is per user (online with the first socket, offline with the last). The
// database has the durability sioc's store has (WAL, synchronous=FULL: a message is on disk
// before it is broadcast and acknowledged), with one transaction per statement, as the seeds'
// `await Message.create(...)` does.
//
// usage: node server.js [--port 3000] [--secret S] [--db FILE] [--redis redis://HOST:PORT]
//
// --redis: @socket.io/redis-adapter (createAdapter, classic mode) on two node-redis clients, for
// the cluster scenario; the packages come from tests/integration (its `npm ci`).
'use strict';

const http = require('node:http');
const { Server } = require('socket.io');
const jwt = require('jsonwebtoken');
const Database = require('better-sqlite3');

function option(name, fallback) {
  const index = process.argv.indexOf(`--${name}`);
  return index > 0 && index + 1 < process.argv.length ? process.argv[index + 1] : fallback;
}

const port = Number(option('port', '3000'));
const secret = option('secret', 'sioc-bench-secret-0123456789');
const databaseFile = option('db', 'node-bench.db');
const redisUrl = option('redis', null);

// ---- the database (the seeds' models: User, UserPresence, StudyRoom, RoomMember, Message) -----

const db = new Database(databaseFile);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.exec(`
  CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, firstName TEXT, lastName TEXT,
    role TEXT, avatar TEXT);
  CREATE TABLE IF NOT EXISTS presence (userId TEXT PRIMARY KEY, status TEXT,
    lastActivity TEXT);
  CREATE TABLE IF NOT EXISTS rooms (id TEXT PRIMARY KEY, name TEXT, isPrivate INTEGER DEFAULT 0,
    ownerId TEXT, createdAt TEXT);
  CREATE TABLE IF NOT EXISTS room_members (roomId TEXT, userId TEXT, joinedAt TEXT,
    PRIMARY KEY (roomId, userId));
  CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY AUTOINCREMENT, roomId TEXT,
    senderId TEXT, recipientId TEXT, text TEXT, type TEXT, createdAt TEXT);
`);

const sql = {
  upsertUser: db.prepare(`INSERT INTO users (id, firstName, lastName, role, avatar)
    VALUES (@id, @firstName, @lastName, @role, @avatar) ON CONFLICT(id) DO UPDATE SET
    firstName = excluded.firstName, lastName = excluded.lastName, role = excluded.role,
    avatar = excluded.avatar`),
  findUser: db.prepare('SELECT id, firstName, lastName, role, avatar FROM users WHERE id = ?'),
  upsertPresence: db.prepare(`INSERT INTO presence (userId, status, lastActivity)
    VALUES (?, ?, ?) ON CONFLICT(userId) DO UPDATE SET status = excluded.status,
    lastActivity = excluded.lastActivity`),
  findRoom: db.prepare('SELECT id, isPrivate FROM rooms WHERE id = ?'),
  createRoom: db.prepare(`INSERT OR IGNORE INTO rooms (id, name, ownerId, createdAt)
    VALUES (?, ?, ?, ?)`),
  isMember: db.prepare('SELECT 1 FROM room_members WHERE roomId = ? AND userId = ?'),
  addMember: db.prepare(`INSERT OR IGNORE INTO room_members (roomId, userId, joinedAt)
    VALUES (?, ?, ?)`),
  removeMember: db.prepare('DELETE FROM room_members WHERE roomId = ? AND userId = ?'),
  addMessage: db.prepare(`INSERT INTO messages (roomId, senderId, recipientId, text, type,
    createdAt) VALUES (@roomId, @senderId, @recipientId, @text, @type, @createdAt)`),
  findMessage: db.prepare(`SELECT m.id, m.createdAt, u.id AS senderId FROM messages m
    LEFT JOIN users u ON u.id = m.senderId WHERE m.id = ?`),
};

// ---- the server -------------------------------------------------------------------------------

const server = http.createServer();
const io = new Server(server, {
  pingInterval: 25000,
  pingTimeout: 20000,
  maxHttpBufferSize: 1e6,
  serveClient: false,
});

// ---- / and /auth: the bench driver's handlers ------------------------------------------------

function benchHandlers(socket) {
  socket.on('echo', (...args) => {
    const ack = typeof args[args.length - 1] === 'function' ? args.pop() : null;
    if (ack) ack(...args);
  });
  socket.on('join', (room, ack) => {
    if (typeof room !== 'string') {
      const error = { code: 'invalid_payload', message: 'join takes a room name' };
      if (typeof ack === 'function') ack({ ok: false, error });
      else socket.emit('bench:error', error);
      return;
    }
    socket.join(room);
    if (typeof ack === 'function') ack();
  });
  socket.on('publish', (room, event, ...args) => {
    if (typeof room !== 'string' || typeof event !== 'string') return;
    socket.nsp.to(room).emit(event, ...args);
  });
}

// The JWT check of seeds 002/003, with the user taken from the claims as sioc does.
function authenticate(socket, next) {
  const token = socket.handshake.auth && socket.handshake.auth.token;
  if (!token) return next(new Error('Authentication error: Token not provided'));
  try {
    const claims = jwt.verify(token, secret, { algorithms: ['HS256'] });
    const id = String(claims.id ?? claims.sub ?? '');
    if (!id) return next(new Error('Authentication error: User not found'));
    socket.user = {
      id,
      firstName: claims.firstName ?? null,
      lastName: claims.lastName ?? null,
      role: claims.role ?? null,
      avatar: claims.avatar ?? null,
    };
    return next();
  } catch (error) {
    return next(new Error(`Authentication error: ${error.message}`));
  }
}

io.of('/').on('connection', benchHandlers);
io.of('/auth').use(authenticate).on('connection', benchHandlers);

// ---- /chat: StudyConnect ----------------------------------------------------------------------

const chat = io.of('/chat');
const socketsPerUser = new Map();

function reply(socket, ack, errorEvent, code, message) {
  const error = { code, message };
  if (typeof ack === 'function') ack({ ok: false, error });
  else socket.emit(errorEvent, error);
}

function roomIdOf(payload) {
  const id = payload !== null && typeof payload === 'object' ? payload.roomId : payload;
  if (typeof id === 'number' && Number.isInteger(id)) return String(id);
  if (typeof id === 'string' && id.length > 0 && Buffer.byteLength(id) <= 128) return id;
  return null;
}

function onRoomJoin(socket, payload, ack) {
  const roomId = roomIdOf(payload);
  if (roomId === null)
    return reply(socket, ack, 'room:error', 'invalid_payload', 'roomId must be a string of 1 to 128 bytes or an integer');
  const now = new Date().toISOString();
  let room = sql.findRoom.get(roomId);
  if (!room) {
    sql.createRoom.run(roomId, roomId, socket.user.id, now);
    room = sql.findRoom.get(roomId);
  }
  if (room.isPrivate && !sql.isMember.get(roomId, socket.user.id))
    return reply(socket, ack, 'room:error', 'forbidden', 'Not a member of this private room');
  sql.addMember.run(roomId, socket.user.id, now);
  socket.join(`room:${roomId}`);
  socket.to(`room:${roomId}`).emit('room:userJoined', { roomId: payload?.roomId ?? payload, user: socket.user });
  if (typeof ack === 'function') ack({ ok: true, roomId, room: { id: roomId, isPrivate: !!room.isPrivate } });
}

function onRoomLeave(socket, payload, ack) {
  const roomId = roomIdOf(payload);
  if (roomId === null)
    return reply(socket, ack, 'room:error', 'invalid_payload', 'roomId must be a string of 1 to 128 bytes or an integer');
  socket.leave(`room:${roomId}`);
  sql.removeMember.run(roomId, socket.user.id);
  socket.to(`room:${roomId}`).emit('room:userLeft', { roomId, userId: socket.user.id });
  if (typeof ack === 'function') ack({ ok: true, roomId });
}

function checkText(socket, data, ack, errorEvent) {
  const text = data && data.text;
  if (typeof text !== 'string' || text.length === 0) {
    reply(socket, ack, errorEvent, 'invalid_payload', 'Message text is required');
    return false;
  }
  if (Buffer.byteLength(text) > 2000) {
    reply(socket, ack, errorEvent, 'too_long', 'Message too long');
    return false;
  }
  return true;
}

function onMessageSend(socket, data, ack) {
  if (!checkText(socket, data, ack, 'message:error')) return;
  const roomId = roomIdOf(data);
  if (roomId === null)
    return reply(socket, ack, 'message:error', 'invalid_payload', 'roomId must be a string of 1 to 128 bytes or an integer');
  if (!socket.rooms.has(`room:${roomId}`))
    return reply(socket, ack, 'message:error', 'forbidden', 'Join the room first');
  // Seed 003: Message.create, then Message.findByPk with its sender, then the broadcast.
  const created = sql.addMessage.run({
    roomId, senderId: socket.user.id, recipientId: null, text: data.text, type: 'room',
    createdAt: new Date().toISOString(),
  });
  const saved = sql.findMessage.get(created.lastInsertRowid);
  const message = {
    id: String(saved.id), roomId: data.roomId, sender: socket.user, text: data.text,
    createdAt: saved.createdAt,
  };
  chat.to(`room:${roomId}`).emit('message:received', message);
  if (typeof ack === 'function') ack({ ok: true, message });
}

function onDmSend(socket, data, ack) {
  if (!checkText(socket, data, ack, 'dm:error')) return;
  const recipientId = data.recipientId === undefined ? null : String(data.recipientId);
  if (!recipientId || !sql.findUser.get(recipientId))
    return reply(socket, ack, 'dm:error', 'not_found', 'Recipient not found');
  const created = sql.addMessage.run({
    roomId: null, senderId: socket.user.id, recipientId, text: data.text, type: 'direct',
    createdAt: new Date().toISOString(),
  });
  const saved = sql.findMessage.get(created.lastInsertRowid);
  const message = {
    id: String(saved.id), senderId: socket.user.id, recipientId, text: data.text,
    createdAt: saved.createdAt, sender: socket.user,
  };
  chat.to(`user:${recipientId}`).to(`user:${socket.user.id}`).emit('dm:received', message);
  if (typeof ack === 'function') ack({ ok: true, message });
}

function onTyping(socket, data, isTyping, ack) {
  const roomId = roomIdOf(data);
  if (roomId === null || !socket.rooms.has(`room:${roomId}`))
    return reply(socket, ack, 'typing:error', 'invalid_payload', 'roomId must name a joined room');
  socket.to(`room:${roomId}`).emit('typing:update', {
    roomId: data.roomId, userId: socket.user.id, firstName: socket.user.firstName, isTyping,
  });
  if (typeof ack === 'function') ack({ ok: true });
}

function setPresence(socket, status) {
  sql.upsertPresence.run(socket.user.id, status, new Date().toISOString());
  socket.broadcast.emit('user:status', { userId: socket.user.id, status });
}

chat.use(authenticate);
chat.use((socket, next) => {
  sql.upsertUser.run(socket.user);
  next();
});
chat.on('connection', (socket) => {
  const count = (socketsPerUser.get(socket.user.id) || 0) + 1;
  socketsPerUser.set(socket.user.id, count);
  socket.join(`user:${socket.user.id}`);
  if (count === 1) setPresence(socket, 'online');
  socket.on('room:join', (payload, ack) => onRoomJoin(socket, payload, ack));
  socket.on('room:leave', (payload, ack) => onRoomLeave(socket, payload, ack));
  socket.on('message:send', (data, ack) => onMessageSend(socket, data, ack));
  socket.on('dm:send', (data, ack) => onDmSend(socket, data, ack));
  socket.on('typing:start', (data, ack) => onTyping(socket, data, true, ack));
  socket.on('typing:stop', (data, ack) => onTyping(socket, data, false, ack));
  socket.on('disconnect', () => {
    const left = socketsPerUser.get(socket.user.id) - 1;
    if (left > 0) return socketsPerUser.set(socket.user.id, left);
    socketsPerUser.delete(socket.user.id);
    setPresence(socket, 'offline');
  });
});

async function listen() {
  if (redisUrl) {
    const { createRequire } = require('node:module');
    const path = require('node:path');
    const fromTests = createRequire(path.join(__dirname, '../../tests/integration/package.json'));
    const { createClient } = fromTests('redis');
    const { createAdapter } = fromTests('@socket.io/redis-adapter');
    const pubClient = createClient({ url: redisUrl });
    const subClient = pubClient.duplicate();
    pubClient.on('error', () => {});
    subClient.on('error', () => {});
    await Promise.all([pubClient.connect(), subClient.connect()]);
    io.adapter(createAdapter(pubClient, subClient));
  }
  server.listen(port, '127.0.0.1', () => {
    console.log(`listening on 127.0.0.1:${server.address().port}`);
  });
}
listen();

function stop() {
  io.close();
  server.close();
  db.close();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
