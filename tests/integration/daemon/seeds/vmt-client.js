// VMT's front end (seed 000) as the seed describes it: src/utils/sockets.js exports the result of
// io.connect(URL), made when the page loads, before anyone logs in; SocketProvider emits
// "SYNC_SOCKET" with the user's id whenever the socket connects, reconnects or the user logs
// in, and listens for NEW_NOTIFICATION. `browser` stands for what a browser adds by itself (the
// session cookie of the page's origin): Node's client has no cookie jar.
import { io } from 'socket.io-client';

// src/utils/sockets.js
export function connectOnPageLoad(URL, browser = {}) {
  return io.connect(URL, { ...browser, reconnection: false });
}

// src/components/HOC/SocketProvider: after login (and on every (re)connection while logged in).
export function syncSocket(socket, user, onNotification) {
  socket.on('NEW_NOTIFICATION', onNotification);
  return new Promise((resolve) => {
    socket.emit('SYNC_SOCKET', user._id, (res, err) => resolve([res, err]));
  });
}
