import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { z } from 'zod';

/**
 * The one typed configuration of both processes, parsed from the environment once at start-up.
 * Nothing else in the service reads `process.env`.
 *
 * Secrets may be given as `NAME_FILE=/path` instead of `NAME=value`, which is how Kubernetes
 * mounts a Secret as files: the file's content (trailing newline removed) becomes the value.
 */
type Environment = Record<string, string | undefined>;

const SECRET_VARIABLES = [
  'MYSQL_PASSWORD',
  'MYSQL_MIGRATION_PASSWORD',
  'REDIS_PASSWORD',
  'REDIS_SENTINEL_PASSWORD',
  'S3_SECRET_ACCESS_KEY',
  'JWT_PRIVATE_KEY',
  'BACKUP_ENCRYPTION_KEY',
  'BACKUP_PREVIOUS_KEYS',
] as const;

const port = z.coerce.number().int().min(1).max(65_535);
// 0 asks the OS for a free port: what tests and a second local instance use.
const listenPort = z.coerce.number().int().min(0).max(65_535);
const milliseconds = z.coerce.number().int().min(1).max(3_600_000);
const optionalText = z
  .string()
  .optional()
  .transform((value) => (value === '' ? undefined : value));
const rateLimit = z
  .string()
  .regex(/^\d+\/\d+$/, 'must be "points/seconds", e.g. 600/60')
  .transform((value) => {
    const [points, seconds] = value.split('/').map(Number) as [number, number];
    return { points, seconds };
  })
  .refine((limit) => limit.points > 0 && limit.seconds > 0, 'points and seconds must be positive');
const hostPortList = z
  .string()
  .min(1)
  .transform((value, ctx) =>
    value.split(',').map((entry) => {
      const match = /^\s*([^\s:]+):(\d{1,5})\s*$/.exec(entry);
      if (!match || Number(match[2]) > 65_535) {
        ctx.addIssue({ code: 'custom', message: `"${entry}" is not host:port` });
        return { host: '', port: 0 };
      }
      return { host: match[1]!, port: Number(match[2]) };
    }),
  );

// The configuration is built from sections. Each declares its variables once and shapes them into
// its part of Config, whose type is what the sections produce: a new variable is written in one
// place, and an entry point takes only the sections it needs.

const ProcessSettings = z
  .object({
    NODE_ENV: z.enum(['development', 'test', 'production']).default('production'),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    INSTANCE_ID: z.string().min(1).default(hostname()),
  })
  .transform((env) => ({ env: env.NODE_ENV, logLevel: env.LOG_LEVEL, instanceId: env.INSTANCE_ID }));

const ServingSettings = z
  .object({
    HOST: z.string().min(1).default('0.0.0.0'),
    PORT: listenPort.default(3000),
    // The API's probes and metrics listener: it stays open while the main port drains on SIGTERM.
    MANAGEMENT_PORT: listenPort.default(9464),
    WORKER_HEALTH_PORT: listenPort.default(3001),
    // How long the worker waits for its running jobs on SIGTERM: the longest job, and less than the
    // pod's terminationGracePeriodSeconds (the chart's worker.longestJobSeconds, 300 s by default).
    WORKER_SHUTDOWN_GRACE_MS: milliseconds.default(300_000),
    BODY_LIMIT_BYTES: z.coerce.number().int().min(1_024).max(104_857_600).default(1_048_576),
    SHUTDOWN_GRACE_MS: milliseconds.default(25_000),
    READINESS_TIMEOUT_MS: milliseconds.default(1_000),
  })
  .transform((env) => ({
    http: {
      host: env.HOST,
      port: env.PORT,
      managementPort: env.MANAGEMENT_PORT,
      bodyLimitBytes: env.BODY_LIMIT_BYTES,
    },
    worker: { healthPort: env.WORKER_HEALTH_PORT, shutdownGraceMs: env.WORKER_SHUTDOWN_GRACE_MS },
    shutdownGraceMs: env.SHUTDOWN_GRACE_MS,
    readinessTimeoutMs: env.READINESS_TIMEOUT_MS,
  }));

