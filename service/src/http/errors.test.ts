import { createRoute, z } from '@hono/zod-openapi';
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listen, type RunningServer } from '../platform/http-server.js';
import { buildTestApp, type TestApp } from '../test-support/app.js';
import { SECURITY_HEADERS } from './security-headers.js';
import { startTestStack, type TestStack } from '../test-support/stack.js';

/*
 * The HTTP edge's promise: whatever a client sends, the answer is application/problem+json with a
 * useful detail, and never a 5xx for bad input. A probe route with a strict body schema stands in
 * for the feature routes, wired through the same app, middleware and validation hook.
 */
let testStack: TestStack;
let subject: TestApp;

const probeRoute = createRoute({
  method: 'post',
  path: '/v1/probe/{id}',
  request: {
    params: z.object({ id: z.uuid() }),
    query: z.object({ limit: z.coerce.number().int().min(1).max(100).optional() }),
    body: {
      required: true,
      content: {
        'application/json': {
          schema: z.strictObject({ name: z.string().min(1).max(20), count: z.number().int().nonnegative() }),
        },
      },
    },
  },
  responses: {
    200: { description: 'echo', content: { 'application/json': { schema: z.object({ ok: z.boolean() }) } } },
  },
});

beforeAll(async () => {
  testStack = await startTestStack(
    { mysqlReplica: false, redisTopology: 'single' },
    { BODY_LIMIT_BYTES: '2048' },
  );
  subject = await buildTestApp(testStack.config);
  subject.app.openapi(probeRoute, (c) => c.json({ ok: true }, 200));
  subject.app.get('/v1/explode', () => {
    throw new Error('database password is hunter2 at /srv/app/secret.ts:12');
  });
});
afterAll(async () => {
  await subject?.close();
  await testStack?.stack.stop();
});

const ID = '0191d3b4-5d0e-7a3c-9f1e-3c2b1a000001';
const json = (body: unknown, headers: Record<string, string> = {}): RequestInit => ({
  method: 'POST',
  headers: { 'Content-Type': 'application/json', ...headers },
  body: typeof body === 'string' ? body : JSON.stringify(body),
});
const probe = `/v1/probe/${ID}`;
const big = 'x'.repeat(4096);

type Case = [label: string, path: string, init: RequestInit, status: number, detail: RegExp];
const cases: Case[] = [
  ['unknown route', '/nope', {}, 404, /no route matches GET \/nope/],
  ['unknown versioned route', '/v1/does-not-exist', {}, 404, /no route matches/],
  ['unknown route with POST', '/v2/probe', json({}), 404, /no route matches POST \/v2\/probe/],
  ['path traversal attempt', '/v1/../../etc/passwd', {}, 404, /no route matches/],
  ['encoded garbage in the path', '/v1/%ff%fe', {}, 404, /no route matches/],
  [
    'DELETE on the probe route',
    probe,
    { method: 'DELETE' },
    405,
    /DELETE is not allowed on .*; allowed: POST/,
  ],
  ['PUT on the OpenAPI document', '/openapi.json', { method: 'PUT' }, 405, /allowed: GET, HEAD/],
  // Probes and metrics are served on the management port only (features/health).
  ['liveness on the API port', '/livez', {}, 404, /no route matches GET \/livez/],
  ['readiness on the API port', '/readyz', {}, 404, /no route matches GET \/readyz/],
  ['metrics on the API port', '/metrics', {}, 404, /no route matches GET \/metrics/],
  ['truncated JSON', probe, json('{"name": "a"'), 400, /not valid JSON/],
  ['JSON with a trailing comma', probe, json('{"name": "a", "count": 1,}'), 400, /not valid JSON/],
  ['single-quoted JSON', probe, json("{'name': 'a'}"), 400, /not valid JSON/],
  ['bare word body', probe, json('hello'), 400, /not valid JSON/],
  ['body of NaN', probe, json('{"name":"a","count":NaN}'), 400, /not valid JSON/],
  ['oversized body', probe, json({ name: big, count: 1 }), 413, /limited to 2048 bytes/],
  [
    'oversized body without JSON type',
    probe,
    { method: 'POST', body: big, headers: { 'Content-Type': 'text/plain' } },
    413,
    /limited to 2048 bytes/,
  ],
  [
    'text/plain body',
    probe,
    { method: 'POST', body: '{}', headers: { 'Content-Type': 'text/plain' } },
    415,
    /must be application\/json, not "text\/plain"/,
  ],
  [
    'form body',
    probe,
    { method: 'POST', body: 'a=1', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } },
    415,
    /application\/json/,
  ],
  [
    'multipart body',
    probe,
    { method: 'POST', body: '--x--', headers: { 'Content-Type': 'multipart/form-data; boundary=x' } },
    415,
    /application\/json/,
  ],
  [
    'XML body',
    probe,
    { method: 'POST', body: '<a/>', headers: { 'Content-Type': 'application/xml' } },
    415,
    /application\/json/,
  ],
  [
    'body without a content type',
    probe,
    { method: 'POST', body: new Uint8Array([123, 125]) },
    415,
    /not untyped/,
  ],
  ['JSON array instead of object', probe, json([1, 2]), 400, /body: /],
  ['JSON null', probe, json('null'), 400, /body: /],
  ['JSON string', probe, json('"name"'), 400, /body: /],
  ['empty object', probe, json({}), 400, /body\.name: .*; body\.count: /],
  ['missing field', probe, json({ name: 'a' }), 400, /body\.count: /],
  ['wrong type', probe, json({ name: 'a', count: '1' }), 400, /body\.count: .*number/],
  ['negative number', probe, json({ name: 'a', count: -1 }), 400, /body\.count: /],
  ['float instead of int', probe, json({ name: 'a', count: 1.5 }), 400, /body\.count: /],
  ['string too long', probe, json({ name: 'a'.repeat(21), count: 1 }), 400, /body\.name: /],
  ['empty string', probe, json({ name: '', count: 1 }), 400, /body\.name: /],
  ['unknown field', probe, json({ name: 'a', count: 1, admin: true }), 400, /admin/],
  ['bad UUID in the path', '/v1/probe/not-a-uuid', json({ name: 'a', count: 1 }), 400, /path\.id: /],
  ['query out of range', `${probe}?limit=1000`, json({ name: 'a', count: 1 }), 400, /query\.limit: /],
  ['query not a number', `${probe}?limit=ten`, json({ name: 'a', count: 1 }), 400, /query\.limit: /],
  ['a handler that throws', '/v1/explode', {}, 500, /an unexpected error occurred; request id /],
];

