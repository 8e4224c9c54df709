import { GenericContainer, getContainerRuntimeClient, Wait, type StartedTestContainer } from 'testcontainers';
import { generateStackSecrets, serviceEnv } from '../env.js';
import { ADMIN, adminQuery, assembleMysqlStack } from '../mysql-topology.js';
import { freePorts } from '../ports.js';
import {
  assembleRedisStack,
  pingRedis,
  REDIS_PASSWORD,
  redisNodeConfig,
  sentinelConfig,
} from '../redis-topology.js';
import { retryUntil } from '../retry.js';
import { assembleS3Stack, minioArgs, minioEnv, minioReady } from '../s3-topology.js';
import type { Devstack, DevstackOptions, S3Stack, ServerControl } from '../types.js';

// Pinned images; MySQL 8.4 is what the chart runs in-cluster. MinIO's last community image.
const IMAGES = {
  mysql: 'mysql:8.4.6',
  redis: 'redis:7.4.5',
  minio: 'minio/minio:RELEASE.2025-04-22T22-12-26Z',
};

/**
 * Every container runs in the host network namespace, bound to 127.0.0.1 on a free port: the
 * topology (and the addresses Sentinel announces) is then identical to the local provider's, and a
 * stopped container comes back on the same port. Needs a Linux Docker/Podman host.
 */
class ContainerServer implements ServerControl {
  private started: StartedTestContainer | undefined;
  private running = false;
  private paused = false;

  constructor(
    readonly name: string,
    readonly port: number,
    private readonly definition: GenericContainer,
    private readonly probe: () => Promise<void>,
  ) {}

  readonly host = '127.0.0.1';

  pid(): number | undefined {
    return undefined;
  }

  isRunning(): boolean {
    return this.running;
  }

  async start(): Promise<void> {
    if (this.running) return;
    if (this.started) {
      const client = await getContainerRuntimeClient();
      await client.container.start(client.container.getById(this.started.getId()));
    } else {
      this.started = await this.definition.withNetworkMode('host').start();
    }
    this.running = true;
    await retryUntil(this.name, 60_000, this.probe);
  }

  async stop(): Promise<void> {
    await this.halt(10);
  }

  async kill(): Promise<void> {
    await this.halt(0);
  }

  // testcontainers' container client has no pause; the dockerode Container it hands out does
  // (POST /containers/{id}/pause: it returns once the cgroup freezer has frozen every process).
  async pause(): Promise<void> {
    if (!this.running) throw new Error(`${this.name} is not running`);
    await (await this.runtimeContainer()).pause();
    this.paused = true;
  }

  async resume(): Promise<void> {
    if (!this.paused) return;
    await (await this.runtimeContainer()).unpause();
    this.paused = false;
  }

  async remove(): Promise<void> {
    await this.started?.stop({ remove: true, removeVolumes: true, timeout: 0 });
    this.started = undefined;
    this.running = false;
  }

  private async runtimeContainer() {
    if (!this.started) throw new Error(`${this.name} was never started`);
    const client = await getContainerRuntimeClient();
    return client.container.getById(this.started.getId());
  }

  private async halt(timeoutSeconds: number): Promise<void> {
    if (!this.started || !this.running) return;
    const client = await getContainerRuntimeClient();
    const container = client.container.getById(this.started.getId());
    // A paused container ignores SIGTERM until thawed; SIGKILL ends it either way.
    if (this.paused && timeoutSeconds > 0) await container.unpause();
    this.paused = false;
    if (timeoutSeconds === 0) await container.kill({ signal: 'SIGKILL' });
    else await client.container.stop(container, { timeout: timeoutSeconds });
    this.running = false;
  }
}