const MysqlSettings = z
  .object({
    MYSQL_HOST: z.string().min(1),
    MYSQL_PORT: port.default(3306),
    MYSQL_REPLICA_HOST: optionalText,
    MYSQL_REPLICA_PORT: port.default(3306),
    MYSQL_DATABASE: z
      .string()
      .regex(/^[A-Za-z0-9_]{1,64}$/, 'letters, digits and _ only')
      .default('parley'),
    MYSQL_USER: z.string().min(1),
    MYSQL_PASSWORD: z.string().default(''),
    MYSQL_POOL_SIZE: z.coerce.number().int().min(1).max(500).default(20),
    // TLS to MySQL (RDS can require it): MYSQL_TLS=true verifies the server against MYSQL_TLS_CA
    // (a PEM bundle, e.g. the RDS CA bundle mounted from a ConfigMap) or the system CAs.
    MYSQL_TLS: z.stringbool().default(false),
    MYSQL_TLS_CA_FILE: optionalText,
    MYSQL_MIGRATION_USER: optionalText,
    MYSQL_MIGRATION_PASSWORD: optionalText,
  })
  .transform((env) => ({
    mysql: {
      primary: { host: env.MYSQL_HOST, port: env.MYSQL_PORT },
      replica: env.MYSQL_REPLICA_HOST
        ? { host: env.MYSQL_REPLICA_HOST, port: env.MYSQL_REPLICA_PORT }
        : undefined,
      database: env.MYSQL_DATABASE,
      user: env.MYSQL_USER,
      password: env.MYSQL_PASSWORD,
      poolSize: env.MYSQL_POOL_SIZE,
      tls: env.MYSQL_TLS ? { caFile: env.MYSQL_TLS_CA_FILE } : undefined,
      migration: {
        user: env.MYSQL_MIGRATION_USER ?? env.MYSQL_USER,
        password: env.MYSQL_MIGRATION_PASSWORD ?? (env.MYSQL_MIGRATION_USER ? '' : env.MYSQL_PASSWORD),
      },
    },
  }));

const RedisSettings = z
  .object({
    REDIS_URL: z.url({ protocol: /^rediss?$/ }).optional(),
    REDIS_SENTINELS: hostPortList.optional(),
    REDIS_SENTINEL_MASTER: z.string().min(1).default('mymaster'),
    REDIS_PASSWORD: optionalText,
    REDIS_SENTINEL_PASSWORD: optionalText,
  })
  .transform((env) => ({
    redis: env.REDIS_URL
      ? { kind: 'url' as const, url: env.REDIS_URL, password: env.REDIS_PASSWORD }
      : {
          kind: 'sentinel' as const,
          sentinels: env.REDIS_SENTINELS ?? [],
          masterName: env.REDIS_SENTINEL_MASTER,
          password: env.REDIS_PASSWORD,
          sentinelPassword: env.REDIS_SENTINEL_PASSWORD,
        },
  }));

const ApiSettings = z
  .object({
    JWT_PRIVATE_KEY: optionalText,
    JWT_ISSUER: z.string().min(1).default('parley'),
    ACCESS_TOKEN_TTL_SECONDS: z.coerce.number().int().min(30).max(86_400).default(900),
    REFRESH_TOKEN_TTL_SECONDS: z.coerce.number().int().min(300).max(31_536_000).default(2_592_000),
    // "points/seconds" per tier; the limits are shared by every API process through Redis.
    RATE_LIMIT_AUTH: rateLimit.prefault('5/900'),
    RATE_LIMIT_API: rateLimit.prefault('600/60'),
    RATE_LIMIT_UPLOAD: rateLimit.prefault('60/60'),
    // Proxies in front of the API that append to X-Forwarded-For (the ingress controller: 1).
    TRUSTED_PROXY_HOPS: z.coerce.number().int().min(0).max(5).default(0),
  })
  .transform((env) => ({
    auth: {
      /** PKCS8 PEM of the Ed25519 signing key; required by the API (see loadConfig's role). */
      privateKeyPem: env.JWT_PRIVATE_KEY,
      issuer: env.JWT_ISSUER,
      accessTokenTtlSeconds: env.ACCESS_TOKEN_TTL_SECONDS,
      refreshTokenTtlSeconds: env.REFRESH_TOKEN_TTL_SECONDS,
    },
    rateLimits: { auth: env.RATE_LIMIT_AUTH, api: env.RATE_LIMIT_API, upload: env.RATE_LIMIT_UPLOAD },
    trustedProxyHops: env.TRUSTED_PROXY_HOPS,
  }));

