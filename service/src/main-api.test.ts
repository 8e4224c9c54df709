import { request } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freeze } from './test-support/freeze.js';
import { startServiceProcess, type ServiceProcess } from './test-support/service-process.js';
import { startTestStack, type TestStack } from './test-support/stack.js';

let testStack: TestStack;

beforeAll(async () => {
  testStack = await startTestStack(
    { mysqlReplica: false, redisTopology: 'single' },
    { READINESS_TIMEOUT_MS: '3000' },
  );
});
afterAll(() => testStack?.stack.stop());

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function connectionRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}

describe('the API process', () => {
  let api: ServiceProcess;

  beforeAll(async () => {
    api = await startServiceProcess('main-api', testStack.env);
  });
  afterAll(() => api?.stop('SIGKILL'));

  it('serves probes on the API port and on the management port', async () => {
    expect((await get(api.ports.port!, '/livez')).status).toBe(200);
    expect((await get(api.ports.port!, '/readyz')).status).toBe(200);
    expect((await get(api.ports.managementPort!, '/readyz')).status).toBe(200);
    expect((await get(api.ports.managementPort!, '/metrics')).body).toContain('process_cpu_seconds_total');
  });

  it('drains on SIGTERM: the in-flight request completes, new connections are refused, readiness is 503, exit 0', async () => {
    const { port, managementPort } = api.ports as { port: number; managementPort: number };
    // Freeze the primary so a readiness check on the API port stays in flight for ~3 s.
    const mysqlPid = testStack.stack.mysql.primary.pid()!;
    await freeze(mysqlPid);
    try {
      const inFlight = get(port, '/readyz');
      await new Promise((resolve) => setTimeout(resolve, 300));
      const signalledAt = performance.now();
      api.child.kill('SIGTERM');
      await new Promise((resolve) => setTimeout(resolve, 300));

      expect(await connectionRefused(port)).toBe(true);
      const duringDrain = get(managementPort, '/readyz');

      const completed = await inFlight;
      expect(completed.status).toBe(503); // it finished (the primary is frozen), it was not cut off
      expect(JSON.parse(completed.body).checks['mysql-primary'].error).toMatch(/no answer within 3000 ms/);
      const drainingReadiness = await duringDrain;
      expect(drainingReadiness.status).toBe(503);
      expect(JSON.parse(drainingReadiness.body).status).toBe('draining');

      process.kill(mysqlPid, 'SIGCONT');
      expect(await api.exited).toBe(0);
      console.info(`api exited ${(performance.now() - signalledAt).toFixed(0)} ms after SIGTERM`);
      const closed = api.logs.filter((line) => line.msg === 'closed').map((line) => line.resource);
      // The API port drains first (readiness reported the drain above); then every client closes.
      expect([...closed].sort()).toEqual([
        'api server',
        'management server',
        'mysql',
        'redis',
        'redis subscriber',
      ]);
      expect(closed[0]).toBe('api server');
    } finally {
      process.kill(mysqlPid, 'SIGCONT');
    }
  });
});