function mysqlContainer(role: 'primary' | 'replica', port: number): ContainerServer {
  // Not --super-read-only: the image's entrypoint passes these to the server it initialises the
  // data dir with (root user, time zones), which it would block; it is set once replication runs.
  const roleArgs =
    role === 'primary' ? ['--server-id=1', '--log-bin=mysql-bin'] : ['--server-id=2', '--read-only=ON'];
  const definition = new GenericContainer(IMAGES.mysql)
    .withEnvironment({ MYSQL_ROOT_PASSWORD: ADMIN.password, MYSQL_ROOT_HOST: '%' })
    .withCommand([
      `--port=${port}`,
      '--bind-address=127.0.0.1',
      '--mysqlx=OFF',
      '--gtid-mode=ON',
      '--enforce-gtid-consistency=ON',
      '--skip-name-resolve',
      ...roleArgs,
    ])
    .withWaitStrategy(Wait.forLogMessage(/ready for connections.*port: \d+/, 2))
    .withStartupTimeout(120_000);
  return new ContainerServer(`mysql-${role}`, port, definition, () =>
    adminQuery({ host: '127.0.0.1', port, user: ADMIN.user, password: ADMIN.password }, 'SELECT 1').then(
      () => undefined,
    ),
  );
}

function redisContainer(name: string, port: number, config: string, sentinel: boolean): ContainerServer {
  const configFile = '/data/redis.conf';
  const definition = new GenericContainer(IMAGES.redis)
    .withCopyContentToContainer([
      { content: config.replace(/^dir .*$/m, 'dir /data'), target: configFile, mode: 0o666 },
    ])
    .withCommand(sentinel ? ['redis-server', configFile, '--sentinel'] : ['redis-server', configFile]);
  return new ContainerServer(name, port, definition, () =>
    pingRedis({ host: '127.0.0.1', port }, sentinel ? undefined : REDIS_PASSWORD),
  );
}

async function startMinio(
  port: number,
  consolePort: number,
  track: (server: ServerControl) => void,
): Promise<S3Stack> {
  const definition = new GenericContainer(IMAGES.minio)
    .withEnvironment(minioEnv())
    .withCommand(minioArgs({ dataDir: '/data', port, consolePort }));
  const server = new ContainerServer('minio', port, definition, () => minioReady(`http://127.0.0.1:${port}`));
  track(server);
  await server.start();
  return assembleS3Stack(server);
}

export async function startContainerDevstack(options: DevstackOptions = {}): Promise<Devstack> {
  const servers: ContainerServer[] = [];
  const track = (server: ServerControl) => servers.push(server as ContainerServer);
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    // Ryuk (testcontainers' reaper) also removes them if this process dies first.
    await Promise.allSettled(servers.map((server) => server.remove()));
  };

  const [primaryPort, replicaPort, s3Port, consolePort, ...redisPorts] = (await freePorts(9)) as [
    number,
    number,
    number,
    number,
    ...number[],
  ];
  try {
    const primary = mysqlContainer('primary', primaryPort);
    const replica = options.mysqlReplica === false ? undefined : mysqlContainer('replica', replicaPort);
    [primary, replica].forEach((server) => server && track(server));

    const master = { host: '127.0.0.1', port: redisPorts[0]! };
    const topology = options.redisTopology ?? 'sentinel';
    const nodes = [
      redisContainer('redis-0', master.port, redisNodeConfig(master.port, '/data', undefined), false),
    ];
    if (topology === 'sentinel') {
      nodes.push(
        redisContainer('redis-1', redisPorts[1]!, redisNodeConfig(redisPorts[1]!, '/data', master), false),
      );
    }
    const sentinels =
      topology === 'sentinel'
        ? redisPorts
            .slice(2, 5)
            .map((port, i) =>
              redisContainer(`sentinel-${i}`, port, sentinelConfig(port, '/data', master), true),
            )
        : [];
    [...nodes, ...sentinels].forEach(track);

    const [mysql, redis, s3] = await Promise.all([
      Promise.all([primary.start(), replica?.start()]).then(() =>
        assembleMysqlStack({
          flavor: 'mysql',
          primary,
          replica,
          adminConnection: (role) => ({
            host: '127.0.0.1',
            port: role === 'primary' ? primaryPort : replicaPort,
            user: ADMIN.user,
            password: ADMIN.password,
          }),
        }),
      ),
      Promise.all(nodes.map((node) => node.start()))
        .then(() => Promise.all(sentinels.map((sentinel) => sentinel.start())))
        .then(() => assembleRedisStack(nodes, sentinels)),
      startMinio(s3Port, consolePort, track),
    ]);
    const secrets = generateStackSecrets();
    return {
      provider: 'containers',
      mysql,
      redis,
      s3,
      env: () => serviceEnv(mysql, redis, s3, secrets),
      pids: () => [],
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