const originList = z.string().transform((value, ctx) =>
  value
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '')
    .map((entry) => {
      let origin: string | undefined;
      try {
        origin = new URL(entry).origin;
      } catch {
        origin = undefined;
      }
      // What a browser sends as Origin: scheme, host and port, nothing else (no path, no slash).
      if (origin === undefined || origin === 'null' || origin !== entry) {
        ctx.addIssue({
          code: 'custom',
          message: `"${entry}" is not an origin like https://chat.example.com`,
        });
      }
      return entry;
    }),
);
const count = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const RealtimeSettings = z
  .object({
    // Browser origins that may open the live connection (against cross-site WebSocket hijacking),
    // comma-separated. A client that sends no Origin is not a browser, and is not refused for it.
    REALTIME_ALLOWED_ORIGINS: originList.default([]),
    // Ping interval: a peer that has not answered the last ping by the next one is terminated.
    REALTIME_HEARTBEAT_MS: milliseconds.default(30_000),
    // Client frames are small (subscribe, unsubscribe, ping); a larger one is closed with 1009.
    REALTIME_MAX_FRAME_BYTES: count(256, 1_048_576).default(4_096),
    REALTIME_MAX_FRAMES_PER_SECOND: count(1, 1_000).default(20),
    REALTIME_MAX_SUBSCRIPTIONS: count(1, 10_000).default(100),
    // Across every API process (kept in Redis); one more upgrade is refused with 429.
    REALTIME_MAX_SOCKETS_PER_USER: count(1, 100_000).default(10),
    // What may wait unsent for one socket before it is closed with 1013 as a slow consumer.
    REALTIME_MAX_BUFFERED_BYTES: count(16_384, 67_108_864).default(1_048_576),
    // A resume replays at most this many missed messages, of at most this age; beyond, `resync`.
    REALTIME_RESUME_MAX_MESSAGES: count(1, 100_000).default(1_000),
    REALTIME_RESUME_MAX_AGE_SECONDS: count(1, 604_800).default(3_600),
    // On SIGTERM, sockets are closed (1001) spread over this window, not all at once: their
    // reconnects then spread over the other pods too. The chart's grace period must cover it.
    REALTIME_DRAIN_WINDOW_MS: z.coerce.number().int().min(0).max(600_000).default(10_000),
    REALTIME_TICKET_TTL_SECONDS: count(5, 300).default(30),
  })
  .transform((env) => ({
    realtime: {
      allowedOrigins: env.REALTIME_ALLOWED_ORIGINS,
      heartbeatMs: env.REALTIME_HEARTBEAT_MS,
      maxFrameBytes: env.REALTIME_MAX_FRAME_BYTES,
      maxFramesPerSecond: env.REALTIME_MAX_FRAMES_PER_SECOND,
      maxSubscriptions: env.REALTIME_MAX_SUBSCRIPTIONS,
      maxSocketsPerUser: env.REALTIME_MAX_SOCKETS_PER_USER,
      maxBufferedBytes: env.REALTIME_MAX_BUFFERED_BYTES,
      resumeMaxMessages: env.REALTIME_RESUME_MAX_MESSAGES,
      resumeMaxAgeSeconds: env.REALTIME_RESUME_MAX_AGE_SECONDS,
      drainWindowMs: env.REALTIME_DRAIN_WINDOW_MS,
      ticketTtlSeconds: env.REALTIME_TICKET_TTL_SECONDS,
    },
  }));