describe('the HTTP edge answers bad requests with problem+json', () => {
  it('has a table of at least 30 bad requests', () => expect(cases.length).toBeGreaterThanOrEqual(30));

  it.each(cases)('%s → %i', async (_label, path, init, status, detail) => {
    const response = await subject.app.request(path, init);
    expect(response.status).toBe(status);
    expect(response.headers.get('content-type')).toBe('application/problem+json');
    const body = (await response.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      status,
      type: expect.stringMatching(/^urn:parley:problem:/),
      title: expect.any(String),
    });
    expect(body.detail).toMatch(detail);
    if (status < 500) expect(JSON.stringify(body)).not.toMatch(/\bat .*\.ts:\d+/);
  });

  it('lists every failing field for a validation error', async () => {
    const response = await subject.app.request(probe, json({ name: 7, count: 'x', extra: 1 }));
    const body = (await response.json()) as { errors: { path: string }[] };
    expect(body.errors.map((error) => error.path).sort()).toEqual(['body', 'body.count', 'body.name']);
  });

  it('says which methods are allowed in the Allow header', async () => {
    const response = await subject.app.request('/openapi.json', { method: 'DELETE' });
    expect(response.headers.get('allow')).toBe('GET, HEAD');
  });

  it('reveals nothing internal in a 500, but logs it with the request id', async () => {
    const response = await subject.app.request('/v1/explode', { headers: { 'X-Request-Id': 'trace-500' } });
    const text = await response.text();
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain('secret.ts');
    expect(JSON.parse(text)).toMatchObject({ requestId: 'trace-500' });
    const logged = subject.logLines.filter((line) => line.reqId === 'trace-500');
    expect(logged).toContainEqual(expect.objectContaining({ msg: 'unhandled error', level: 50 }));
  });

  it('accepts a good request through the same chain', async () => {
    const response = await subject.app.request(`${probe}?limit=5`, json({ name: 'ok', count: 3 }));
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ ok: true });
  });
});

