/**
 * Profiles one API process (compiled, on the image's Node, as `npm run bench` runs it) under the
 * room-read load at full speed, or the message-post load with `post`; with a rate after `post`, the
 * posts are evenly paced at that many a second instead (the bench's tail scenario):
 * `node --import tsx bench/profile-room-read.ts [post [rate]]`. The profile covers the process from
 * its start (module loading, sign-up, a cold JIT): read the load's 5 s, the last of it, for what a
 * request costs.
 */
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { client, signUp } from '../src/test-support/cluster.js';
import { startTestStack } from '../src/test-support/stack.js';
import type { Options } from 'autocannon';
import { onImageRuntime } from './image-runtime.js';
import { buildService, load, paced, startApi, withFreshIdempotencyKey } from './load.js';

const rate = process.argv[3] === undefined ? 0 : Number(process.argv[3]);
if (!(rate >= 0)) throw new Error(`the rate must be a number of posts a second, not ${process.argv[3]}`);
await onImageRuntime();
buildService();
const stack = await startTestStack(
  { mysqlReplica: false, redisTopology: 'single' },
  { RATE_LIMIT_API: '1000000000/60' },
);
const dir = mkdtempSync(join(tmpdir(), 'parley-prof-'));
const { url: base, child } = await startApi(stack.env, 'warn', ['--cpu-prof', `--cpu-prof-dir=${dir}`]);
const user = await signUp(client(base));
const room = await client(base)('POST', '/v1/rooms', {
  token: user.accessToken,
  body: { name: 'p', visibility: 'public' },
});
const path = process.argv[2] === 'post' ? `/v1/rooms/${room.body.id}/messages` : `/v1/rooms/${room.body.id}`;
const headers = { authorization: `Bearer ${user.accessToken}`, 'content-type': 'application/json' };
const body = JSON.stringify({ body: 'x' });
const result =
  process.argv[2] === 'post' && rate > 0
    ? await paced({
        url: `${base}${path}`,
        method: 'POST',
        headers: () => withFreshIdempotencyKey(headers),
        body,
        rate,
        seconds: 5,
        pid: child.pid,
      })
    : await load(
        {
          url: `${base}${path}`,
          duration: 5,
          headers,
          ...(process.argv[2] === 'post'
            ? {
                method: 'POST',
                body,
                requests: [
                  {
                    setupRequest: (r: { headers?: Record<string, string> }) => ({
                      ...r,
                      headers: withFreshIdempotencyKey(r.headers),
                    }),
                  },
                ],
              }
            : {}),
        } as Options,
        child.pid,
      );
console.log(result);
child.kill('SIGTERM');
await new Promise((resolve) => child.once('exit', resolve));
await stack.stack.stop();
const profile = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'))!;
console.log(join(dir, profile));