const LeaderboardSettings = z
  .object({
    // Points per event; 0 turns an event's award off.
    LEADERBOARD_POINTS_MESSAGE: count(0, 1_000_000).default(1),
    LEADERBOARD_POINTS_ROOM_CREATED: count(0, 1_000_000).default(5),
    // A board's awards reach MySQL in one batch at most this often; its live event goes with them.
    LEADERBOARD_FLUSH_INTERVAL_MS: z.coerce.number().int().min(100).max(3_600_000).default(5_000),
    // A week's or month's board stays readable in Redis this long after the period ends.
    LEADERBOARD_PERIOD_GRACE_SECONDS: count(0, 31_536_000).default(259_200),
  })
  .transform((env) => ({
    leaderboards: {
      points: { message: env.LEADERBOARD_POINTS_MESSAGE, roomCreated: env.LEADERBOARD_POINTS_ROOM_CREATED },
      flushIntervalMs: env.LEADERBOARD_FLUSH_INTERVAL_MS,
      periodGraceSeconds: env.LEADERBOARD_PERIOD_GRACE_SECONDS,
    },
  }));

// Per-queue concurrency: jobs of one queue running at once in one worker process.
const concurrency = count(1, 256);

const JobSettings = z
  .object({
    JOBS_CONCURRENCY_MAINTENANCE: concurrency.default(2),
    JOBS_CONCURRENCY_LEADERBOARDS: concurrency.default(4),
    JOBS_CONCURRENCY_ATTACHMENTS: concurrency.default(8),
    // A backup holds a replica snapshot and a multipart upload open: one at a time is plenty.
    JOBS_CONCURRENCY_BACKUPS: concurrency.default(1),
    // Attempts before a job becomes a dead letter, and the first retry's delay (then doubling,
    // with jitter so that a burst of failures does not come back as a burst).
    JOBS_ATTEMPTS: count(1, 100).default(5),
    JOBS_BACKOFF_MS: milliseconds.default(2_000),
    // How long a job's lock lives without renewal: a worker that died mid-job (SIGKILL, node lost)
    // hands its jobs back after this, and another worker retries them.
    JOBS_LOCK_MS: z.coerce.number().int().min(1_000).max(600_000).default(30_000),
    WORKER_HEARTBEAT_MS: z.coerce.number().int().min(100).max(300_000).default(15_000),
    // Bull Board on the worker's management port: read-only unless an operator opts in.
    JOBS_BOARD: z.enum(['off', 'read-only', 'read-write']).default('read-only'),
  })
  .transform((env) => ({
    jobs: {
      concurrency: {
        maintenance: env.JOBS_CONCURRENCY_MAINTENANCE,
        leaderboards: env.JOBS_CONCURRENCY_LEADERBOARDS,
        attachments: env.JOBS_CONCURRENCY_ATTACHMENTS,
        backups: env.JOBS_CONCURRENCY_BACKUPS,
      },
      attempts: env.JOBS_ATTEMPTS,
      backoffMs: env.JOBS_BACKOFF_MS,
      lockMs: env.JOBS_LOCK_MS,
      heartbeatMs: env.WORKER_HEARTBEAT_MS,
      board: env.JOBS_BOARD,
    },
  }));

const mimeType = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^[a-z0-9][a-z0-9!#$&^_.+-]*\/[a-z0-9][a-z0-9!#$&^_.+-]*$/, 'must be a media type like image/png');
const mimeTypeList = z.string().transform((value, ctx) =>
  value
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '')
    .map((entry) => {
      const parsed = mimeType.safeParse(entry);
      if (!parsed.success)
        ctx.addIssue({ code: 'custom', message: `"${entry}" is not a media type like image/png` });
      return parsed.data ?? entry;
    }),
);

