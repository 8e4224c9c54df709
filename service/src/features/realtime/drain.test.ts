import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signUp, type User } from '../../test-support/cluster.js';
import { openSocket, upgradeAnswer, type LiveSocket } from '../../test-support/live.js';
import { startServiceProcess, type ServiceProcess } from '../../test-support/service-process.js';
import { startTestStack, type TestStack } from '../../test-support/stack.js';
import { client } from '../../test-support/cluster.js';
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
