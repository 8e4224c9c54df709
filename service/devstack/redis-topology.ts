import { Redis } from 'ioredis';
import { retryUntil } from './retry.js';
import type { RedisStack, ServerControl } from './types.js';

/** Provider-neutral Redis + Sentinel topology: the config both providers run, and the stack's controls. */
export const MASTER_NAME = 'mymaster';
export const REDIS_PASSWORD = 'parley-redis-dev';

export function redisNodeConfig(
  port: number,
  dir: string,
  master: { host: string; port: number } | undefined,
) {
  return [
    `port ${port}`,
    'bind 127.0.0.1',
    `dir ${dir}`,
    'save ""',
    'appendonly no',
    `requirepass ${REDIS_PASSWORD}`,
    `masterauth ${REDIS_PASSWORD}`,
    // BullMQ loses jobs silently under any eviction policy.
    'maxmemory-policy noeviction',
    ...(master ? [`replicaof ${master.host} ${master.port}`] : []),
    '',
  ].join('\n');
}

export function sentinelConfig(port: number, dir: string, master: { host: string; port: number }) {
  return [
    `port ${port}`,
    'bind 127.0.0.1',
    `dir ${dir}`,
    `sentinel monitor ${MASTER_NAME} ${master.host} ${master.port} 2`,
    `sentinel auth-pass ${MASTER_NAME} ${REDIS_PASSWORD}`,
    // Fast detection for tests and local failover drills; production values live in the chart.
    `sentinel down-after-milliseconds ${MASTER_NAME} 1000`,
    `sentinel failover-timeout ${MASTER_NAME} 5000`,
    `sentinel parallel-syncs ${MASTER_NAME} 1`,
    '',
  ].join('\n');
}

export async function withRedisClient<T>(
  endpoint: { host: string; port: number },
  password: string | undefined,
  use: (client: Redis) => Promise<T>,
): Promise<T> {
  const client = new Redis({
    host: endpoint.host,
    port: endpoint.port,
    password,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
    connectTimeout: 1_000,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await use(client);
  } finally {
    client.disconnect();
  }
}

export const pingRedis = (endpoint: { host: string; port: number }, password?: string) =>
  withRedisClient(endpoint, password, (client) => client.ping()).then(() => undefined);

async function askSentinelForMaster(sentinels: ServerControl[]): Promise<number> {
  for (const sentinel of sentinels.filter((candidate) => candidate.isRunning())) {
    try {
      const answer = (await withRedisClient(sentinel, undefined, (client) =>
        client.call('SENTINEL', 'get-master-addr-by-name', MASTER_NAME),
      )) as [string, string] | null;
      if (answer) return Number(answer[1]);
    } catch {
      // Try the next Sentinel: any one of them may be the one that is down.
    }
  }
  throw new Error('no Sentinel answered get-master-addr-by-name');
}

async function waitForSentinelDiscovery(nodes: ServerControl[], sentinels: ServerControl[]): Promise<void> {
  // A failover needs a quorum that knows the replica and each other: wait until discovery is done.
  await retryUntil('sentinel discovery', 30_000, async () => {
    for (const sentinel of sentinels) {
      const fields = (await withRedisClient(sentinel, undefined, (client) =>
        client.call('SENTINEL', 'master', MASTER_NAME),
      )) as string[];
      const info = new Map<string, string>();
      for (let i = 0; i + 1 < fields.length; i += 2) info.set(fields[i]!, fields[i + 1]!);
      if (Number(info.get('num-slaves')) < nodes.length - 1 || Number(info.get('num-other-sentinels')) < 2) {
        throw new Error(`sentinel ${sentinel.port} has not discovered the replica and its peers yet`);
      }
    }
    for (const replica of nodes.slice(1)) {
      await withRedisClient(replica, REDIS_PASSWORD, async (client) => {
        if (!(await client.info('replication')).includes('master_link_status:up'))
          throw new Error('replica not synced');
      });
    }
  });
}

/** Builds the stack's controls over servers that a provider has started. */
export async function assembleRedisStack(
  nodes: ServerControl[],
  sentinels: ServerControl[],
): Promise<RedisStack> {
  if (sentinels.length > 0) await waitForSentinelDiscovery(nodes, sentinels);

  const nodeOnPort = (port: number): ServerControl => {
    const node = nodes.find((candidate) => candidate.port === port);
    if (!node) throw new Error(`Sentinel names an unknown master on port ${port}`);
    return node;
  };
  const currentMaster = async (): Promise<ServerControl> =>
    sentinels.length === 0 ? nodes[0]! : nodeOnPort(await askSentinelForMaster(sentinels));

  return {
    nodes,
    sentinels,
    masterName: MASTER_NAME,
    password: REDIS_PASSWORD,
    currentMaster,
    failover: async (timeoutMs = 15_000) => {
      if (sentinels.length === 0) throw new Error('failover needs the sentinel topology');
      const before = (await currentMaster()).port;
      await withRedisClient(sentinels[0]!, undefined, (client) =>
        client.call('SENTINEL', 'failover', MASTER_NAME),
      );
      return retryUntil('sentinel failover', timeoutMs, async () => {
        const now = await askSentinelForMaster(sentinels);
        if (now === before) throw new Error('master unchanged');
        return nodeOnPort(now);
      });
    },
  };
}
