// StudyConnect's front-end socket service (seed 002, src/services/socketService.js) as the
// seed gives it. Only the module plumbing differs: the seed's bundler inlines
// process.env.REACT_APP_API_URL; here the test sets it before calling init().
import { io } from 'socket.io-client';

class SocketService {
  constructor() {
    this.socket = null;
    this.connected = false;
  }

  // Initialize socket connection
  init(token) {
    if (this.socket) {
      this.disconnect();
    }

    // Create socket connection with authentication
    this.socket = io(process.env.REACT_APP_API_URL || 'http://localhost:5000', {
      auth: { token }
    });

    // Handle connection events
    this.socket.on('connect', () => {
      this.connected = true;
    });

    this.socket.on('connect_error', (error) => {
      this.connected = false;
    });

    this.socket.on('disconnect', () => {
      this.connected = false;
    });

    return this.socket;
  }

  // Check if socket is connected
  isConnected() {
    return this.connected && this.socket && this.socket.connected;
  }

  // Join a study room
  joinRoom(roomId) {
    if (this.isConnected()) {
      this.socket.emit('room:join', roomId);
    }
  }

  // Leave a study room
  leaveRoom(roomId) {
    if (this.isConnected()) {
      this.socket.emit('room:leave', roomId);
    }
  }

  // Send a message to a room
  sendMessage(roomId, text) {
    if (this.isConnected()) {
      this.socket.emit('message:send', { roomId, text });
    }
  }

  // Send a direct message
  sendDirectMessage(recipientId, text) {
    if (this.isConnected()) {
      this.socket.emit('dm:send', { recipientId, text });
    }
  }

  // Subscribe to an event
  on(event, callback) {
    if (this.socket) {
      this.socket.on(event, callback);
    }
  }

  // Unsubscribe from an event
  off(event, callback) {
    if (this.socket) {
      this.socket.off(event, callback);
    }
  }

  // Disconnect socket
  disconnect() {
    if (this.socket) {
      this.socket.disconnect();
      this.socket = null;
      this.connected = false;
    }
  }
}

// The seed exports one instance; tests need one per simulated browser.
export default SocketService;
