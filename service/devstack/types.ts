/** What a started devstack hands to tests, `npm run dev` and the benchmarks. Both providers return it. */

export interface Endpoint {
  host: string;
  port: number;
}

/** Fault controls for one server. `start()` brings a stopped or killed server back on the same port and data. */
export interface ServerControl extends Endpoint {
  readonly name: string;
  /** The OS pid for a local process; undefined for a container or a stopped server. */
  pid(): number | undefined;
  isRunning(): boolean;
  /** Graceful stop (SIGTERM, then SIGKILL after a bound). */
  stop(): Promise<void>;
  /** Abrupt stop: SIGKILL, as when a node dies. */
  kill(): Promise<void>;
  start(): Promise<void>;
  /**
   * Freezes the server as a hung node is: its connections stay open and nothing is answered until
   * `resume()`. Local: SIGSTOP, resolved once the kernel reports the process stopped; containers:
   * `docker pause` (the cgroup freezer).
   */
  pause(): Promise<void>;
  resume(): Promise<void>;
}

export interface Credentials {
  user: string;
  password: string;
}

export interface MysqlStack {
  primary: ServerControl;
  replica: ServerControl | undefined;
  database: string;
  /** SELECT/INSERT/UPDATE/DELETE on the database only; cannot write on the read-only replica. */
  app: Credentials;
  /** DDL on the database only; what the migrate entry point uses. */
  migration: Credentials;
  /** Root access, for tests that inspect or provoke the servers. */
  admin: Credentials;
  /** Resolves once the replica has applied everything the primary has written so far. */
  waitForReplication(timeoutMs?: number): Promise<void>;
}

export interface RedisStack {
  /** Every redis-server; node 0 starts as master, node 1 as its replica. */
  nodes: ServerControl[];
  /** Empty in the `single` topology. */
  sentinels: ServerControl[];
  masterName: string;
  password: string;
  /** The node Sentinel currently names as master (node 0 in the single topology). */
  currentMaster(): Promise<ServerControl>;
  /** Asks Sentinel to fail over and resolves when a new master is announced. */
  failover(timeoutMs?: number): Promise<ServerControl>;
}

export interface S3Stack {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  buckets: { attachments: string; backups: string };
  server: ServerControl;
}

export interface Devstack {
  provider: 'local' | 'containers';
  mysql: MysqlStack;
  redis: RedisStack;
  s3: S3Stack;
  /** The service's environment (see service/src/config.ts) pointing at this stack. */
  env(): Record<string, string>;
  /** Every local pid the stack started (for leak checks). */
  pids(): number[];
  /** Stops every server and removes every file the stack created. Safe to call twice. */
  stop(): Promise<void>;
}

export interface DevstackOptions {
  /** Start a GTID read replica beside the primary (default true). */
  mysqlReplica?: boolean;
  /** `sentinel`: master + replica + 3 Sentinels (default); `single`: one redis-server. */
  redisTopology?: 'sentinel' | 'single';
  /** Remove the stack's servers and files when this process exits or is signalled (default true). */
  cleanupOnExit?: boolean;
  /** Where server logs go besides the stack's temp dir: nothing by default. */
  log?: (line: string) => void;
}
