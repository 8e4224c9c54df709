import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signUp, startCluster, type Cluster, type User } from '../../test-support/cluster.js';
import { openSocket, upgradeAnswer, type LiveSocket } from '../../test-support/live.js';
import { forgeAccessToken } from '../../test-support/tokens.js';
import { until } from '../../test-support/until.js';
import { CloseCode, PROTOCOL_VERSION, TICKET_PROTOCOL_PREFIX } from './protocol.js';

/*
 * Who may open `GET /v1/ws`, and how a refusal reads: an HTTP answer with problem+json before any
 * WebSocket exists, never a dropped socket. Then what ends a socket that was let in.
 */
const ALLOWED_ORIGIN = 'https://chat.example.com';
let cluster: Cluster;
let user: User;

beforeAll(async () => {
  cluster = await startCluster(
    2,
    { mysqlReplica: false, redisTopology: 'single' },
    {
      REALTIME_ALLOWED_ORIGINS: ALLOWED_ORIGIN,
      REALTIME_MAX_SOCKETS_PER_USER: '3',
      REALTIME_HEARTBEAT_MS: '500',
    },
  );
  user = await signUp(cluster.apis[0]!, 'upgrader');
});
afterAll(() => cluster?.stop());

const port = (i = 0) => cluster.processes[i]!.ports.port!;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const inAnHour = () => Math.floor(Date.now() / 1000) + 3_600;

async function ticket(owner: User = user) {
  const reply = await cluster.apis[1]!<{ ticket: string; protocols: string[] }>(
    'POST',
    '/v1/realtime/tickets',
    {
      token: owner.accessToken,
    },
  );
  expect(reply.status).toBe(201);
  return reply.body;
}

describe('a refused upgrade', () => {
  it.each([
    ['no credential', () => ({}), 401, /Authorization: Bearer|ticket/],
    ['a malformed Authorization header', () => ({ authorization: 'Token abc' }), 401, /Bearer <token>/],
    ['a token that is not a JWT', () => bearer('not.a.jwt'), 401, /access token is not valid/],
    [
      'an unknown ticket',
      () => ({ 'sec-websocket-protocol': `${PROTOCOL_VERSION}, ${TICKET_PROTOCOL_PREFIX}${'x'.repeat(43)}` }),
      401,
      /ticket is not valid/,
    ],
    [
      'a page from another site',
      () => ({ ...bearer(user.accessToken), origin: 'https://evil.example' }),
      403,
      /evil\.example/,
    ],
    [
      'another subprotocol only',
      () => ({ ...bearer(user.accessToken), 'sec-websocket-protocol': 'chat' }),
      400,
      /parley\.v1/,
    ],
  ])('with %s is answered %i with problem+json', async (_label, headers, status, detail) => {
    const answer = await upgradeAnswer(port(), headers());
    expect(answer.status).toBe(status);
    expect(answer.headers['content-type']).toBe('application/problem+json');
    expect(String(answer.body.detail)).toMatch(detail);
    expect(answer.body.status).toBe(status);
    if (status === 401) expect(answer.headers['www-authenticate']).toBe('Bearer realm="parley"');
  });

  it('at another path is answered 404', async () => {
    const answer = await upgradeAnswer(port(), bearer(user.accessToken), '/v1/socket');
    expect(answer.status).toBe(404);
    expect(answer.body.detail).toMatch(/use \/v1\/ws/);
  });

  it('with a token signed by another key, or one revoked, is answered 401', async () => {
    const foreign = await forgeAccessToken(
      cluster.apis[0]!,
      cluster.env,
      { sub: user.id, sid: 'foreign', exp: inAnHour() },
      generateKeyPairSync('ed25519').privateKey,
    );
    expect((await upgradeAnswer(port(), bearer(foreign))).status).toBe(401);
    const leaving = await signUp(cluster.apis[0]!, 'leaving');
    expect((await cluster.apis[0]!('POST', '/v1/auth/logout', { token: leaving.accessToken })).status).toBe(
      204,
    );
    const revoked = await upgradeAnswer(port(1), bearer(leaving.accessToken));
    expect(revoked.status).toBe(401);
    expect(revoked.body.detail).toMatch(/revoked/);
  });

  it('never puts a credential in a log line', async () => {
    const { ticket: unused } = await ticket();
    await upgradeAnswer(port(), bearer(user.accessToken));
    const logged = JSON.stringify(cluster.processes.flatMap((process) => process.logs));
    expect(logged).toContain('websocket upgrade refused');
    expect(logged).not.toContain(user.accessToken);
    expect(logged).not.toContain(unused);
  });
});

