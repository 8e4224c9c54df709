import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { assembleS3Stack, minioArgs, minioEnv, minioReady } from '../s3-topology.js';
import type { S3Stack, ServerControl } from '../types.js';
import { findBinary, MINIO_INSTALL_HINT } from './binaries.js';
import { LocalServer } from './local-server.js';

/**
 * MinIO as a local process: a real S3 API that checks SigV4 signatures and presigned POST policies
 * (content-length-range, exact fields) as S3 does, so what the signature enforces can be tested.
 * Its files stay in `dir` across stop() and start().
 */
export async function startLocalS3(
  dir: string,
  ports: { api: number; console: number },
  track: (server: ServerControl) => void,
): Promise<S3Stack> {
  const minio = findBinary('minio');
  if (minio === undefined) throw new Error(`minio is missing (${MINIO_INSTALL_HINT})`);
  const dataDir = join(dir, 'data');
  mkdirSync(dataDir, { recursive: true });
  const endpoint = `http://127.0.0.1:${ports.api}`;
  const server = new LocalServer({
    name: 'minio',
    host: '127.0.0.1',
    port: ports.api,
    command: minio,
    args: minioArgs({ dataDir, port: ports.api, consolePort: ports.console, certsDir: join(dir, 'certs') }),
    // MinIO makes ~/.minio whatever --certs-dir says: a home of its own keeps it in the stack's dir.
    env: { ...minioEnv(), HOME: dir },
    logFile: join(dir, 'server.log'),
    probe: () => minioReady(endpoint),
  });
  track(server);
  await server.start();
  return assembleS3Stack(server);
}
