/** The ceiling: a bare node:http JSON endpoint, nothing else. Prints its port. */
import { createServer } from 'node:http';
import { listenAndAnnounce } from './announce.js';

const body = JSON.stringify({
  id: '0191d3b4-5d0e-7a3c-9f1e-3c2b1a000001',
  name: 'general',
  visibility: 'public',
});
const server = createServer((_request, response) => {
  response.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  response.end(body);
});
listenAndAnnounce(server);
