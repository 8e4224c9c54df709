import { beforeAll, describe, expect, it } from 'vitest';

import type { PolicyDocument } from '../src/policies.js';
import { exampleStack, ofType, only, runParley, type Recorded } from './harness.js';

const BUCKETS = ['parley-attachments', 'parley-backups'] as const;

describe.each([
  { stack: 'dev' as const, attachments: /^parley-dev-attachments-/, backups: /^parley-dev-backups-/ },
  {
    stack: 'prod' as const,
    attachments: /^example-parley-prod-attachments$/,
    backups: /^example-parley-prod-backups$/,
  },
])('storage of the $stack stack', ({ stack, attachments, backups }) => {
  let resources: Recorded[];
  let keyArn: string;
  const bucketName = (name: string) => only(resources, 'aws:s3/bucket:Bucket', name).inputs;
  const bucketId = (name: string) => {
    const bucket = bucketName(name);
    return (bucket.bucket as string | undefined) ?? `${bucket.bucketPrefix}20250101000000000000000001`;
  };

  beforeAll(async () => {
    ({ resources } = await runParley(stack, exampleStack(stack)));
    keyArn = `arn:aws:kms:eu-west-1:123456789012:key/key-parley-key`;
  });

  it('creates exactly two buckets, named by config or by a per-stack prefix', () => {
    expect(ofType(resources, 'aws:s3/bucket:Bucket').map((b) => b.name)).toEqual([...BUCKETS]);
    const [a, b] = [bucketName('parley-attachments'), bucketName('parley-backups')];
    expect(a.bucket ?? a.bucketPrefix).toMatch(attachments);
    expect(b.bucket ?? b.bucketPrefix).toMatch(backups);
    // Only dev buckets may be emptied by `pulumi destroy`.
    expect(a.forceDestroy).toBe(stack === 'dev');
    expect(b.forceDestroy).toBe(stack === 'dev');
  });

  it('uses one customer-managed KMS key with rotation', () => {
    const key = only(resources, 'aws:kms/key:Key', 'parley-key').inputs;
    expect(key.enableKeyRotation).toBe(true);
    expect(key.deletionWindowInDays).toBe(stack === 'prod' ? 30 : 7);
    expect(only(resources, 'aws:kms/alias:Alias', 'parley-key').inputs.name).toBe(
      `alias/parley-${stack}-storage`,
    );
  });

  it.each(BUCKETS)('%s blocks every kind of public access and disables ACLs', (name) => {
    const block = only(resources, 'aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock', name).inputs;
    expect(block).toMatchObject({
      bucket: bucketId(name),
      blockPublicAcls: true,
      blockPublicPolicy: true,
      ignorePublicAcls: true,
      restrictPublicBuckets: true,
    });
    const ownership = only(resources, 'aws:s3/bucketOwnershipControls:BucketOwnershipControls', name).inputs;
    expect(ownership).toEqual({ bucket: bucketId(name), rule: { objectOwnership: 'BucketOwnerEnforced' } });
  });

  it.each(BUCKETS)('%s encrypts by default with the stack key (SSE-KMS, bucket key)', (name) => {
    const sse = only(
      resources,
      'aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration',
      name,
    ).inputs;
    expect(sse.bucket).toBe(bucketId(name));
    expect(sse.rules).toEqual([
      {
        applyServerSideEncryptionByDefault: { sseAlgorithm: 'aws:kms', kmsMasterKeyId: keyArn },
        bucketKeyEnabled: true,
      },
    ]);
  });

  it.each(BUCKETS)('%s is versioned', (name) => {
    const versioning = only(resources, 'aws:s3/bucketVersioning:BucketVersioning', name).inputs;
    expect(versioning).toEqual({ bucket: bucketId(name), versioningConfiguration: { status: 'Enabled' } });
  });

  it.each(BUCKETS)('%s refuses any request without TLS 1.2+, from anyone', (name) => {
    const policy = only(resources, 'aws:s3/bucketPolicy:BucketPolicy', name).inputs;
    expect(policy.bucket).toBe(bucketId(name));
    const document = JSON.parse(policy.policy as string) as PolicyDocument;
    const arn = `arn:aws:s3:::${bucketId(name)}`;
    expect(document.Statement.every((s) => s.Effect === 'Deny')).toBe(true);
    expect(document.Statement).toContainEqual({
      Sid: 'DenyInsecureTransport',
      Effect: 'Deny',
      Principal: '*',
      Action: 's3:*',
      Resource: [arn, `${arn}/*`],
      Condition: { Bool: { 'aws:SecureTransport': 'false' } },
    });
    expect(document.Statement).toContainEqual(
      expect.objectContaining({
        Principal: '*',
        Resource: [arn, `${arn}/*`],
        Condition: { NumericLessThan: { 's3:TlsVersion': '1.2' } },
      }),
    );
  });

  it.each(BUCKETS)(
    '%s aborts incomplete multipart uploads, expires old versions and their delete markers',
    (name) => {
      const { rules } = only(
        resources,
        'aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration',
        name,
      ).inputs;
      expect(rules).toContainEqual({
        id: 'abort-incomplete-multipart-uploads',
        status: 'Enabled',
        filter: {},
        abortIncompleteMultipartUpload: { daysAfterInitiation: 2 },
      });
      expect(rules).toContainEqual({
        id: 'expire-noncurrent-versions',
        status: 'Enabled',
        filter: {},
        noncurrentVersionExpiration: { noncurrentDays: 30 },
        expiration: { expiredObjectDeleteMarker: true },
      });
    },
  );

  it('expires backups after the configured retention, and only backups', () => {
    const retention = exampleStack(stack)['parley:backupRetentionDays'];
    const backupRules = only(
      resources,
      'aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration',
      'parley-backups',
    ).inputs.rules;
    expect(backupRules).toContainEqual({
      id: 'expire-backups',
      status: 'Enabled',
      filter: { prefix: 'backups/' },
      expiration: { days: retention },
    });
    const attachmentRules = only(
      resources,
      'aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration',
      'parley-attachments',
    ).inputs.rules as { expiration?: { days?: number } }[];
    // Attachments are kept; only delete markers left behind by deletions expire.
    expect(attachmentRules.filter((rule) => rule.expiration?.days !== undefined)).toEqual([]);
  });

  it('lets only the configured origins upload attachments from a browser, and no one to the backups', () => {
    const cors = ofType(resources, 'aws:s3/bucketCorsConfiguration:BucketCorsConfiguration');
    expect(cors.map((c) => c.name)).toEqual(['parley-attachments']);
    const [rule, ...others] = cors[0]!.inputs.corsRules;
    expect(others).toEqual([]);
    expect(rule.allowedOrigins).toEqual(exampleStack(stack)['parley:corsOrigins']);
    expect(rule.allowedOrigins).not.toContain('*');
    expect([...rule.allowedMethods].sort()).toEqual(['GET', 'HEAD', 'POST']);
  });
});
