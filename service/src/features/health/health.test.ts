import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freeze } from '../../test-support/freeze.js';
import type { Health } from '../../test-support/health.js';

import { users } from '../../db/schema.js';
import { buildTestApp, type TestApp } from '../../test-support/app.js';
import { startTestStack, type TestStack } from '../../test-support/stack.js';
import { dependencyChecks } from './checks.js';
import { healthRoutes } from './routes.js';
import { eventually } from '../../test-support/until.js';

let testStack: TestStack;
let subject: TestApp;

beforeAll(async () => {
  testStack = await startTestStack({ redisTopology: 'single' });
  subject = await buildTestApp(testStack.config);
});
afterAll(async () => {
  await subject?.close();
  await testStack?.stack.stop();
});

async function readyz() {
  const response = await subject.management.request('/readyz');
  return { status: response.status, body: (await response.json()) as Health };
}

describe('/livez and /readyz', () => {
  it('is alive and ready with every dependency up, and reports pool stats', async () => {
    expect((await subject.management.request('/livez')).status).toBe(200);
    // Ready once the clients have connected, which takes a moment after start-up.
    const { status, body } = await eventually(readyz, (result) => result.body.status === 'ready');
    expect(status).toBe(200);
    expect(body.status).toBe('ready');
    expect(Object.keys(body.checks).sort()).toEqual(['mysql-primary', 'mysql-replica', 'redis']);
    for (const check of Object.values(body.checks)) expect(check).toMatchObject({ status: 'up' });
    expect(body.pools.primary).toEqual({ total: expect.any(Number), idle: expect.any(Number), waiting: 0 });
  });

  it('stays ready, reporting "degraded", while the MySQL primary is stopped: the app answers for it', async () => {
    await testStack.stack.mysql.primary.stop();
    try {
      const down = await readyz();
      expect(down.status).toBe(200);
      expect(down.body.status).toBe('degraded');
      expect(down.body.checks['mysql-primary']).toMatchObject({
        status: 'down',
        required: true,
        error: expect.any(String),
      });
      expect(down.body.checks['mysql-replica']).toMatchObject({ status: 'up' });
      expect((await subject.management.request('/livez')).status).toBe(200); // liveness does not follow dependencies
    } finally {
      await testStack.stack.mysql.primary.start();
    }
    await testStack.stack.mysql.waitForReplication();
    const up = await eventually(readyz, (result) => result.body.status === 'ready');
    expect(up.status).toBe(200);
  });

  it('is 503 "starting" until the primary has answered once, so a pod that cannot reach it never joins', async () => {
    await testStack.stack.mysql.primary.stop();
    // A new pod's health routes: nothing has answered it yet.
    const fresh = healthRoutes({
      checks: dependencyChecks(subject.db, subject.redis),
      timeoutMs: 1_000,
      isDraining: () => false,
      registry: subject.metrics.registry,
    });
    const readyzOf = async () => {
      const response = await fresh.request('/readyz');
      return { status: response.status, body: (await response.json()) as Health };
    };
    try {
      const starting = await readyzOf();
      expect(starting.status).toBe(503);
      expect(starting.body.status).toBe('starting');
      expect(starting.body.checks['redis']).toMatchObject({ status: 'up' });
    } finally {
      await testStack.stack.mysql.primary.start();
    }
    await testStack.stack.mysql.waitForReplication();
    expect((await eventually(readyzOf, (result) => result.body.status === 'ready')).status).toBe(200);
    // Once started, a later outage no longer takes it out.
    await testStack.stack.mysql.primary.stop();
    try {
      expect(await readyzOf()).toMatchObject({ status: 200, body: { status: 'degraded' } });
    } finally {
      await testStack.stack.mysql.primary.start();
    }
    await testStack.stack.mysql.waitForReplication();
  });

  it('stays ready when only the replica is down (it is optional)', async () => {
    await testStack.stack.mysql.replica!.stop();
    try {
      const { status, body } = await readyz();
      expect(status).toBe(200);
      expect(body.status).toBe('degraded');
      expect(body.checks['mysql-replica']).toMatchObject({ status: 'down', required: false });
    } finally {
      await testStack.stack.mysql.replica!.start();
    }
  });

  it('answers within the readiness deadline even when the primary hangs', async () => {
    const thaw = await freeze(testStack.stack.mysql.primary);
    try {
      const startedAt = performance.now();
      const { status, body } = await readyz();
      expect(status).toBe(200);
      expect(body.status).toBe('degraded');
      expect(body.checks['mysql-primary']?.error).toMatch(/no answer within 1000 ms/);
      expect(performance.now() - startedAt).toBeLessThan(5_000); // bound generous for a shared machine
    } finally {
      await thaw();
    }
  });
});

describe('/readyz while draining', () => {
  it('answers 503 "draining" at once, without waiting for a dependency that hangs', async () => {
    // A deadline far beyond the wait below: an answer within it cannot have come from the checks.
    const draining = healthRoutes({
      checks: dependencyChecks(subject.db, subject.redis),
      timeoutMs: 60_000,
      isDraining: () => true,
      registry: subject.metrics.registry,
    });
    await subject.db.ping('primary', 1_000); // a pooled connection, so the check hangs rather than fails to connect
    const thaw = await freeze(testStack.stack.mysql.primary);
    try {
      const noAnswer = new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 10_000));
      const response = await Promise.race([draining.request('/readyz'), noAnswer]);
      expect(response?.status).toBe(503);
      expect(response?.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await response!.json()).toMatchObject({ status: 'draining', checks: {} });
    } finally {
      await thaw();
    }
  });
});

describe('read routing', () => {
  it('reads from the replica while it is up', async () => {
    const serverId = await subject.db.read((db) => db.execute(sql`SELECT @@server_id AS id`));
    expect((serverId[0] as unknown as { id: number }[])[0]!.id).toBe(2);
  });

  it('reads the latest from the primary, and from the replica while the primary is stopped', async () => {
    const serverId = () =>
      subject.db.readLatest(async (db) => {
        const [rows] = (await db.execute(sql`SELECT @@server_id AS id`)) as unknown as [{ id: number }[]];
        return rows[0]!.id;
      });
    expect(await serverId()).toBe(1);
    await testStack.stack.mysql.primary.stop();
    try {
      expect(await serverId()).toBe(2);
    } finally {
      await testStack.stack.mysql.primary.start();
    }
    await testStack.stack.mysql.waitForReplication();
  });

  it('falls back to the primary when the replica is stopped', async () => {
    await subject.db.write((db) =>
      db
        .insert(users)
        .values({ id: '0191d3b4-5d0e-7a3c-9f1e-3c2b1a00f00d', username: 'fallback', passwordHash: 'x' }),
    );
    await testStack.stack.mysql.replica!.stop();
    try {
      const rows = await subject.db.read((db) => db.select({ username: users.username }).from(users));
      expect(rows).toContainEqual({ username: 'fallback' });
      const serverId = await subject.db.read((db) => db.execute(sql`SELECT @@server_id AS id`));
      expect((serverId[0] as unknown as { id: number }[])[0]!.id).toBe(1);
    } finally {
      await testStack.stack.mysql.replica!.start();
    }
  });
});
