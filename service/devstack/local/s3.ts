import { mkdirSync } from 'node:fs';
import S3rver from 's3rver';
import type { S3Stack, ServerControl } from '../types.js';

const BUCKETS = { attachments: 'parley-attachments', backups: 'parley-backups' };
// s3rver accepts any signature made with these.
const ACCESS_KEY_ID = 'S3RVER';
const SECRET_ACCESS_KEY = 'S3RVER';

/** s3rver runs inside this process, so "stopping" it closes its listener; its files stay for `start()`. */
class InProcessS3 implements ServerControl {
  readonly name = 's3rver';
  readonly host = '127.0.0.1';
  private server: S3rver | undefined;

  constructor(
    readonly port: number,
    private readonly directory: string,
  ) {}

  pid(): number | undefined {
    return undefined;
  }

  isRunning(): boolean {
    return this.server !== undefined;
  }

  async start(): Promise<void> {
    if (this.server) return;
    const server = new S3rver({
      address: this.host,
      port: this.port,
      silent: true,
      directory: this.directory,
      resetOnClose: false,
      configureBuckets: Object.values(BUCKETS).map((name) => ({ name })),
    });
    await server.run();
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    await server?.close();
  }

  kill(): Promise<void> {
    return this.stop();
  }

  // Freezing it would freeze this process (the tests themselves): stop() it instead.
  pause(): Promise<void> {
    return Promise.reject(new Error('s3rver runs inside this process and cannot be paused; stop() it'));
  }

  resume(): Promise<void> {
    return Promise.resolve();
  }
}

export async function startLocalS3(
  directory: string,
  port: number,
  track: (server: ServerControl) => void,
): Promise<S3Stack> {
  mkdirSync(directory, { recursive: true });
  const server = new InProcessS3(port, directory);
  track(server);
  await server.start();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    region: 'us-east-1',
    accessKeyId: ACCESS_KEY_ID,
    secretAccessKey: SECRET_ACCESS_KEY,
    buckets: BUCKETS,
    server,
  };
}
