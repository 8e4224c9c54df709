/**
 * The ceiling for the API's response shape: node:http answering with what a cached
 * `GET /v1/rooms/{id}` answers (a room's JSON, the security headers, a request id and the two
 * rate-limit headers), nothing else. Against bare.ts it shows what the bigger response costs the
 * server, the kernel and the generator. Prints its port.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { SECURITY_HEADERS } from '../../src/http/security-headers.js';
import { listenAndAnnounce } from './announce.js';

const body = JSON.stringify({
  id: '0191d3b4-5d0e-7a3c-9f1e-3c2b1a000001',
  name: 'bench',
  visibility: 'public',
  ownerId: '0191d3b4-5d0e-7a3c-9f1e-3c2b1a000002',
  createdAt: '2026-11-29T12:00:00.000Z',
  memberCount: 1,
  isMember: true,
});
const server = createServer((_request, response) => {
  response.writeHead(200, {
    ...SECURITY_HEADERS,
    'X-Request-Id': randomUUID(),
    'RateLimit-Policy': '"api";q=1000000000;w=60',
    RateLimit: '"api";r=999999999;t=60',
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  });
  response.end(body);
});
listenAndAnnounce(server);