describe('an admitted upgrade', () => {
  it('selects parley.v1, from a page on the allowed origin or from a client that sends no Origin', async () => {
    const browser = await openSocket(port(), { token: user.accessToken, origin: ALLOWED_ORIGIN });
    const service = await openSocket(port(1), { token: user.accessToken, protocols: [] });
    expect(browser.ws.protocol).toBe(PROTOCOL_VERSION);
    expect(service.ws.protocol).toBe('');
    browser.close();
    service.close();
    await Promise.all([browser.closed, service.closed]);
  });

  it('lets a browser in once per ticket, on any process, and never echoes the ticket back', async () => {
    const unauthenticated = await cluster.apis[0]!('POST', '/v1/realtime/tickets');
    expect(unauthenticated.status).toBe(401);
    const issued = await ticket();
    expect(issued.protocols).toEqual([PROTOCOL_VERSION, `${TICKET_PROTOCOL_PREFIX}${issued.ticket}`]);
    const browser = await openSocket(port(0), { protocols: issued.protocols, origin: ALLOWED_ORIGIN });
    expect(browser.ws.protocol).toBe(PROTOCOL_VERSION);
    browser.send({ type: 'ping', id: 'with a ticket' });
    expect(await browser.next('pong')).toEqual({ type: 'pong', id: 'with a ticket' });
    const reused = await upgradeAnswer(port(1), { 'sec-websocket-protocol': issued.protocols.join(', ') });
    expect(reused.status).toBe(401);
    expect(reused.body.detail).toMatch(/used/);
    browser.close();
    await browser.closed;
  });

  it('counts a user’s sockets across processes: one over the limit is answered 429, until one closes', async () => {
    const limited = await signUp(cluster.apis[0]!, 'limited');
    const open: LiveSocket[] = [];
    for (let i = 0; i < 3; i++) open.push(await openSocket(port(i % 2), { token: limited.accessToken }));
    const over = await upgradeAnswer(port(1), bearer(limited.accessToken));
    expect(over.status).toBe(429);
    expect(over.headers['retry-after']).toBeDefined();
    open[0]!.close();
    await open[0]!.closed;
    expect(
      await until(async () => (await upgradeAnswer(port(0), bearer(limited.accessToken))).status === 101),
    ).toBe(true);
    for (const live of open) live.ws.terminate();
  });
});

describe('an open socket', () => {
  it('ends with 4401 on every process when its session is revoked', async () => {
    const member = await signUp(cluster.apis[0]!, 'revoked-live');
    const sockets = [
      await openSocket(port(0), { token: member.accessToken }),
      await openSocket(port(1), { token: member.accessToken }),
    ];
    expect((await cluster.apis[1]!('POST', '/v1/auth/logout', { token: member.accessToken })).status).toBe(
      204,
    );
    for (const live of sockets) expect((await live.closed).code).toBe(CloseCode.CREDENTIALS_EXPIRED);
  });

  it('ends with 4401 when its access token expires', async () => {
    const member = await signUp(cluster.apis[0]!, 'expiring');
    const shortLived = await forgeAccessToken(cluster.apis[0]!, cluster.env, {
      sub: member.id,
      sid: 'short-lived-socket',
      exp: Math.floor(Date.now() / 1000) + 2,
    });
    const live = await openSocket(port(), { token: shortLived });
    const startedAt = Date.now();
    const { code } = await live.closed;
    expect(code).toBe(CloseCode.CREDENTIALS_EXPIRED);
    expect(Date.now() - startedAt).toBeLessThan(10_000); // bound generous for a shared machine
  });
});

describe('a peer that stops answering', () => {
  it('is terminated within two heartbeat intervals', async () => {
    const silent = await openSocket(cluster.processes[0]!.ports.port!, {
      token: user.accessToken,
      autoPong: false,
    });
    const startedAt = Date.now();
    const { code } = await silent.closed;
    expect(code).toBe(1006); // cut, without a close frame: it was not listening anyway
    expect(Date.now() - startedAt).toBeLessThan(5_000); // two intervals are 1 s; bound generous
  });
});
