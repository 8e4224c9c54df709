import { generateKeyPairSync } from 'node:crypto';
import type { MysqlStack, RedisStack, S3Stack } from './types.js';

/** Secrets a stack makes for itself once: an Ed25519 JWT signing key. */
export function generateStackSecrets(): Record<string, string> {
  const { privateKey } = generateKeyPairSync('ed25519');
  return {
    JWT_PRIVATE_KEY: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
  };
}

/** Maps a stack to the service's environment contract (service/src/config.ts). */
export function serviceEnv(
  mysql: MysqlStack,
  redis: RedisStack,
  s3: S3Stack,
  secrets: Record<string, string>,
): Record<string, string> {
  const redisEnv: Record<string, string> =
    redis.sentinels.length > 0
      ? {
          REDIS_SENTINELS: redis.sentinels.map((sentinel) => `${sentinel.host}:${sentinel.port}`).join(','),
          REDIS_SENTINEL_MASTER: redis.masterName,
          REDIS_PASSWORD: redis.password,
        }
      : {
          REDIS_URL: `redis://:${encodeURIComponent(redis.password)}@${redis.nodes[0]!.host}:${redis.nodes[0]!.port}`,
        };
  return {
    MYSQL_HOST: mysql.primary.host,
    MYSQL_PORT: String(mysql.primary.port),
    ...(mysql.replica
      ? { MYSQL_REPLICA_HOST: mysql.replica.host, MYSQL_REPLICA_PORT: String(mysql.replica.port) }
      : {}),
    MYSQL_DATABASE: mysql.database,
    MYSQL_USER: mysql.app.user,
    MYSQL_PASSWORD: mysql.app.password,
    MYSQL_MIGRATION_USER: mysql.migration.user,
    MYSQL_MIGRATION_PASSWORD: mysql.migration.password,
    ...redisEnv,
    S3_ENDPOINT: s3.endpoint,
    S3_REGION: s3.region,
    S3_FORCE_PATH_STYLE: 'true',
    S3_ACCESS_KEY_ID: s3.accessKeyId,
    S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
    S3_ATTACHMENTS_BUCKET: s3.buckets.attachments,
    S3_BACKUPS_BUCKET: s3.buckets.backups,
    ...secrets,
  };
}
