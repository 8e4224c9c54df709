import { describe, expect, it } from 'vitest';

import { exampleStack, resolve, settle, useStack } from './harness.js';

describe('the program entry point (index.ts)', () => {
  it('exports what the operator needs: hostname, URL, buckets, role ARN, key, Secret name', async () => {
    await useStack('dev', exampleStack('dev'));
    const program = await import('../index.js');
    await settle();
    expect(program.hostname).toBe('chat.dev.example.com');
    expect(program.url).toBe('https://chat.dev.example.com');
    expect(program.secretName).toBe('parley-credentials');
    expect(await resolve(program.namespace)).toBe('parley');
    expect(await resolve(program.attachmentsBucket)).toBe(
      'parley-dev-attachments-20250101000000000000000001',
    );
    expect(await resolve(program.backupsBucket)).toBe('parley-dev-backups-20250101000000000000000001');
    expect(await resolve(program.serviceRoleArn)).toBe('arn:aws:iam::123456789012:role/parley-service');
    expect(await resolve(program.storageKeyArn)).toBe(
      'arn:aws:kms:eu-west-1:123456789012:key/key-parley-key',
    );
    expect(await resolve(program.releaseStatus)).toBe('deployed');
    // In-cluster data plane: no managed endpoints to report.
    expect(program.mysqlWriterHost).toBeUndefined();
    expect(program.redisUrl).toBeUndefined();
  });
});