const AttachmentsSettings = z
  .object({
    // Media types an upload may declare, exactly (no parameters), comma-separated.
    ATTACHMENTS_ALLOWED_TYPES: mimeTypeList.default([
      'image/png',
      'image/jpeg',
      'image/gif',
      'image/webp',
      'application/pdf',
      'text/plain',
    ]),
    // S3 takes at most 5 GiB in one POST.
    ATTACHMENTS_MAX_BYTES: z.coerce.number().int().min(1).max(5_368_709_120).default(26_214_400),
    // How long the presigned upload may be started. Short: until it expires the uploader can
    // upload again under the same key (only the same bytes, where the store checks the signed
    // checksum, as S3 and MinIO do).
    ATTACHMENTS_UPLOAD_TTL_SECONDS: count(10, 3_600).default(300),
    ATTACHMENTS_DOWNLOAD_TTL_SECONDS: count(10, 86_400).default(300),
    // The sweep removes uploads still pending this long after they were declared (never uploaded,
    // or never completed), and rejected ones this long after they were declared.
    ATTACHMENTS_PENDING_TTL_SECONDS: count(60, 2_592_000).default(86_400),
    ATTACHMENTS_REJECTED_TTL_SECONDS: count(60, 31_536_000).default(604_800),
    ATTACHMENTS_SWEEP_EVERY_MS: z.coerce.number().int().min(1_000).max(86_400_000).default(900_000),
  })
  .refine((env) => env.ATTACHMENTS_PENDING_TTL_SECONDS > env.ATTACHMENTS_UPLOAD_TTL_SECONDS, {
    // A pending upload swept while its presigned POST is still valid could be uploaded again
    // afterwards, with no row left to verify or ever remove it.
    message: 'must be longer than ATTACHMENTS_UPLOAD_TTL_SECONDS',
    path: ['ATTACHMENTS_PENDING_TTL_SECONDS'],
  })
  .transform((env) => ({
    attachments: {
      allowedTypes: env.ATTACHMENTS_ALLOWED_TYPES,
      maxBytes: env.ATTACHMENTS_MAX_BYTES,
      uploadTtlSeconds: env.ATTACHMENTS_UPLOAD_TTL_SECONDS,
      downloadTtlSeconds: env.ATTACHMENTS_DOWNLOAD_TTL_SECONDS,
      pendingTtlSeconds: env.ATTACHMENTS_PENDING_TTL_SECONDS,
      rejectedTtlSeconds: env.ATTACHMENTS_REJECTED_TTL_SECONDS,
      sweepEveryMs: env.ATTACHMENTS_SWEEP_EVERY_MS,
    },
  }));

const bucketName = z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'not a valid S3 bucket name');

const S3Settings = z
  .object({
    S3_REGION: z.string().min(1).default('us-east-1'),
    S3_ENDPOINT: z.url().optional(),
    S3_FORCE_PATH_STYLE: z.stringbool().default(false),
    S3_ATTACHMENTS_BUCKET: bucketName,
    S3_BACKUPS_BUCKET: bucketName,
    S3_ACCESS_KEY_ID: optionalText,
    S3_SECRET_ACCESS_KEY: optionalText,
  })
  .transform((env) => ({
    s3: {
      region: env.S3_REGION,
      endpoint: env.S3_ENDPOINT,
      forcePathStyle: env.S3_FORCE_PATH_STYLE,
      attachmentsBucket: env.S3_ATTACHMENTS_BUCKET,
      backupsBucket: env.S3_BACKUPS_BUCKET,
      credentials:
        env.S3_ACCESS_KEY_ID && env.S3_SECRET_ACCESS_KEY
          ? { accessKeyId: env.S3_ACCESS_KEY_ID, secretAccessKey: env.S3_SECRET_ACCESS_KEY }
          : undefined,
    },
  }));

const BACKUP_KEY_MIN_LENGTH = 16;
const backupPassphrase = optionalText.refine(
  (value) => value === undefined || value.length >= BACKUP_KEY_MIN_LENGTH,
  `must be a passphrase of at least ${BACKUP_KEY_MIN_LENGTH} characters`,
);
// Five or six cron fields (BullMQ's job schedulers read them with cron-parser).
const cronPattern = z
  .string()
  .trim()
  .regex(/^(\S+\s+){4,5}\S+$/, 'must be a cron pattern of 5 or 6 fields, e.g. "0 3 * * *"');

