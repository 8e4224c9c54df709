import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { diesWithParent } from '../../devstack/local/local-server.js';
import { freePorts } from '../../devstack/ports.js';
import { until } from './until.js';

export interface Backend {
  port: number;
  /** Where its /readyz answers: the proxy stops sending it new connections once it says 503. */
  managementPort: number;
}

export interface Proxy {
  port: number;
  url: string;
  stop(): Promise<void>;
}

/**
 * A real HAProxy (Debian's `haproxy`, installed by .ci/install-missing) in front of API processes,
 * as a least-connections Ingress is: `balance leastconn`, each backend health-checked on its
 * management port's /readyz, and a connection that a backend refuses retried on another. WebSocket
 * upgrades pass through (HTTP mode tunnels them after the 101).
 */
export async function startProxy(backends: Backend[]): Promise<Proxy> {
  if (spawnSync('haproxy', ['-v'], { stdio: 'ignore' }).status !== 0)
    throw new Error('haproxy is not on PATH: install Debian’s haproxy package (.ci/install-missing does)');
  const [port] = (await freePorts(1)) as [number];
  const dir = mkdtempSync(join(tmpdir(), 'parley-haproxy-'));
  const config = [
    'global',
    // Each connection takes two descriptors (client and server side); the limit here is 20,000.
    '  maxconn 8000',
    'defaults',
    '  mode http',
    '  timeout connect 2s',
    '  timeout client 60s',
    '  timeout server 60s',
    '  timeout tunnel 1h',
    '  retries 3',
    // A readiness check may take its own deadline (READINESS_TIMEOUT_MS) under load; two misses in a
    // row take a backend out, as a readiness probe's failureThreshold would.
    '  timeout check 1500ms',
    '  option redispatch',
    'frontend api',
    `  bind 127.0.0.1:${port}`,
    '  default_backend apis',
    'backend apis',
    '  balance leastconn',
    '  option httpchk GET /readyz',
    '  http-check expect status 200',
    ...backends.map(
      (backend, i) =>
        `  server api${i} 127.0.0.1:${backend.port} check port ${backend.managementPort} inter 250ms fall 2 rise 1`,
    ),
  ].join('\n');
  writeFileSync(join(dir, 'haproxy.cfg'), `${config}\n`);
  const [command, args] = diesWithParent('haproxy', ['-db', '-f', join(dir, 'haproxy.cfg')], 'KILL');
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const up = await until(
    () =>
      fetch(`http://127.0.0.1:${port}/openapi.json`).then(
        (response) => response.ok,
        () => false,
      ),
    10_000,
    50,
  );
  if (!up) {
    child.kill('SIGKILL');
    throw new Error(`haproxy did not start:\n${stderr}`);
  }
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
