// Carolina's frontend WebSocketsSvc (seed 004, src/carolina/web-sockets/web-sockets-svc.js) as
// the seed describes it: configureChannel(name, configure) creates the connection of a channel
// once, lets the app configure the socket, and sends a `session_id` event with the Session ID
// from the cookie; connect(name) returns the same Socket from anywhere in the app. `browser`
// stands for what a browser adds by itself (its cookies): Node's client has no cookie jar.
import { io } from 'socket.io-client';

export function makeWebSocketsSvc(URL, browser = {}) {
  const sockets = {};
  const sessionId = () => {
    const cookie = browser.extraHeaders?.Cookie ?? '';
    const value = decodeURIComponent(cookie.split('=')[1] ?? '');
    return value.startsWith('s:') ? value.slice(2).split('.')[0] : null;
  };
  return {
    connect(channel = '/') {
      if (!sockets[channel]) sockets[channel] = io(`${URL}${channel}`, { ...browser, reconnection: false });
      return sockets[channel];
    },
    configureChannel(channel, configure) {
      const socket = this.connect(channel);
      configure(socket);
      socket.on('connect', () => {
        const id = sessionId();
        if (id) socket.emit('session_id', id);
      });
      return socket;
    },
    close() {
      for (const socket of Object.values(sockets)) socket.disconnect();
    },
  };
}
