import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { ParleyClient } from '../../client/index.js';
import { signUp, type User } from '../../test-support/cluster.js';
import { openSocket, upgradeAnswer, type LiveSocket } from '../../test-support/live.js';
import { startServiceProcess, type ServiceProcess } from '../../test-support/service-process.js';
import { startTestStack, type TestStack } from '../../test-support/stack.js';
import { client } from '../../test-support/cluster.js';
import { startProxy, type Proxy } from '../../test-support/proxy.js';
import { until } from '../../test-support/until.js';
import { CloseCode } from './protocol.js';

/*
 * A pod that gets SIGTERM lets its sockets go gradually, each told to reconnect, so that they do not
 * all land on the other pods at once, and finishes within its grace period.
 */
let testStack: TestStack;
beforeAll(async () => {
  testStack = await startTestStack({ mysqlReplica: false, redisTopology: 'single' });
});
afterAll(() => testStack?.stack.stop());

describe('an API process that gets SIGTERM', () => {
  let api: ServiceProcess;
  let user: User;

  beforeAll(async () => {
    api = await startServiceProcess('main-api', {
      ...testStack.env,
      REALTIME_DRAIN_WINDOW_MS: '2000',
      REALTIME_MAX_SOCKETS_PER_USER: '100',
    });
    user = await signUp(client(`http://127.0.0.1:${api.ports.port}`), 'drained');
  });
  afterAll(() => api?.stop('SIGKILL'));

  it('closes its sockets with 1001 spread over the drain window, refuses new upgrades, and exits 0', async () => {
    const sockets: LiveSocket[] = await Promise.all(
      Array.from({ length: 20 }, () => openSocket(api.ports.port!, { token: user.accessToken })),
    );
    const closedAt: number[] = [];
    const codes = sockets.map((live) =>
      live.closed.then(({ code, reason }) => {
        closedAt.push(performance.now());
        return { code, reason };
      }),
    );
    const signalledAt = performance.now();
    api.child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 200));
    const refused = await upgradeAnswer(api.ports.port!, {
      authorization: `Bearer ${user.accessToken}`,
    }).catch(
      () => ({ status: 0 }) as const, // or the listener is closed already: refused either way
    );
    expect([0, 503]).toContain(refused.status);

    for (const { code, reason } of await Promise.all(codes)) {
      expect(code).toBe(CloseCode.GOING_AWAY);
      expect(reason).toMatch(/reconnect/);
    }
    const spread = Math.max(...closedAt) - Math.min(...closedAt);
    console.info(`20 sockets closed over ${spread.toFixed(0)} ms of a 2,000 ms window`);
    expect(spread).toBeGreaterThan(1_000); // not all at once
    expect(Math.max(...closedAt) - signalledAt).toBeLessThan(8_000); // the window, generously
    expect(await api.exited).toBe(0);
  });
});

describe('SIGTERM to one of two API processes behind a least-connections proxy, under live traffic', () => {
  let apis: ServiceProcess[] = [];
  let proxy: Proxy;

  beforeAll(async () => {
    const env = {
      ...testStack.env,
      REALTIME_DRAIN_WINDOW_MS: '3000',
      REALTIME_MAX_SOCKETS_PER_USER: '100',
      RATE_LIMIT_API: '100000/60', // a post every 10 ms is past the default per-user limit
    };
    apis = [
      await startServiceProcess('main-api', { ...env, INSTANCE_ID: 'api-a' }),
      await startServiceProcess('main-api', { ...env, INSTANCE_ID: 'api-b' }),
    ];
    proxy = await startProxy(
      apis.map((api) => ({ port: api.ports.port!, managementPort: api.ports.managementPort! })),
    );
  });
  afterAll(async () => {
    await proxy?.stop();
    await Promise.all(apis.map((api) => api.stop('SIGKILL')));
  });

  it(
    'loses no message and delivers none twice: the typed clients on the drained process resume on the other',
    { timeout: 120_000 },
    async () => {
      const signIn = async (prefix: string) => {
        const parley = new ParleyClient({ baseUrl: proxy.url, WebSocket });
        const username = `${prefix}-${randomUUID().slice(0, 8)}`;
        await parley.register(username, 'correct horse battery');
        await parley.login(username, 'correct horse battery');
        return parley;
      };
      const poster = await signIn('poster');
      const roomId = (await poster.createRoom({ name: 'rolling', visibility: 'public' })).id;
      const readers = await Promise.all(Array.from({ length: 20 }, (_, i) => signIn(`reader-${i}`)));
      const received = readers.map(() => [] as string[]);
      const lives = readers.map((reader, i) => {
        const live = reader.live();
        live.subscribe(roomId).on('message', (message) => received[i]!.push(message.id));
        return live;
      });
      try {
        expect(await until(() => lives.every((live) => live.state === 'live'), 10_000)).toBe(true);
        const sockets = async (api: ServiceProcess) =>
          Number(
            /parley_ws_sockets (\d+)/.exec(
              await (await fetch(`http://127.0.0.1:${api.ports.managementPort}/metrics`)).text(),
            )?.[1],
          );
        const onA = await sockets(apis[0]!);
        expect(onA).toBeGreaterThan(0); // least connections spread them over both
        expect(await sockets(apis[1]!)).toBeGreaterThan(0);

        // A post every 10 ms for 10 s; SIGTERM to process A after 3 s.
        const posts: Promise<unknown>[] = [];
        const startedAt = Date.now();
        let signalled = false;
        while (Date.now() - startedAt < 10_000) {
          if (!signalled && Date.now() - startedAt > 3_000) {
            apis[0]!.child.kill('SIGTERM');
            signalled = true;
          }
          posts.push(poster.postMessage(roomId, `rolling ${posts.length}`));
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        const outcomes = await Promise.allSettled(posts);
        expect(outcomes.filter((outcome) => outcome.status === 'rejected')).toEqual([]);
        expect(await apis[0]!.exited).toBe(0);

        // Every reader has exactly the room's messages, in the room's order.
        const stored: string[] = [];
        for (let before: string | undefined; ;) {
          const page = await poster.listMessages(roomId, { limit: 100, ...(before ? { before } : {}) });
          stored.push(...page.items.map((message) => message.id));
          if (!page.nextBefore) break;
          before = page.nextBefore;
        }
        stored.reverse();
        expect(posts.length).toBeGreaterThan(500);
        expect(stored).toHaveLength(posts.length);
        expect(await until(() => received.every((ids) => ids.length >= stored.length), 20_000)).toBe(true);
        for (const ids of received) expect(ids).toEqual(stored);
        console.info(
          `${posts.length} posts; ${onA} of 20 readers were on the drained process; every reader got every message once`,
        );
      } finally {
        for (const live of lives) live.close();
      }
    },
  );
});