const BackupSettings = z
  .object({
    // The worker schedules backups only when enabled, and then requires BACKUP_ENCRYPTION_KEY.
    BACKUP_ENABLED: z.stringbool().default(false),
    BACKUP_SCHEDULE: cronPattern.default('0 3 * * *'),
    // Backups kept under backups/ in S3_BACKUPS_BUCKET; older ones are deleted after each backup.
    BACKUP_KEEP: count(1, 10_000).default(7),
    // The passphrase new backups are encrypted with (scrypt derives the AES-256 key from it).
    BACKUP_ENCRYPTION_KEY: backupPassphrase,
    // Keys that older backups may have been written with, comma-separated: tried on restore.
    BACKUP_PREVIOUS_KEYS: optionalText
      .transform((value) =>
        (value ?? '')
          .split(',')
          .map((key) => key.trim())
          .filter((key) => key !== ''),
      )
      .refine(
        (keys) => keys.every((key) => key.length >= BACKUP_KEY_MIN_LENGTH),
        `each key must be a passphrase of at least ${BACKUP_KEY_MIN_LENGTH} characters`,
      ),
    // The multipart upload's part size: memory holds about three parts; an object has at most
    // 10,000 parts, so this also bounds a backup's size (8 MiB: about 80 GB compressed).
    BACKUP_PART_SIZE_MB: count(5, 512).default(8),
    // gzip's level: 6 is gzip's own default; a lower one trades bigger files for less CPU.
    BACKUP_COMPRESSION_LEVEL: count(1, 9).default(6),
  })
  .transform((env) => ({
    backups: {
      enabled: env.BACKUP_ENABLED,
      schedule: env.BACKUP_SCHEDULE,
      keep: env.BACKUP_KEEP,
      encryptionKey: env.BACKUP_ENCRYPTION_KEY,
      previousKeys: env.BACKUP_PREVIOUS_KEYS,
      partSizeBytes: env.BACKUP_PART_SIZE_MB * 1024 * 1024,
      compressionLevel: env.BACKUP_COMPRESSION_LEVEL,
    },
  }));

// Sections are intersected rather than merged with .extend so that each keeps its transform; zod
// parses both sides of an intersection, so the operator still sees every section's problems.
const EnvSchema = ProcessSettings.and(ServingSettings)
  .and(MysqlSettings)
  .and(RedisSettings)
  .and(ApiSettings)
  .and(RealtimeSettings)
  .and(LeaderboardSettings)
  .and(JobSettings)
  .and(S3Settings)
  .and(AttachmentsSettings)
  .and(BackupSettings);

/** The migration Job needs MySQL only: it must not fail for want of S3 or Redis settings. */
const MigrationEnvSchema = ProcessSettings.and(MysqlSettings);

export type Config = z.output<typeof EnvSchema>;
export type MigrationConfig = z.output<typeof MigrationEnvSchema>;
export type MysqlEndpoint = Config['mysql']['primary'];
export type RedisConfig = Config['redis'];
export type RateLimitTier = z.output<typeof rateLimit>;
export type RealtimeConfig = Config['realtime'];
export type JobsConfig = Config['jobs'];
export type LeaderboardsConfig = Config['leaderboards'];
export type AttachmentsConfig = Config['attachments'];
export type BackupsConfig = Config['backups'];

/** The signing key must parse now: a bad one found after start-up is a crash, not a listed problem. */
function signingKeyProblem(pem: string): string | undefined {
  try {
    const key = createPrivateKey(pem);
    if (key.asymmetricKeyType === 'ed25519') return undefined;
    return `JWT_PRIVATE_KEY: is an ${key.asymmetricKeyType ?? 'unknown'} key; the API signs with Ed25519`;
  } catch {
    // Never echo the value, nor OpenSSL's reason (it may quote the input).
    return 'JWT_PRIVATE_KEY: is not a PKCS8 PEM private key ("-----BEGIN PRIVATE KEY-----")';
  }
}

// The CA bundle is read when the pools open; an unreadable one must stop start-up with the rest.
function mysqlProblems(env: Environment): string[] {
  const caFile = env.MYSQL_TLS_CA_FILE;
  if (!caFile) return [];
  try {
    readFileSync(caFile);
    return [];
  } catch (error) {
    return [`MYSQL_TLS_CA_FILE: cannot read ${caFile} (${(error as NodeJS.ErrnoException).code ?? error})`];
  }
}

