import { randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client } from './test-support/cluster.js';
import { startServiceProcess, type ServiceProcess } from './test-support/service-process.js';
import { startTestStack, type TestStack } from './test-support/stack.js';
import { connectionRefused } from '../devstack/ports.js';

let testStack: TestStack;

beforeAll(async () => {
  testStack = await startTestStack({ mysqlReplica: false, redisTopology: 'single' });
});
afterAll(() => testStack?.stack.stop());

function get(
  port: number,
  path: string,
): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    // Asks to keep the connection open, as a pooled client would; the answer says whether it may.
    const headers = { connection: 'keep-alive' };
    const req = request({ host: '127.0.0.1', port, path, agent: false, headers }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** POSTs a JSON body in two halves, the second once `afterFirstHalf` settles: in flight in between. */
function postInTwoHalves(
  port: number,
  path: string,
  body: string,
  afterFirstHalf: () => Promise<void>,
): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers }));
      },
    );
    req.on('error', reject);
    const half = Math.floor(body.length / 2);
    req.write(body.slice(0, half));
    afterFirstHalf().then(() => req.end(body.slice(half)), reject);
  });
}

describe('the API process', () => {
  let api: ServiceProcess;

  beforeAll(async () => {
    api = await startServiceProcess('main-api', testStack.env);
  });
  afterAll(() => api?.stop('SIGKILL'));

  it('serves probes and metrics on the management port only; the API port answers 404 for them', async () => {
    const live = await get(api.ports.managementPort!, '/livez');
    expect(live.status).toBe(200);
    expect(live.headers.connection).toBe('keep-alive');
    expect((await get(api.ports.managementPort!, '/readyz')).status).toBe(200);
    expect((await get(api.ports.managementPort!, '/metrics')).body).toContain('process_cpu_seconds_total');
    for (const path of ['/livez', '/readyz', '/metrics']) {
      const hidden = await get(api.ports.port!, path);
      expect(hidden.status, path).toBe(404);
      expect(hidden.headers['content-type'], path).toBe('application/problem+json');
      expect(JSON.parse(hidden.body).detail, path).toBe(`no route matches GET ${path}`);
    }
  });

  it('drains on SIGTERM: the in-flight request completes, new connections are refused, readiness is 503, exit 0', async () => {
    const { port, managementPort } = api.ports as { port: number; managementPort: number };
    let signalledAt = 0;
    let refusedDuringDrain: boolean | undefined;
    let readinessDuringDrain: ReturnType<typeof get> | undefined;
    // The login's body is half sent when SIGTERM arrives; the rest follows during the drain.
    const credentials = JSON.stringify({ username: 'nobody-here', password: 'not-a-password' });
    const inFlight = postInTwoHalves(port, '/v1/auth/login', credentials, async () => {
      await new Promise((resolve) => setTimeout(resolve, 300));
      signalledAt = performance.now();
      api.child.kill('SIGTERM');
      await new Promise((resolve) => setTimeout(resolve, 300));
      refusedDuringDrain = await connectionRefused(port);
      readinessDuringDrain = get(managementPort, '/readyz');
      await readinessDuringDrain;
    });

    const completed = await inFlight;
    expect(completed.status).toBe(401); // it was answered (no such user), not cut off
    expect(completed.headers.connection).toBe('close'); // reconnect, to another pod
    expect(completed.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(refusedDuringDrain).toBe(true);
    const drainingReadiness = await readinessDuringDrain!;
    expect(drainingReadiness.status).toBe(503);
    expect(JSON.parse(drainingReadiness.body).status).toBe('draining');

    expect(await api.exited).toBe(0);
    console.info(`api exited ${(performance.now() - signalledAt).toFixed(0)} ms after SIGTERM`);
    const closed = api.logs.filter((line) => line.msg === 'closed').map((line) => line.resource);
    // The API port drains first (readiness reported the drain above); then every client closes.
    expect([...closed].sort()).toEqual([
      'api server',
      'job queues',
      'management server',
      'mysql',
      'redis',
      'redis subscriber',
      's3 client',
    ]);
    expect(closed[0]).toBe('api server');
  });
});

describe('an API process whose grace is longer than 10 s', () => {
  let api: ServiceProcess;

  beforeAll(async () => {
    api = await startServiceProcess('main-api', { ...testStack.env, SHUTDOWN_GRACE_MS: '15000' });
  });
  afterAll(() => api?.stop('SIGKILL'));

  it(
    'lets a request still in flight 12 s after SIGTERM finish with 200, then exits 0',
    { timeout: 60_000 },
    async () => {
      const port = api.ports.port!;
      const credentials = { username: `slow-${randomUUID().slice(0, 8)}`, password: `pw-${randomUUID()}` };
      expect(
        (await client(`http://127.0.0.1:${port}`)('POST', '/v1/auth/register', { body: credentials })).status,
      ).toBe(201);

      // The client sends half the login body, SIGTERM arrives, and the rest follows 12 s later.
      const login = postInTwoHalves(port, '/v1/auth/login', JSON.stringify(credentials), async () => {
        await new Promise((resolve) => setTimeout(resolve, 300));
        api.child.kill('SIGTERM');
        await new Promise((resolve) => setTimeout(resolve, 12_000));
      });

      const completed = await login;
      expect(completed.status).toBe(200);
      expect(JSON.parse(completed.body)).toMatchObject({ accessToken: expect.any(String) });
      expect(await api.exited).toBe(0);
      expect(api.logs.filter((line) => line.msg === 'close failed')).toEqual([]);
      expect(api.logs.find((line) => line.resource === 'api server')).toMatchObject({ msg: 'closed' });
    },
  );
});
