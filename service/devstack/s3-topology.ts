import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import type { S3Stack, ServerControl } from './types.js';

/** Both providers run MinIO with the same buckets and credentials; only how it runs differs. */
export const BUCKETS = { attachments: 'parley-attachments', backups: 'parley-backups' };
const REGION = 'us-east-1';
// MinIO's root user; it wants a password of at least 8 characters.
const CREDENTIALS = { accessKeyId: 'parley-minio', secretAccessKey: 'parley-minio-dev' };

/** MinIO's environment: the root credentials, and nothing a test stack has no use for. */
export function minioEnv(): Record<string, string> {
  return {
    MINIO_ROOT_USER: CREDENTIALS.accessKeyId,
    MINIO_ROOT_PASSWORD: CREDENTIALS.secretAccessKey,
    // The web console is a second server per stack that nothing here uses.
    MINIO_BROWSER: 'off',
    MINIO_UPDATE: 'off',
  };
}

/** `minio` arguments: one drive, the API and the (unused) console on loopback. */
export function minioArgs(options: {
  dataDir: string;
  port: number;
  consolePort: number;
  certsDir?: string;
}): string[] {
  return [
    'server',
    options.dataDir,
    '--address',
    `127.0.0.1:${options.port}`,
    '--console-address',
    `127.0.0.1:${options.consolePort}`,
    // Otherwise ~/.minio/certs, outside the stack's own directory.
    ...(options.certsDir ? ['--certs-dir', options.certsDir] : []),
    '--quiet',
  ];
}

export async function minioReady(endpoint: string): Promise<void> {
  const response = await fetch(`${endpoint}/minio/health/ready`);
  if (!response.ok) throw new Error(`minio not ready: ${response.status}`);
}

/** Creates the service's buckets on a MinIO that answers at `server`'s port, and describes it. */
export async function assembleS3Stack(server: ServerControl): Promise<S3Stack> {
  const endpoint = `http://${server.host}:${server.port}`;
  const client = new S3Client({ endpoint, region: REGION, forcePathStyle: true, credentials: CREDENTIALS });
  try {
    for (const bucket of Object.values(BUCKETS)) {
      await client.send(new CreateBucketCommand({ Bucket: bucket }));
    }
  } finally {
    client.destroy();
  }
  return { endpoint, region: REGION, ...CREDENTIALS, buckets: BUCKETS, server };
}
