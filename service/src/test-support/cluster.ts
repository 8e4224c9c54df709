import { randomUUID } from 'node:crypto';
import type { DevstackOptions } from '../../devstack/index.js';
import { startServiceProcess, type ServiceProcess } from './service-process.js';
import { startTestStack, type TestStack } from './stack.js';

export interface Reply<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  body: T;
  ms: number;
}

export interface RequestOptions {
  token?: string;
  body?: unknown;
  headers?: Record<string, string>;
}

/** A minimal client for one API process: JSON in, JSON (or problem+json) out, timed. */
export function client(baseUrl: string) {
  return async function call<T = Record<string, unknown>>(
    method: string,
    path: string,
    options: RequestOptions = {},
  ): Promise<Reply<T>> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    if (options.body !== undefined) headers['content-type'] ??= 'application/json';
    const startedAt = performance.now();
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers,
      body:
        options.body === undefined
          ? undefined
          : typeof options.body === 'string'
            ? options.body
            : JSON.stringify(options.body),
    });
    const text = await response.text();
    return {
      status: response.status,
      headers: response.headers,
      body: (text ? JSON.parse(text) : {}) as T,
      ms: performance.now() - startedAt,
    };
  };
}

export type Client = ReturnType<typeof client>;

export interface Cluster extends TestStack {
  processes: ServiceProcess[];
  /** One client per API process: `apis[0]` and `apis[1]` are different pods sharing one stack. */
  apis: Client[];
  stop(): Promise<void>;
}

/** A devstack with `count` real API processes on it, as a Deployment with `count` replicas. */
export async function startCluster(
  count = 2,
  options: DevstackOptions = {},
  env: Record<string, string> = {},
): Promise<Cluster> {
  const testStack = await startTestStack(options, { RATE_LIMIT_API: '100000/60', ...env });
  const processes: ServiceProcess[] = [];
  try {
    for (let i = 0; i < count; i++) {
      processes.push(await startServiceProcess('main-api', { ...testStack.env, INSTANCE_ID: `api-${i}` }));
    }
  } catch (error) {
    await Promise.all(processes.map((process) => process.stop('SIGKILL')));
    await testStack.stack.stop();
    throw error;
  }
  return {
    ...testStack,
    processes,
    apis: processes.map((process) => client(`http://127.0.0.1:${process.ports.port}`)),
    stop: async () => {
      await Promise.all(processes.map((process) => process.stop('SIGKILL')));
      await testStack.stack.stop();
    },
  };
}

export interface User {
  id: string;
  username: string;
  password: string;
  accessToken: string;
  refreshToken: string;
}

/** Registers and logs in a fresh user through `api`. */
export async function signUp(api: Client, prefix = 'user'): Promise<User> {
  const username = `${prefix}-${randomUUID().slice(0, 8)}`;
  const password = `pw-${randomUUID()}`;
  const registered = await api('POST', '/v1/auth/register', { body: { username, password } });
  if (registered.status !== 201) throw new Error(`register failed: ${JSON.stringify(registered.body)}`);
  const login = await api<{ accessToken: string; refreshToken: string }>('POST', '/v1/auth/login', {
    body: { username, password },
  });
  if (login.status !== 200) throw new Error(`login failed: ${JSON.stringify(login.body)}`);
  return { id: String(registered.body.id), username, password, ...login.body };
}