describe('request ids', () => {
  it('echoes a client-supplied X-Request-Id and puts it in every log line of the request', async () => {
    const response = await subject.app.request('/nope', { headers: { 'X-Request-Id': 'client-abc-123' } });
    expect(response.headers.get('x-request-id')).toBe('client-abc-123');
    const lines = subject.logLines.filter((line) => line.reqId === 'client-abc-123');
    expect(lines).toContainEqual(expect.objectContaining({ msg: 'request', status: 404, path: '/nope' }));
  });

  it('generates one when the client sends none or an unusable one', async () => {
    const generated = (await subject.app.request('/nope')).headers.get('x-request-id');
    expect(generated).toMatch(/^[0-9a-f-]{36}$/);
    const replaced = (
      await subject.app.request('/nope', { headers: { 'X-Request-Id': 'bad id with spaces' } })
    ).headers.get('x-request-id');
    expect(replaced).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('the same edge over real HTTP (framing the in-process requests above cannot show)', () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await listen(subject.app.fetch, '127.0.0.1', 0);
  });
  afterAll(() => server?.close(1_000));

  /** Sends `chunks` as the body, framed as `framing` says, and reads the answer. */
  function send(framing: 'content-length' | 'chunked', chunks: string[], contentType = 'application/json') {
    const body = chunks.join('');
    const headers: Record<string, string | number> = { 'Content-Type': contentType };
    if (framing === 'content-length') headers['Content-Length'] = Buffer.byteLength(body);
    else headers['Transfer-Encoding'] = 'chunked';
    return new Promise<{ status: number; body: Record<string, unknown> }>((resolve, reject) => {
      const request = httpRequest(
        { host: '127.0.0.1', port: server.port, method: 'POST', path: probe, headers },
        (response) => {
          let text = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => (text += chunk));
          response.on('end', () => resolve({ status: response.statusCode!, body: JSON.parse(text) }));
        },
      );
      request.on('error', reject);
      for (const chunk of chunks) request.write(chunk);
      request.end();
    });
  }
  const oversized = JSON.stringify({ name: big, count: 1 });

  it.each(['content-length', 'chunked'] as const)(
    'refuses an oversized %s body with 413',
    async (framing) => {
      const reply = await send(framing, [oversized.slice(0, 1000), oversized.slice(1000)]);
      expect(reply.status).toBe(413);
      expect(reply.body.detail).toMatch(/limited to 2048 bytes/);
    },
  );

  it.each(['content-length', 'chunked'] as const)('accepts a small %s body', async (framing) => {
    const reply = await send(framing, ['{"name": "ok",', ' "count": 3}']);
    expect(reply).toEqual({ status: 200, body: { ok: true } });
  });

  it('sends the security headers and the request id, set on Node’s response, with every answer', async () => {
    const base = `http://127.0.0.1:${server.port}`;
    const answers = [
      await fetch(`${base}${probe}?limit=5`, json({ name: 'ok', count: 3 })),
      await fetch(`${base}/nope`, { headers: { 'X-Request-Id': 'edge-404' } }),
      await fetch(`${base}/v1/explode`),
    ];
    expect(answers.map((response) => response.status)).toEqual([200, 404, 500]);
    for (const response of answers) {
      for (const [name, value] of Object.entries(SECURITY_HEADERS))
        expect(response.headers.get(name)).toBe(value);
      expect(response.headers.get('content-type')).toMatch(/json/);
    }
    expect(answers[1]!.headers.get('x-request-id')).toBe('edge-404');
    const generated = answers[2]!.headers.get('x-request-id');
    expect(generated).toMatch(/^[0-9a-f-]{36}$/);
    expect(((await answers[2]!.json()) as { requestId: string }).requestId).toBe(generated);
  });

  it('still answers 415 for a chunked body of the wrong type', async () => {
    const reply = await send('chunked', ['a=1'], 'application/x-www-form-urlencoded');
    expect(reply.status).toBe(415);
  });
});

describe('response headers', () => {
  it('sends the security headers on successes and on problems alike', async () => {
    const ok = await subject.app.request(`${probe}?limit=5`, json({ name: 'ok', count: 3 }));
    const problem = await subject.app.request('/v1/explode');
    for (const response of [ok, problem]) {
      for (const [name, value] of Object.entries(SECURITY_HEADERS))
        expect(response.headers.get(name)).toBe(value);
    }
  });

  it('forbids caching of probes and scrapes, and only of those', async () => {
    for (const path of ['/livez', '/readyz', '/metrics'])
      expect((await subject.management.request(path)).headers.get('cache-control')).toBe('no-store');
    const ok = await subject.app.request(`${probe}?limit=5`, json({ name: 'ok', count: 3 }));
    expect(ok.headers.get('cache-control')).toBeNull();
  });
});

describe('metrics', () => {
  it('records request durations by route pattern, not raw path', async () => {
    await subject.app.request(`/v1/probe/${ID}`, json({ name: 'ok', count: 1 }));
    const metrics = await (await subject.management.request('/metrics')).text();
    expect(metrics).toMatch(
      /http_server_request_duration_seconds_count\{method="POST",route="\/v1\/probe\/:id",status_code="200"\} \d+/,
    );
    expect(metrics).toMatch(/route="unmatched",status_code="404"/);
    expect(metrics).not.toContain(ID);
    expect(metrics).toMatch(/nodejs_eventloop_lag_p99_seconds/);
    expect(metrics).toMatch(/circuit_breaker_state\{circuit="mysql-primary"\} 0/);
  });
});
