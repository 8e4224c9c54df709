import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signUp, startCluster, type Cluster } from '../../test-support/cluster.js';
import { forgeAccessToken } from '../../test-support/tokens.js';

let cluster: Cluster;
beforeAll(async () => {
  cluster = await startCluster(2, { mysqlReplica: false, redisTopology: 'single' });
});
afterAll(() => cluster?.stop());

const api = (i = 0) => cluster.apis[i]!;

/** A token as the API would sign it, with claims a test chooses. */
const forge = (claims: { sub: string; sid: string; exp: number }, key?: KeyObject) =>
  forgeAccessToken(api(), cluster.env, claims, key);

describe('accounts', () => {
  it('registers, logs in and reaches a protected route; the password hash never leaves', async () => {
    const registered = await api()('POST', '/v1/auth/register', {
      body: { username: 'alice-01', password: 'correct horse' },
    });
    expect(registered.status).toBe(201);
    expect(registered.body).toEqual({
      id: expect.any(String),
      username: 'alice-01',
      createdAt: expect.any(String),
    });

    const login = await api(1)('POST', '/v1/auth/login', {
      body: { username: 'alice-01', password: 'correct horse' },
    });
    expect(login.status).toBe(200);
    expect(login.body).toEqual({
      accessToken: expect.any(String),
      refreshToken: expect.any(String),
      tokenType: 'Bearer',
      expiresIn: 900,
    });
    expect((await api()('GET', '/v1/rooms', { token: String(login.body.accessToken) })).status).toBe(200);
  });

  it('rejects a taken username, case-insensitively, with 409', async () => {
    await api()('POST', '/v1/auth/register', { body: { username: 'Bob-01', password: 'password-1' } });
    const again = await api(1)('POST', '/v1/auth/register', {
      body: { username: 'bob-01', password: 'password-2' },
    });
    expect(again.status).toBe(409);
    expect(again.body.detail).toMatch(/taken/);
  });

  it('answers a wrong password and an unknown user alike', async () => {
    const user = await signUp(api());
    const wrong = await api()('POST', '/v1/auth/login', {
      body: { username: user.username, password: 'not-the-password' },
    });
    const unknown = await api()('POST', '/v1/auth/login', {
      body: { username: 'nobody-here', password: 'whatever-123' },
    });
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(wrong.body.detail).toBe(unknown.body.detail);
  });

  it.each([
    ['missing password', { username: 'carol' }, /body\.password/],
    ['missing username', { password: 'long-enough' }, /body\.username/],
    ['short username', { username: 'ab', password: 'long-enough' }, /body\.username/],
    ['long username', { username: 'x'.repeat(33), password: 'long-enough' }, /body\.username/],
    ['spaces in username', { username: 'a b c', password: 'long-enough' }, /letters, digits/],
    ['short password', { username: 'carol', password: 'short' }, /body\.password/],
    ['long password', { username: 'carol', password: 'x'.repeat(129) }, /body\.password/],
    ['number as username', { username: 12345, password: 'long-enough' }, /body\.username/],
    ['unknown field', { username: 'carol', password: 'long-enough', admin: true }, /admin/],
    ['array body', [1], /body/],
  ])('register rejects %s with 400', async (_label, body, detail) => {
    const reply = await api()('POST', '/v1/auth/register', { body });
    expect(reply.status).toBe(400);
    expect(reply.headers.get('content-type')).toBe('application/problem+json');
    expect(reply.body.detail).toMatch(detail);
  });

  it.each([
    ['no header', {}, /Authorization: Bearer/],
    ['not bearer', { authorization: 'Basic YWxpY2U6cHc=' }, /Authorization: Bearer/],
    ['garbage token', { authorization: 'Bearer not.a.jwt' }, /not valid/],
    ['empty bearer', { authorization: 'Bearer ' }, /Authorization: Bearer/],
  ])('a protected route rejects %s with 401 and WWW-Authenticate', async (_label, headers, detail) => {
    const reply = await api()('GET', '/v1/rooms', { headers: headers as Record<string, string> });
    expect(reply.status).toBe(401);
    expect(reply.headers.get('www-authenticate')).toBe('Bearer realm="parley"');
    expect(reply.body.detail).toMatch(detail);
  });
});

