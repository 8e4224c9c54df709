import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signUp, startCluster, type Cluster, type User } from './test-support/cluster.js';
import { until } from './test-support/until.js';

/*
 * What each API process does when a dependency goes away, and that it recovers by itself. Two
 * processes share the stack; the api rate limit is small here so its sharing can be counted.
 */
let cluster: Cluster;
let user: User;
let roomId: string;

beforeAll(async () => {
  cluster = await startCluster(2, { redisTopology: 'single' }, { RATE_LIMIT_API: '200/60' });
  user = await signUp(cluster.apis[0]!);
  roomId = String(
    (
      await cluster.apis[0]!('POST', '/v1/rooms', {
        token: user.accessToken,
        body: { name: 'r', visibility: 'public' },
      })
    ).body.id,
  );
});
afterAll(() => cluster?.stop());

const api = (i = 0) => cluster.apis[i]!;
const metricsOf = async (i: number) =>
  (await fetch(`http://127.0.0.1:${cluster.processes[i]!.ports.managementPort}/metrics`)).text();
const listMessages = (i: number, token = user.accessToken) =>
  api(i)('GET', `/v1/rooms/${roomId}/messages`, { token });

/** Reads on each process until the circuit's half-open trial has closed it again. */
async function expectCircuitClosesOnBoth(circuit: string, token: string): Promise<void> {
  for (const i of [0, 1]) {
    const closed = await until(
      async () => {
        await listMessages(i, token);
        return (await metricsOf(i)).includes(`circuit_breaker_state{circuit="${circuit}"} 0`);
      },
      20_000,
      100,
    );
    expect(closed).toBe(true);
  }
}

describe('circuit breakers', () => {
  it('serve reads from the primary while the replica is stopped', async () => {
    const reader = await signUp(api(), 'replica-outage'); // its own rate-limit budget
    await cluster.stack.mysql.replica!.stop();
    try {
      // Every read is served (by the primary), and once failures outweigh the successes in the
      // breaker's rolling window, the replica's circuit opens on each process.
      for (const i of [0, 1]) {
        const opened = await until(
          async () => {
            expect((await listMessages(i, reader.accessToken)).status).toBe(200);
            return /circuit_breaker_state\{circuit="mysql-replica"\} [12]/.test(await metricsOf(i));
          },
          5_000,
          100,
        );
        expect(opened).toBe(true);
      }
    } finally {
      await cluster.stack.mysql.replica!.start();
    }
    // And the replica's circuit closes again by itself once it answers.
    await expectCircuitClosesOnBoth('mysql-replica', reader.accessToken);
  });

  it('fail fast with 503 and Retry-After once the primary’s circuit is open, and recover without a restart', async () => {
    const post = (i: number) =>
      api(i)('POST', `/v1/rooms/${roomId}/messages`, {
        token: user.accessToken,
        body: { body: 'during outage' },
        headers: { 'Idempotency-Key': randomUUID() },
      });
    const readyz = (i: number) =>
      fetch(`http://127.0.0.1:${cluster.processes[i]!.ports.managementPort}/readyz`);
    // In the endpoints, as a pod is only after a successful probe.
    expect((await readyz(0)).status).toBe(200);
    // A room nobody has read yet: no process has it cached, so its reads must load it during the outage.
    const quietRoom = await api(0)('POST', '/v1/rooms', {
      token: user.accessToken,
      body: { name: 'quiet', visibility: 'public' },
    });
    await cluster.stack.mysql.waitForReplication();
    await cluster.stack.mysql.primary.stop();
    try {
      // Failures (503 already: the dependency is unavailable) until the circuit opens.
      const opened = await until(
        async () => {
          expect((await post(0)).status).toBe(503);
          return /circuit_breaker_state\{circuit="mysql-primary"\} 2/.test(await metricsOf(0));
        },
        10_000,
        100,
      );
      expect(opened).toBe(true);
      const failFast = await post(0);
      expect(failFast.status).toBe(503);
      expect(failFast.headers.get('content-type')).toBe('application/problem+json');
      expect(failFast.headers.get('retry-after')).toBe('5');
      expect(failFast.body.detail).toMatch(/mysql-primary is unavailable/);
      console.info(`503 from an open primary circuit in ${failFast.ms.toFixed(1)} ms`);
      expect(failFast.ms).toBeLessThan(100);
      expect(cluster.processes[0]!.logs).toContainEqual(
        expect.objectContaining({ msg: 'circuit mysql-primary open' }),
      );
      // The process stays in the endpoints: it answers the outage itself, and serves what it can.
      const readiness = await readyz(0);
      expect(readiness.status).toBe(200);
      expect(await readiness.json()).toMatchObject({ status: 'degraded' });
      const read = await api(0)('GET', `/v1/rooms/${String(quietRoom.body.id)}/messages`, {
        token: user.accessToken,
      });
      expect(read.status).toBe(200); // room and messages from the replica
    } finally {
      await cluster.stack.mysql.primary.start();
    }
    await cluster.stack.mysql.waitForReplication();
    // The half-open probe closes the circuit again once the primary answers.
    expect(await until(async () => (await post(0)).status === 201, 20_000, 100)).toBe(true);
    expect(await metricsOf(0)).toMatch(/circuit_breaker_state\{circuit="mysql-primary"\} 0/);
  });

  it('keep reads and rate limits working while Redis is down, and say so in the metrics', async () => {
    const reader = await signUp(api(), 'redis-outage');
    expect((await listMessages(1, reader.accessToken)).status).toBe(200); // token now cached on process 1
    await cluster.stack.redis.nodes[0]!.stop();
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 205; i++) statuses.push((await listMessages(1, reader.accessToken)).status);
      // Served from MySQL, limited by the per-process fallback (200 per window on this process).
      expect(statuses.slice(0, 198).every((status) => status === 200)).toBe(true);
      expect(statuses).toContain(429);
      const metrics = await metricsOf(1);
      expect(metrics).toMatch(/parley_rate_limit_fallback_total\{tier="api"\} [1-9]\d*/);
      expect(metrics).toMatch(/circuit_breaker_state\{circuit="redis"\} [12]/);
      expect(metrics).toMatch(/parley_cache_requests_total\{cache="room",outcome="error"\} [1-9]\d*/);
    } finally {
      await cluster.stack.redis.nodes[0]!.start();
    }
    // Recovery without a restart: the Redis circuit closes again on both processes.
    const fresh = await signUp(api(), 'after-outage');
    await expectCircuitClosesOnBoth('redis', fresh.accessToken);
  });
});

// Last: its 200 successful reads would otherwise fill the breakers' rolling windows above.
describe('rate limits', () => {
  it('share one api budget across both processes, with RateLimit headers, then 429', async () => {
    const limited = await signUp(api(), 'limited');
    const statuses: number[] = [];
    let last;
    for (let i = 0; i < 202; i++) {
      last = await listMessages(i % 2, limited.accessToken);
      statuses.push(last.status);
      if (i === 0) {
        expect(last.headers.get('ratelimit-policy')).toBe('"api";q=200;w=60');
        expect(last.headers.get('ratelimit')).toMatch(/^"api";r=199;t=\d+$/);
      }
    }
    expect(statuses.filter((status) => status === 200)).toHaveLength(200);
    expect(statuses.slice(200)).toEqual([429, 429]);
    expect(last!.headers.get('content-type')).toBe('application/problem+json');
    expect(Number(last!.headers.get('retry-after'))).toBeGreaterThan(0);
  });
});
