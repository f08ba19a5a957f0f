// The StudyConnect chat against sioc's `chat` driver (docs/drivers.md), with the official
// socket.io-client: rooms (room:join, room:history, message:send → message:received), direct
// messages (dm:send → dm:received, dm:history), typing (typing:start/stop → typing:update) and
// presence (user:status, room:userJoined/userLeft). Everything shown is set as text, never as
// HTML, so nothing a peer sends can run here.
'use strict';

const $ = (id) => document.getElementById(id);
const state = {
  socket: null,
  me: null, // {id, firstName, ...} from the token's claims (display only: the server checks it)
  rooms: new Map(), // roomId → {unread}
  people: new Map(), // userId → {name, online, unread}
  conversations: new Map(), // "room:<id>" | "dm:<userId>" → [message]
  typing: new Map(), // "room:<id>" → Map(userId → firstName)
  current: null,
  typingSent: null, // the room we told we are typing in
  typingTimer: null,
};

// ---- the token ----------------------------------------------------------------------------

function claimsOf(token) {
  const part = token.split('.')[1];
  if (!part) throw new Error('this is not a JWT (three parts separated by dots)');
  const base64 = part.replace(/-/g, '+').replace(/_/g, '/');
  const bytes = Uint8Array.from(atob(base64 + '==='.slice((base64.length + 3) % 4)), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

function nameOf(user) {
  return [user.firstName, user.lastName].filter(Boolean).join(' ') || `User ${user.id}`;
}

// ---- people and rooms ---------------------------------------------------------------------

function person(userId, user) {
  let entry = state.people.get(userId);
  if (!entry) {
    entry = { name: `User ${userId}`, online: null, unread: 0 };
    state.people.set(userId, entry);
  }
  // A fuller name wins: typing:update carries only the first name.
  if (user && (user.firstName || user.lastName) && (user.lastName || entry.name.startsWith('User ')))
    entry.name = nameOf(user);
  return entry;
}

function seen(user) {
  if (!user || user.id === undefined || String(user.id) === String(state.me.id)) return;
  const entry = person(String(user.id), user);
  if (entry.online === null) entry.online = true; // it just did something live
  renderPeople();
}

function badge(count) {
  const span = document.createElement('span');
  span.className = 'badge';
  span.textContent = String(count);
  return span;
}

function renderRooms() {
  const list = $('rooms');
  list.replaceChildren();
  for (const [roomId, room] of state.rooms) {
    const li = document.createElement('li');
    li.dataset.room = roomId;
    li.className = state.current === `room:${roomId}` ? 'active' : '';
    li.textContent = `# ${roomId}`;
    if (room.unread) li.append(badge(room.unread));
    li.addEventListener('click', () => open(`room:${roomId}`));
    list.append(li);
  }
}

function renderPeople() {
  const list = $('people');
  list.replaceChildren();
  const sorted = [...state.people].sort((a, b) => Number(b[1].online) - Number(a[1].online) || a[1].name.localeCompare(b[1].name));
  for (const [userId, entry] of sorted) {
    const li = document.createElement('li');
    li.dataset.userId = userId;
    li.dataset.status = entry.online ? 'online' : 'offline';
    li.className = state.current === `dm:${userId}` ? 'active' : '';
    const dot = document.createElement('span');
    dot.className = `dot ${entry.online ? 'online' : 'offline'}`;
    dot.title = entry.online ? 'online' : 'offline';
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = entry.name;
    li.append(dot, name);
    if (entry.unread) li.append(badge(entry.unread));
    li.addEventListener('click', () => open(`dm:${userId}`));
    list.append(li);
  }
}

// ---- conversations ------------------------------------------------------------------------

function conversation(key) {
  if (!state.conversations.has(key)) state.conversations.set(key, []);
  return state.conversations.get(key);
}

function add(key, message) {
  const list = conversation(key);
  if (list.some((m) => m.id === message.id)) return;
  list.push(message);
  if (key === state.current) renderMessages();
  else if (key.startsWith('room:')) {
    const room = state.rooms.get(key.slice(5));
    if (room) room.unread++;
    renderRooms();
  } else {
    person(key.slice(3)).unread++;
    renderPeople();
  }
}

function renderMessages() {
  const list = $('messages');
  list.replaceChildren();
  for (const message of conversation(state.current)) {
    const li = document.createElement('li');
    const mine = String(message.senderId) === String(state.me.id);
    li.className = `message${mine ? ' mine' : ''}`;
    const meta = document.createElement('div');
    meta.className = 'meta';
    const who = document.createElement('span');
    who.className = 'sender';
    who.textContent = mine ? 'You' : message.senderName;
    const when = document.createElement('time');
    when.dateTime = message.createdAt;
    when.textContent = new Date(message.createdAt).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    meta.append(who, when);
    const text = document.createElement('div');
    text.className = 'text';
    text.textContent = message.text;
    li.append(meta, text);
    list.append(li);
  }
  list.scrollTop = list.scrollHeight;
}

function renderTyping() {
  const names = [...(state.typing.get(state.current)?.values() ?? [])];
  $('typing').textContent = names.length === 0 ? ''
    : names.length === 1 ? `${names[0]} is typing…` : `${names.join(', ')} are typing…`;
}

function fromRoom(m) {
  return { id: m.id, senderId: m.sender?.id, senderName: m.sender ? nameOf(m.sender) : '?', text: m.text, createdAt: m.createdAt };
}

function fromDm(m) {
  const mine = String(m.senderId) === String(state.me.id);
  const senderName = m.sender ? nameOf(m.sender) : mine ? nameOf(state.me) : person(String(m.senderId)).name;
  return { id: m.id, senderId: m.senderId, senderName, text: m.text, createdAt: m.createdAt };
}

async function open(key) {
  stopTyping();
  state.current = key;
  const [kind, id] = [key.slice(0, key.indexOf(':')), key.slice(key.indexOf(':') + 1)];
  $('conversation-title').textContent = kind === 'room' ? `# ${id}` : `@ ${person(id).name}`;
  if (kind === 'room') state.rooms.get(id).unread = 0;
  else person(id).unread = 0;
  $('composer-input').disabled = false;
  $('send-button').disabled = false;
  $('composer-input').placeholder = kind === 'room' ? `Message # ${id}` : `Message ${person(id).name}`;
  renderRooms();
  renderPeople();
  renderMessages();
  renderTyping();
  $('composer-input').focus();
  const history = kind === 'room'
    ? await state.socket.emitWithAck('room:history', { roomId: id, limit: 50 })
    : await state.socket.emitWithAck('dm:history', { userId: id, limit: 50 });
  if (history?.ok) {
    for (const m of history.messages) add(key, kind === 'room' ? fromRoom(m) : fromDm(m));
    conversation(key).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    if (key === state.current) renderMessages();
  }
}

// ---- what the user does -------------------------------------------------------------------

async function join(roomId) {
  const answer = await state.socket.emitWithAck('room:join', { roomId });
  if (!answer?.ok) return alert(answer?.error?.message ?? 'cannot join');
  if (!state.rooms.has(roomId)) state.rooms.set(roomId, { unread: 0 });
  await open(`room:${roomId}`);
}

async function send(text) {
  const [kind, id] = [state.current.slice(0, state.current.indexOf(':')), state.current.slice(state.current.indexOf(':') + 1)];
  stopTyping();
  const answer = kind === 'room'
    ? await state.socket.emitWithAck('message:send', { roomId: id, text })
    : await state.socket.emitWithAck('dm:send', { recipientId: id, text });
  if (!answer?.ok) $('typing').textContent = `Not sent: ${answer?.error?.message ?? 'no answer'}`;
}

function startTyping() {
  if (!state.current?.startsWith('room:')) return;
  const roomId = state.current.slice(5);
  if (state.typingSent !== roomId) {
    state.socket.emit('typing:start', { roomId });
    state.typingSent = roomId;
  }
  clearTimeout(state.typingTimer);
  state.typingTimer = setTimeout(stopTyping, 3000);
}

function stopTyping() {
  clearTimeout(state.typingTimer);
  if (state.typingSent !== null) state.socket.emit('typing:stop', { roomId: state.typingSent });
  state.typingSent = null;
}

// ---- the connection -----------------------------------------------------------------------

function listen(socket) {
  socket.on('connect', () => {
    const transport = () => socket.io.engine.transport.name;
    $('connection').textContent = `connected · ${transport()}`;
    $('connection').className = 'connection up';
    socket.io.engine.once('upgrade', () => ($('connection').textContent = `connected · ${transport()}`));
    // After a reconnection, the rooms are joined again (the server forgets them).
    for (const roomId of state.rooms.keys()) socket.emit('room:join', { roomId });
  });
  socket.on('disconnect', (reason) => {
    $('connection').textContent = `disconnected (${reason})`;
    $('connection').className = 'connection down';
  });
  socket.on('connect_error', (err) => {
    if (!state.me.connectedOnce) {
      socket.close();
      showLogin(`The server refused the connection: ${err.message}`);
    }
  });
  socket.on('user:status', ({ userId, status }) => {
    if (String(userId) === String(state.me.id)) return;
    person(String(userId)).online = status === 'online';
    renderPeople();
  });
  socket.on('room:userJoined', ({ user }) => seen(user));
  socket.on('room:userLeft', () => {});
  socket.on('message:received', (m) => {
    seen(m.sender);
    add(`room:${m.roomId}`, fromRoom(m));
  });
  socket.on('dm:received', (m) => {
    const mine = String(m.senderId) === String(state.me.id);
    if (!mine) seen(m.sender ?? { id: m.senderId });
    add(`dm:${mine ? m.recipientId : m.senderId}`, fromDm(m));
  });
  socket.on('typing:update', ({ roomId, userId, firstName, isTyping }) => {
    const key = `room:${roomId}`;
    if (!state.typing.has(key)) state.typing.set(key, new Map());
    if (isTyping) state.typing.get(key).set(userId, firstName || `User ${userId}`);
    else state.typing.get(key).delete(userId);
    if (isTyping) seen({ id: userId, firstName });
    if (key === state.current) renderTyping();
  });
  for (const event of ['room:error', 'message:error', 'dm:error', 'typing:error']) {
    socket.on(event, (error) => ($('typing').textContent = `${event}: ${error?.message ?? ''}`));
  }
}

function showLogin(error) {
  $('chat').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = error ?? '';
}

async function connect(token) {
  let claims;
  try {
    claims = claimsOf(token);
  } catch (err) {
    return showLogin(`Cannot read this token: ${err.message}`);
  }
  state.me = { ...claims, id: String(claims.id ?? claims.sub) };
  const config = await (await fetch('/config.json')).json();
  const socket = io(config.server, { path: config.path, auth: { token } });
  state.socket = socket;
  listen(socket);
  socket.once('connect', () => {
    state.me.connectedOnce = true;
    $('login').hidden = true;
    $('chat').hidden = false;
    $('me').textContent = nameOf(state.me);
    $('me').dataset.initial = (state.me.firstName ?? '?').slice(0, 1).toUpperCase();
  });
}

$('login-form').addEventListener('submit', (event) => {
  event.preventDefault();
  $('login-error').textContent = '';
  connect($('login-token').value.trim());
});
$('join-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const roomId = $('room-input').value.trim();
  $('room-input').value = '';
  if (roomId) join(roomId);
});
$('composer').addEventListener('submit', (event) => {
  event.preventDefault();
  const text = $('composer-input').value.trim();
  $('composer-input').value = '';
  if (text && state.current) send(text);
});
$('composer-input').addEventListener('input', () => ($('composer-input').value ? startTyping() : stopTyping()));

// scripts/run --web prints links with the token in the fragment (never sent to a server).
const fragment = new URLSearchParams(location.hash.slice(1));
if (fragment.get('token')) {
  $('login-token').value = fragment.get('token');
  history.replaceState(null, '', location.pathname);
  connect(fragment.get('token'));
}
