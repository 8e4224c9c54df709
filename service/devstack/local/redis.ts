import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  assembleRedisStack,
  pingRedis,
  REDIS_PASSWORD,
  redisNodeConfig,
  sentinelConfig,
} from '../redis-topology.js';
import type { RedisStack, ServerControl } from '../types.js';
import { LocalServer } from './local-server.js';

// Config files rather than flags: Sentinel rewrites them on failover, so a restarted old master
// comes back as a replica of the new one.
function redisServer(
  dir: string,
  name: string,
  port: number,
  config: string,
  sentinel: boolean,
): LocalServer {
  const serverDir = join(dir, name);
  mkdirSync(serverDir, { recursive: true });
  const configFile = join(serverDir, 'redis.conf');
  writeFileSync(configFile, config.replace(`dir ${dir}`, `dir ${serverDir}`));
  return new LocalServer({
    name,
    host: '127.0.0.1',
    port,
    command: 'redis-server',
    args: sentinel ? [configFile, '--sentinel'] : [configFile],
    logFile: join(serverDir, 'server.log'),
    probe: () => pingRedis({ host: '127.0.0.1', port }, sentinel ? undefined : REDIS_PASSWORD),
  });
}

export async function startLocalRedis(
  dir: string,
  topology: 'sentinel' | 'single',
  ports: number[],
  track: (server: ServerControl) => void,
): Promise<RedisStack> {
  const [masterPort, replicaPort, ...sentinelPorts] = ports as [number, number, ...number[]];
  const master = { host: '127.0.0.1', port: masterPort };
  const nodes = [redisServer(dir, 'redis-0', masterPort, redisNodeConfig(masterPort, dir, undefined), false)];
  if (topology === 'sentinel') {
    nodes.push(redisServer(dir, 'redis-1', replicaPort, redisNodeConfig(replicaPort, dir, master), false));
  }
  nodes.forEach(track);
  await Promise.all(nodes.map((node) => node.start()));

  const sentinels =
    topology === 'sentinel'
      ? sentinelPorts
          .slice(0, 3)
          .map((port, i) => redisServer(dir, `sentinel-${i}`, port, sentinelConfig(port, dir, master), true))
      : [];
  sentinels.forEach(track);
  await Promise.all(sentinels.map((sentinel) => sentinel.start()));
  return assembleRedisStack(nodes, sentinels);
}
