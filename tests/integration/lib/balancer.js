// A small TCP balancer for node-loss tests: each new connection goes to the port that
// currentPort() names when it arrives (the first node still up), and is piped both ways
// until either side closes. Listens on a free loopback port.
import net from 'node:net';

export function balancer(currentPort) {
  const open = new Set();
  const server = net.createServer((downstream) => {
    const upstream = net.connect(currentPort(), '127.0.0.1');
    open.add(downstream).add(upstream);
    const end = () => {
      downstream.destroy();
      upstream.destroy();
      open.delete(downstream);
      open.delete(upstream);
    };
    downstream.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    downstream.pipe(upstream).pipe(downstream);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    port: server.address().port,
    close: () => {
      for (const socket of open) socket.destroy();
      return new Promise((done) => server.close(done));
    },
  })));
}
