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
// usage: node server.js [--port 3000] [--secret S] [--db FILE | --pg URL] [--redis redis://HOST:PORT]
//
// --redis: @socket.io/redis-adapter (createAdapter, classic mode) on two node-redis clients, for
// the cluster scenario; the packages come from tests/integration (its `npm ci`).
// --pg URL: the same tables in PostgreSQL (pg, also from tests/integration), a pool of 10
// connections as Sequelize's seeds would have; every query is awaited, so that a socket's
// handlers interleave as the seeds' async handlers do; synchronous_commit is PostgreSQL's
// default (on).
'use strict';

const http = require('node:http');
const { Server } = require('socket.io');
const jwt = require('jsonwebtoken');

function option(name, fallback) {
  const index = process.argv.indexOf(`--${name}`);
  return index > 0 && index + 1 < process.argv.length ? process.argv[index + 1] : fallback;
}

const port = Number(option('port', '3000'));
const secret = option('secret', 'sioc-bench-secret-0123456789');
const databaseFile = option('db', 'node-bench.db');
const redisUrl = option('redis', null);
const pgUrl = option('pg', null);

// ---- the database (the seeds' models: User, UserPresence, StudyRoom, RoomMember, Message) -----

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, "firstName" TEXT, "lastName" TEXT,
    role TEXT, avatar TEXT);
  CREATE TABLE IF NOT EXISTS presence ("userId" TEXT PRIMARY KEY, status TEXT,
    "lastActivity" TEXT);
  CREATE TABLE IF NOT EXISTS rooms (id TEXT PRIMARY KEY, name TEXT, "isPrivate" INTEGER DEFAULT 0,
    "ownerId" TEXT, "createdAt" TEXT);
  CREATE TABLE IF NOT EXISTS room_members ("roomId" TEXT, "userId" TEXT, "joinedAt" TEXT,
    PRIMARY KEY ("roomId", "userId"));
  CREATE TABLE IF NOT EXISTS messages (id %ID%, "roomId" TEXT,
    "senderId" TEXT, "recipientId" TEXT, text TEXT, type TEXT, "createdAt" TEXT);
`;

// The statements, with $1... placeholders (SQLite reads them as numbered parameters too).
const STATEMENTS = {
  upsertUser: `INSERT INTO users (id, "firstName", "lastName", role, avatar)
    VALUES ($1, $2, $3, $4, $5) ON CONFLICT(id) DO UPDATE SET
    "firstName" = excluded."firstName", "lastName" = excluded."lastName", role = excluded.role,
    avatar = excluded.avatar`,
  findUser: 'SELECT id, "firstName", "lastName", role, avatar FROM users WHERE id = $1',
  upsertPresence: `INSERT INTO presence ("userId", status, "lastActivity")
    VALUES ($1, $2, $3) ON CONFLICT("userId") DO UPDATE SET status = excluded.status,
    "lastActivity" = excluded."lastActivity"`,
  findRoom: 'SELECT id, "isPrivate" FROM rooms WHERE id = $1',
  createRoom: `INSERT INTO rooms (id, name, "ownerId", "createdAt")
    VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
  isMember: 'SELECT 1 FROM room_members WHERE "roomId" = $1 AND "userId" = $2',
  addMember: `INSERT INTO room_members ("roomId", "userId", "joinedAt")
    VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
  removeMember: 'DELETE FROM room_members WHERE "roomId" = $1 AND "userId" = $2',
  addMessage: `INSERT INTO messages ("roomId", "senderId", "recipientId", text, type,
    "createdAt") VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
  findMessage: `SELECT m.id, m."createdAt", u.id AS "senderId" FROM messages m
    LEFT JOIN users u ON u.id = m."senderId" WHERE m.id = $1`,
};

// sql.<name>.get(...params) resolves to the first row (or undefined), .run(...params) to
// {lastInsertRowid}, whichever the database.
function sqliteDatabase(file) {
  const Database = require('better-sqlite3');
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec(SCHEMA.replace('%ID%', 'INTEGER PRIMARY KEY AUTOINCREMENT'));
  const sql = {};
  for (const [name, text] of Object.entries(STATEMENTS)) {
    const statement = db.prepare(text.replace(/\$\d+/g, '?').replace(' RETURNING id', ''));
    sql[name] = {
      get: async (...params) => statement.get(...params),
      run: async (...params) => statement.run(...params),
    };
  }
  return { sql, close: () => db.close() };
}

