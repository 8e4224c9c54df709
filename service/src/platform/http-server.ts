import { serve, type ServerType } from '@hono/node-server';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RunningServer {
  server: ServerType;
  port: number;
  /** Stops accepting, lets in-flight requests finish, and cuts what is left after `graceMs`. */
  close(graceMs: number): Promise<void>;
}

export function listen(
  fetch: (request: Request) => Response | Promise<Response>,
  host: string,
  port: number,
) {
  return new Promise<RunningServer>((resolve, reject) => {
    const server = serve({ fetch, hostname: host, port }, (info: AddressInfo) => {
      resolve({ server, port: info.port, close: (graceMs) => closeGracefully(server as Server, graceMs) });
    });
    server.once('error', reject);
    // Behind a proxy that keeps connections open, the server's idle timeout must outlast the proxy's.
    (server as Server).keepAliveTimeout = 65_000;
    (server as Server).headersTimeout = 66_000;
  });
}

function closeGracefully(server: Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => server.closeAllConnections(), graceMs);
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    // close() stops the listener; idle keep-alive sockets would otherwise hold it open.
    server.closeIdleConnections();
  });
}
