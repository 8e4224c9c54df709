/** Profiles one API process under the room-read load: `node --import tsx bench/profile-room-read.ts`. */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts } from '../devstack/ports.js';
import { client, signUp } from '../src/test-support/cluster.js';
import { startTestStack } from '../src/test-support/stack.js';
import type { Options } from 'autocannon';
import { load } from './load.js';

const stack = await startTestStack(
  { mysqlReplica: false, redisTopology: 'single' },
  { RATE_LIMIT_API: '1000000000/60' },
);
const dir = mkdtempSync(join(tmpdir(), 'parley-prof-'));
const [port, managementPort] = (await freePorts(2)) as [number, number];
const child = spawn(
  process.execPath,
  ['--cpu-prof', `--cpu-prof-dir=${dir}`, '--import', 'tsx', 'src/main-api.ts'],
  {
    env: {
      ...process.env,
      ...stack.env,
      PORT: String(port),
      MANAGEMENT_PORT: String(managementPort),
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  },
);
for (
  let i = 0;
  i < 100 &&
  !(await fetch(`http://127.0.0.1:${managementPort}/readyz`).then(
    (r) => r.ok,
    () => false,
  ));
  i++
) {
  await new Promise((resolve) => setTimeout(resolve, 100));
}
const base = `http://127.0.0.1:${port}`;
const user = await signUp(client(base));
const room = await client(base)('POST', '/v1/rooms', {
  token: user.accessToken,
  body: { name: 'p', visibility: 'public' },
});
const path = process.argv[2] === 'post' ? `/v1/rooms/${room.body.id}/messages` : `/v1/rooms/${room.body.id}`;
const result = await load({
  url: `${base}${path}`,
  duration: 5,
  headers: { authorization: `Bearer ${user.accessToken}`, 'content-type': 'application/json' },
  ...(process.argv[2] === 'post'
    ? {
        method: 'POST',
        body: JSON.stringify({ body: 'x' }),
        requests: [
          {
            setupRequest: (r: { headers?: Record<string, string> }) => ({
              ...r,
              headers: { ...r.headers, 'idempotency-key': crypto.randomUUID() },
            }),
          },
        ],
      }
    : {}),
} as Options);
console.log(result);
child.kill('SIGTERM');
await new Promise((resolve) => child.once('exit', resolve));
await stack.stack.stop();
const profile = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'))!;
console.log(join(dir, profile));