function pgDatabase(url) {
  const { createRequire } = require('node:module');
  const path = require('node:path');
  const { Pool } = createRequire(path.join(__dirname, '../../tests/integration/package.json'))('pg');
  const pool = new Pool({ connectionString: url, max: 10 });
  const ready = pool.query(SCHEMA.replace('%ID%', 'BIGSERIAL PRIMARY KEY'));
  const sql = {};
  for (const [name, text] of Object.entries(STATEMENTS)) {
    const query = async (params) => {
      await ready;
      return pool.query({ name, text, values: params });
    };
    sql[name] = {
      get: async (...params) => (await query(params)).rows[0],
      run: async (...params) => {
        const result = await query(params);
        return { lastInsertRowid: result.rows[0] ? result.rows[0].id : undefined };
      },
    };
  }
  return { sql, ready, close: () => pool.end() };
}

const database = pgUrl ? pgDatabase(pgUrl) : sqliteDatabase(databaseFile);
const sql = database.sql;

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

async function onRoomJoin(socket, payload, ack) {
  const roomId = roomIdOf(payload);
  if (roomId === null)
    return reply(socket, ack, 'room:error', 'invalid_payload', 'roomId must be a string of 1 to 128 bytes or an integer');
  const now = new Date().toISOString();
  let room = await sql.findRoom.get(roomId);
  if (!room) {
    await sql.createRoom.run(roomId, roomId, socket.user.id, now);
    room = await sql.findRoom.get(roomId);
  }
  if (room.isPrivate && !(await sql.isMember.get(roomId, socket.user.id)))
    return reply(socket, ack, 'room:error', 'forbidden', 'Not a member of this private room');
  await sql.addMember.run(roomId, socket.user.id, now);
  socket.join(`room:${roomId}`);
  socket.to(`room:${roomId}`).emit('room:userJoined', { roomId: payload?.roomId ?? payload, user: socket.user });
  if (typeof ack === 'function') ack({ ok: true, roomId, room: { id: roomId, isPrivate: !!room.isPrivate } });
}

async function onRoomLeave(socket, payload, ack) {
  const roomId = roomIdOf(payload);
  if (roomId === null)
    return reply(socket, ack, 'room:error', 'invalid_payload', 'roomId must be a string of 1 to 128 bytes or an integer');
  socket.leave(`room:${roomId}`);
  await sql.removeMember.run(roomId, socket.user.id);
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

async function onMessageSend(socket, data, ack) {
  if (!checkText(socket, data, ack, 'message:error')) return;
  const roomId = roomIdOf(data);
  if (roomId === null)
    return reply(socket, ack, 'message:error', 'invalid_payload', 'roomId must be a string of 1 to 128 bytes or an integer');
  if (!socket.rooms.has(`room:${roomId}`))
    return reply(socket, ack, 'message:error', 'forbidden', 'Join the room first');
  // Seed 003: Message.create, then Message.findByPk with its sender, then the broadcast.
  const created = await sql.addMessage.run(roomId, socket.user.id, null, data.text, 'room',
    new Date().toISOString());
  const saved = await sql.findMessage.get(created.lastInsertRowid);
  const message = {
    id: String(saved.id), roomId: data.roomId, sender: socket.user, text: data.text,
    createdAt: saved.createdAt,
  };
  chat.to(`room:${roomId}`).emit('message:received', message);
  if (typeof ack === 'function') ack({ ok: true, message });
}

async function onDmSend(socket, data, ack) {
  if (!checkText(socket, data, ack, 'dm:error')) return;
  const recipientId = data.recipientId === undefined ? null : String(data.recipientId);
  if (!recipientId || !(await sql.findUser.get(recipientId)))
    return reply(socket, ack, 'dm:error', 'not_found', 'Recipient not found');
  const created = await sql.addMessage.run(null, socket.user.id, recipientId, data.text, 'direct',
    new Date().toISOString());
  const saved = await sql.findMessage.get(created.lastInsertRowid);
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

async function setPresence(socket, status) {
  await sql.upsertPresence.run(socket.user.id, status, new Date().toISOString());
  socket.broadcast.emit('user:status', { userId: socket.user.id, status });
}

chat.use(authenticate);
chat.use((socket, next) => {
  const { id, firstName, lastName, role, avatar } = socket.user;
  sql.upsertUser.run(id, firstName, lastName, role, avatar).then(() => next(), next);
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
  await database.ready;
  server.listen(port, '127.0.0.1', () => {
    console.log(`listening on 127.0.0.1:${server.address().port}`);
  });
}
listen();

function stop() {
  io.close();
  server.close();
  Promise.resolve(database.close()).finally(() => process.exit(0));
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// A failed query fails that event (the seeds catch and log theirs), never the server.
process.on('unhandledRejection', (error) => console.error('error:', error.message));
