import getPort from 'get-port';
import { connect } from 'node:net';

// The machine's own MariaDB and Redis listen on these; a stack must never take or touch them.
const RESERVED = new Set([3306, 6379, 26379, 9000]);

/** Distinct free loopback ports. get-port also remembers what it handed out in this process. */
export async function freePorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < count) {
    const port = await getPort({ host: '127.0.0.1', exclude: [...RESERVED, ...ports] });
    ports.push(port);
  }
  return ports;
}

/** True when nothing listens on the loopback port any more (ECONNREFUSED), e.g. after a stop. */
export function connectionRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}
