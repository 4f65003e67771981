// Dead-peer detection for every WebSocket (search and echo). A browser whose machine slept or
// lost its network never sends a close, and TCP alone can take hours to notice. Every interval
// each socket that answered since the last round is pinged again; one that sent nothing at all
// (no pong, no frame) for a whole interval is terminated, which ends its session exactly as if
// the browser had closed it. Browsers answer pings by themselves; no page code is needed.
import type { WebSocket, WebSocketServer } from 'ws';

/** Fixed, not a configuration key: long enough for any live peer behind a proxy
 *  (nginx's proxy_read_timeout is 60 s by default), short enough to free dead ones promptly. */
export const HEARTBEAT_MS = 30_000;

export interface Heartbeat {
  stop(): void;
}

export function startHeartbeat(server: WebSocketServer, intervalMs: number, onDead: (socket: WebSocket) => void): Heartbeat {
  const heard = new WeakMap<WebSocket, boolean>();
  const alive = (socket: WebSocket) => () => heard.set(socket, true);
  server.on('connection', (socket: WebSocket) => {
    heard.set(socket, true);
    socket.on('pong', alive(socket));
    socket.on('message', alive(socket));
  });
  const timer = setInterval(() => {
    for (const socket of server.clients) {
      if (socket.readyState !== socket.OPEN) continue;
      if (heard.get(socket) === false) {
        onDead(socket);
        socket.terminate();
        continue;
      }
      heard.set(socket, false);
      socket.ping();
    }
  }, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
