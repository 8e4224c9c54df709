/**
 * The live side's ceiling: a bare `ws` server on node:http, as the API runs it (noServer, no
 * compression), broadcasting a message frame of the API's shape to every connected client, each
 * frame serialized once for all. `POST /broadcast?count=n&tag=t` sends n frames to every client (one
 * loop over the clients per frame) and answers once they are handed to the sockets. Prints its port.
 */
import { createServer } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { listenAndAnnounce } from './announce.js';

const clients = new Set<WebSocket>();
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false });

const frame = (tag: string, i: number) =>
  Buffer.from(
    JSON.stringify({
      type: 'message.created',
      roomId: '0191d3b4-5d0e-7a3c-9f1e-3c2b1a000001',
      message: {
        id: String(i + 1),
        roomId: '0191d3b4-5d0e-7a3c-9f1e-3c2b1a000001',
        authorId: '0191d3b4-5d0e-7a3c-9f1e-3c2b1a000002',
        body: tag,
        createdAt: new Date().toISOString(),
      },
      origin: 'raw',
    }),
  );

const server = createServer((request, response) => {
  const url = new URL(request.url ?? '/', 'http://raw');
  const count = Number(url.searchParams.get('count') ?? 1);
  const tag = url.searchParams.get('tag') ?? 'raw';
  for (let i = 0; i < count; i++) {
    const data = frame(tag, i);
    for (const client of clients) client.send(data, { binary: false });
  }
  response.writeHead(204).end();
});
server.on('upgrade', (request, socket, head) => {
  wss.handleUpgrade(request, socket, head, (ws) => {
    clients.add(ws);
    ws.on('close', () => clients.delete(ws));
  });
});
listenAndAnnounce(server);