// Rules across variables. Kept outside the schema because zod skips refinements while any field is
// invalid, and the operator should see every problem in one go.
function crossVariableProblems(env: Environment, role: Role): string[] {
  const set = (name: string) => env[name] !== undefined && env[name] !== '';
  const problems: string[] = [...mysqlProblems(env)];
  if (role === 'api') {
    const keyProblem = set('JWT_PRIVATE_KEY')
      ? signingKeyProblem(env.JWT_PRIVATE_KEY!)
      : 'JWT_PRIVATE_KEY: is required by the API (a PKCS8 PEM Ed25519 key, or JWT_PRIVATE_KEY_FILE)';
    if (keyProblem) problems.push(keyProblem);
  }
  const backupsEnabled = z.stringbool().safeParse(env.BACKUP_ENABLED ?? 'false').data === true;
  if (role === 'worker' && backupsEnabled && !set('BACKUP_ENCRYPTION_KEY')) {
    problems.push(
      'BACKUP_ENCRYPTION_KEY: is required by the worker when BACKUP_ENABLED=true (a passphrase, or BACKUP_ENCRYPTION_KEY_FILE)',
    );
  }
  if (set('REDIS_URL') && set('REDIS_SENTINELS'))
    problems.push('REDIS_URL: set REDIS_URL or REDIS_SENTINELS, not both');
  if (!set('REDIS_URL') && !set('REDIS_SENTINELS'))
    problems.push('REDIS_URL: set REDIS_URL or REDIS_SENTINELS');
  if (set('S3_ACCESS_KEY_ID') !== set('S3_SECRET_ACCESS_KEY')) {
    problems.push(
      'S3_ACCESS_KEY_ID: S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY go together (or neither, for IRSA/default chain)',
    );
  }
  return problems;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

function readFileSecrets(env: Environment): { env: Environment; problems: string[] } {
  const resolved: Environment = { ...env };
  const problems: string[] = [];
  for (const name of SECRET_VARIABLES) {
    const path = env[`${name}_FILE`];
    if (!path) continue;
    if (env[name] !== undefined && env[name] !== '') {
      problems.push(`${name}: set ${name} or ${name}_FILE, not both`);
      continue;
    }
    try {
      resolved[name] = readFileSync(path, 'utf8').replace(/\r?\n$/, '');
    } catch (error) {
      problems.push(`${name}_FILE: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? error})`);
    }
  }
  return { env: resolved, problems };
}

function parseEnvironment<Schema extends z.ZodType<object>>(
  schema: Schema,
  environment: Environment,
  crossChecks: (env: Environment) => string[],
): z.infer<Schema> {
  const { env, problems } = readFileSecrets(environment);
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const name = issue.path.join('.') || '(environment)';
      // Never echo the rejected value: it may be a secret.
      const missing = issue.path.length === 1 && env[String(issue.path[0])] === undefined;
      problems.push(`${name}: ${missing ? 'is required' : issue.message}`);
    }
  }
  problems.push(...crossChecks(env));
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems);
  return parsed.data;
}

/** Which process reads the config: the API also needs the JWT signing key. */
export type Role = 'api' | 'worker';

/** Parses the environment; throws ConfigError listing every problem at once. */
export function loadConfig(environment: Environment = process.env, role: Role = 'worker'): Config {
  return parseEnvironment(EnvSchema, environment, (env) => crossVariableProblems(env, role));
}

/** Parses only the sections the migration Job reads; throws ConfigError listing every problem. */
export function loadMigrationConfig(environment: Environment = process.env): MigrationConfig {
  return parseEnvironment(MigrationEnvSchema, environment, mysqlProblems);
}

/** For entry points: a bad configuration is reported in full on stderr and the process exits 1. */
export function exitOnConfigError<T>(load: () => T): T {
  try {
    return load();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`parley: ${error.message}\n`);
    process.exit(1);
  }
}

export const loadConfigOrExit = (role: Role, environment: Environment = process.env): Config =>
  exitOnConfigError(() => loadConfig(environment, role));