describe('access tokens', () => {
  it('are EdDSA JWTs with a kid that verify against the published JWKS', async () => {
    const user = await signUp(api());
    const base = `http://127.0.0.1:${cluster.processes[1]!.ports.port}`;
    const { payload, protectedHeader } = await jwtVerify(
      user.accessToken,
      createRemoteJWKSet(new URL(`${base}/.well-known/jwks.json`)),
      {
        issuer: 'parley',
        audience: 'parley-api',
      },
    );
    expect(protectedHeader).toMatchObject({ alg: 'EdDSA', kid: expect.any(String), typ: 'at+jwt' });
    expect(payload.sub).toBe(user.id);
  });

  it('never passes once expired, even after being cached', async () => {
    const user = await signUp(api());
    const shortLived = await forge({
      sub: user.id,
      sid: 'short-lived',
      exp: Math.floor(Date.now() / 1000) + 2,
    });
    expect((await api()('GET', '/v1/rooms', { token: shortLived })).status).toBe(200); // now cached
    await new Promise((resolve) => setTimeout(resolve, 2_600));
    const expired = await api()('GET', '/v1/rooms', { token: shortLived });
    expect(expired.status).toBe(401);
    expect(expired.body.detail).toMatch(/exp/);
  });

  it('rejects a token signed by another key, and an already expired one', async () => {
    const user = await signUp(api());
    const otherKey = generateKeyPairSync('ed25519').privateKey;
    const foreign = await forge(
      { sub: user.id, sid: 'x', exp: Math.floor(Date.now() / 1000) + 60 },
      otherKey,
    );
    expect((await api()('GET', '/v1/rooms', { token: foreign })).status).toBe(401);
    const stale = await forge({ sub: user.id, sid: 'x', exp: Math.floor(Date.now() / 1000) - 1 });
    expect((await api(1)('GET', '/v1/rooms', { token: stale })).status).toBe(401);
  });

  it('stop working on every process within 1 s of logout, cached or not', async () => {
    const user = await signUp(api());
    // Warm both processes' caches.
    expect((await api(0)('GET', '/v1/rooms', { token: user.accessToken })).status).toBe(200);
    expect((await api(1)('GET', '/v1/rooms', { token: user.accessToken })).status).toBe(200);

    const loggedOutAt = performance.now();
    expect((await api(0)('POST', '/v1/auth/logout', { token: user.accessToken })).status).toBe(204);
    const rejectedAfter: number[] = [];
    for (const index of [0, 1]) {
      let status = 200;
      while (status === 200 && performance.now() - loggedOutAt < 1_000) {
        status = (await api(index)('GET', '/v1/rooms', { token: user.accessToken })).status;
      }
      expect(status).toBe(401);
      rejectedAfter.push(performance.now() - loggedOutAt);
    }
    console.info(
      `revocation observed on both processes after ${rejectedAfter.map((ms) => ms.toFixed(0)).join(' / ')} ms`,
    );
    // The refresh token of that session is dead too.
    expect(
      (await api(1)('POST', '/v1/auth/refresh', { body: { refreshToken: user.refreshToken } })).status,
    ).toBe(401);
  });
});

describe('refresh tokens', () => {
  it('rotate: the new pair works and the old refresh token is spent', async () => {
    const user = await signUp(api());
    const rotated = await api(1)('POST', '/v1/auth/refresh', { body: { refreshToken: user.refreshToken } });
    expect(rotated.status).toBe(200);
    expect(rotated.body.refreshToken).not.toBe(user.refreshToken);
    expect((await api()('GET', '/v1/rooms', { token: String(rotated.body.accessToken) })).status).toBe(200);
  });

  it('reused after rotation revoke the whole family, everywhere', async () => {
    const user = await signUp(api());
    const first = await api()('POST', '/v1/auth/refresh', { body: { refreshToken: user.refreshToken } });
    const second = await api()('POST', '/v1/auth/refresh', {
      body: { refreshToken: String(first.body.refreshToken) },
    });
    expect(second.status).toBe(200);
    expect((await api(1)('GET', '/v1/rooms', { token: String(second.body.accessToken) })).status).toBe(200);

    // An attacker replays the first (already rotated) refresh token.
    const replay = await api(1)('POST', '/v1/auth/refresh', { body: { refreshToken: user.refreshToken } });
    expect(replay.status).toBe(401);
    expect(replay.body.detail).toMatch(/already used; this session has been revoked/);
    // The legitimate holder's newest tokens are dead as well.
    expect(
      (await api()('POST', '/v1/auth/refresh', { body: { refreshToken: String(second.body.refreshToken) } }))
        .status,
    ).toBe(401);
    expect((await api(1)('GET', '/v1/rooms', { token: String(second.body.accessToken) })).status).toBe(401);
  });

  it.each([
    ['unknown token', { refreshToken: 'bm90LWEtcmVhbC10b2tlbg' }, 401],
    ['empty token', { refreshToken: '' }, 400],
    ['missing token', {}, 400],
    ['wrong type', { refreshToken: 42 }, 400],
  ])('reject %s', async (_label, body, status) => {
    expect((await api()('POST', '/v1/auth/refresh', { body })).status).toBe(status);
  });
});

describe('the auth rate limit', () => {
  it('allows 5 attempts per address and username across both processes together, then 429 with Retry-After', async () => {
    const statuses: number[] = [];
    let last;
    for (let attempt = 0; attempt < 7; attempt++) {
      last = await api(attempt % 2)('POST', '/v1/auth/login', {
        body: { username: 'target-user', password: 'guess-000' + attempt },
      });
      statuses.push(last.status);
    }
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429, 429]);
    expect(last!.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(last!.headers.get('ratelimit-policy')).toBe('"auth";q=5;w=900');
    expect(last!.body.detail).toMatch(/auth rate limit \(5 per 900 s\) is spent/);
    // Another username from the same address is limited separately.
    expect(
      (await api()('POST', '/v1/auth/login', { body: { username: 'other-user', password: 'guess-0001' } }))
        .status,
    ).toBe(401);
  });
});
