import type { Server } from 'node:http';

/** Listens on a free port and prints it as the JSON line startBenchServer reads. */
export function listenAndAnnounce(server: Server): void {
  server.keepAliveTimeout = 65_000;
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    process.stdout.write(
      `${JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 })}\n`,
    );
  });
}
