import { beforeAll, describe, expect, it } from 'vitest';

import { contractActions, S3_CONTRACT, type S3Bucket } from '../../service/src/platform/s3-contract.js';
import type { PolicyDocument } from '../src/policies.js';
import { exampleStack, OIDC_ISSUER, OIDC_PROVIDER_ARN, only, runParley, type Recorded } from './harness.js';
import { isAllowed } from './iam.js';

const ATTACHMENTS = 'arn:aws:s3:::parley-dev-attachments-20250101000000000000000001';
const BACKUPS = 'arn:aws:s3:::parley-dev-backups-20250101000000000000000001';
const KEY = 'arn:aws:kms:eu-west-1:123456789012:key/key-parley-key';

const BUCKET_ARNS: Record<S3Bucket, string> = { attachments: ATTACHMENTS, backups: BACKUPS };
const SAMPLE_KEYS: Record<S3Bucket, string> = {
  attachments: 'attachments/room-1/2025-01-01/01JATTACHMENT',
  backups: 'backups/2025/01/01/20250101T000000000Z-0194a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b.ndjson.gz.enc',
};

/**
 * How IAM authorises each S3 operation (AWS Service Authorization Reference, "Actions, resources,
 * and condition keys for Amazon S3"), written out here independently of the contract: a contract
 * that understated an operation's actions would pass the policy test and fail on AWS.
 */
const AWS_AUTHORIZATION: Record<string, string[]> = {
  PutObject: ['s3:PutObject'],
  GetObject: ['s3:GetObject'],
  HeadObject: ['s3:GetObject'],
  DeleteObject: ['s3:DeleteObject'],
  CreateMultipartUpload: ['s3:PutObject'],
  UploadPart: ['s3:PutObject'],
  CompleteMultipartUpload: ['s3:PutObject'],
  AbortMultipartUpload: ['s3:AbortMultipartUpload'],
  ListParts: ['s3:ListMultipartUploadParts'],
  ListObjectsV2: ['s3:ListBucket'],
};

/** Object-level S3 actions a role could be given; only the contract's may pass, per bucket. */
const OBJECT_ACTIONS = [
  's3:PutObject',
  's3:GetObject',
  's3:DeleteObject',
  's3:AbortMultipartUpload',
  's3:ListMultipartUploadParts',
  's3:GetObjectVersion',
  's3:DeleteObjectVersion',
  's3:GetObjectAttributes',
  's3:GetObjectAcl',
  's3:PutObjectAcl',
  's3:PutObjectTagging',
  's3:RestoreObject',
  's3:PutObjectRetention',
];

/** Every S3 call the service is designed to make, as the contract in service/ declares them. */
const SERVICE_CALLS = (Object.keys(S3_CONTRACT) as S3Bucket[]).flatMap((bucket) =>
  S3_CONTRACT[bucket].operations.flatMap((op) =>
    op.actions.map((action) => [bucket, op.operation, action, op.scope] as const),
  ),
);

/** S3 calls KMS on the caller's behalf, with the caller's credentials, and says so. */
const VIA_S3 = { 'kms:ViaService': 's3.eu-west-1.amazonaws.com' };
const KMS_CALLS = [
  ['kms:GenerateDataKey', KEY],
  ['kms:Decrypt', KEY],
] as const;

/** Calls a compromised pod might try; none of them may pass. */
const FORBIDDEN_CALLS: [action: string, resource: string, context?: Record<string, string>][] = [
  ['s3:PutObject', `${ATTACHMENTS}/backups/smuggled`],
  ['s3:GetObject', `${ATTACHMENTS}/other/secret.txt`],
  ['s3:GetObject', `${BACKUPS}/attachments/room-1/x`],
  ['s3:PutObject', `${BACKUPS}/not-a-backup`],
  ['s3:GetObject', 'arn:aws:s3:::someone-elses-bucket/backups/x'],
  ['s3:ListBucket', ATTACHMENTS],
  // The worker deletes backups beyond BACKUP_KEEP, but the bucket is versioned: a delete leaves a
  // noncurrent version that only the lifecycle rule removes, never the service.
  ['s3:DeleteObject', `${ATTACHMENTS}/${SAMPLE_KEYS.backups}`],
  // Presigned uploads are single requests: nothing to abort or list under attachments/.
  ['s3:AbortMultipartUpload', `${ATTACHMENTS}/attachments/room-1/2025-01-01/01JATTACHMENT`],
  ['s3:ListMultipartUploadParts', `${BACKUPS}/${SAMPLE_KEYS.backups}`],
  ['s3:DeleteBucket', BACKUPS],
  ['s3:PutBucketPolicy', ATTACHMENTS],
  ['s3:PutLifecycleConfiguration', BACKUPS],
  ['s3:DeleteObjectVersion', `${BACKUPS}/${SAMPLE_KEYS.backups}`],
  ['s3:PutObjectAcl', `${ATTACHMENTS}/attachments/room-1/2025-01-01/01JATTACHMENT`],
  ['kms:Decrypt', 'arn:aws:kms:eu-west-1:123456789012:key/another-key', VIA_S3],
  // The managed databases' key is not the pods' to use, not even through S3.
  ['kms:Decrypt', 'arn:aws:kms:eu-west-1:123456789012:key/key-parley-data-key', VIA_S3],
  // The storage key only through S3 in the stack's region: not called directly, not via others.
  ['kms:Decrypt', KEY],
  ['kms:GenerateDataKey', KEY],
  ['kms:Decrypt', KEY, { 'kms:ViaService': 's3.us-east-1.amazonaws.com' }],
  ['kms:Decrypt', KEY, { 'kms:ViaService': 'secretsmanager.eu-west-1.amazonaws.com' }],
  // SSE-KMS never needs Encrypt from the caller.
  ['kms:Encrypt', KEY, VIA_S3],
  ['kms:ReEncryptFrom', KEY, VIA_S3],
  ['kms:ScheduleKeyDeletion', KEY],
  ['kms:PutKeyPolicy', KEY],
  ['kms:CreateGrant', KEY, VIA_S3],
  ['iam:PassRole', 'arn:aws:iam::123456789012:role/parley-service'],
];

describe('the service identity (IRSA role)', () => {
  let resources: Recorded[];
  let policy: PolicyDocument;
  let trust: PolicyDocument;

  beforeAll(async () => {
    ({ resources } = await runParley('dev', exampleStack('dev')));
    const rolePolicy = only(resources, 'aws:iam/rolePolicy:RolePolicy');
    expect(rolePolicy.inputs.role).toBe('parley-service');
    policy = JSON.parse(rolePolicy.inputs.policy as string) as PolicyDocument;
    trust = JSON.parse(
      only(resources, 'aws:iam/role:Role').inputs.assumeRolePolicy as string,
    ) as PolicyDocument;
  });

  it('can be assumed only by the parley service account, through the cluster OIDC provider', () => {
    expect(trust.Statement).toEqual([
      {
        Sid: 'ServiceAccount',
        Effect: 'Allow',
        Principal: { Federated: OIDC_PROVIDER_ARN },
        Action: 'sts:AssumeRoleWithWebIdentity',
        Condition: {
          StringEquals: {
            [`${OIDC_ISSUER}:sub`]: 'system:serviceaccount:parley:parley',
            [`${OIDC_ISSUER}:aud`]: 'sts.amazonaws.com',
          },
        },
      },
    ]);
    const token = (sub: string) => ({
      action: 'sts:AssumeRoleWithWebIdentity',
      resource: '*',
      context: { [`${OIDC_ISSUER}:sub`]: sub, [`${OIDC_ISSUER}:aud`]: 'sts.amazonaws.com' },
    });
    // The trust policy has no Resource; evaluate it as if it named the role.
    const asIdentityPolicy: PolicyDocument = {
      ...trust,
      Statement: trust.Statement.map((s) => ({ ...s, Resource: '*' })),
    };
    expect(isAllowed(asIdentityPolicy, token('system:serviceaccount:parley:parley'))).toBe(true);
    expect(isAllowed(asIdentityPolicy, token('system:serviceaccount:parley:default'))).toBe(false);
    expect(isAllowed(asIdentityPolicy, token('system:serviceaccount:kube-system:parley'))).toBe(false);
  });

  it('takes the IAM action of each operation in the contract from AWS’s authorization reference', () => {
    for (const [bucket, operation, action] of SERVICE_CALLS) {
      expect(AWS_AUTHORIZATION[operation], `${bucket}: ${operation}`).toContain(action);
    }
    for (const bucket of Object.keys(S3_CONTRACT) as S3Bucket[]) {
      for (const op of S3_CONTRACT[bucket].operations) {
        expect([...op.actions].sort(), `${bucket}: ${op.operation}`).toEqual(
          [...AWS_AUTHORIZATION[op.operation]!].sort(),
        );
      }
    }
  });

  it.each(Object.keys(S3_CONTRACT) as S3Bucket[])(
    'grants in the %s bucket exactly the actions of the service’s S3 contract, under its prefix',
    (bucket) => {
      const arn = BUCKET_ARNS[bucket];
      const { prefix } = S3_CONTRACT[bucket];
      const onObjects = policy.Statement.filter((s) => [s.Resource].flat().includes(`${arn}/${prefix}*`));
      const onBucket = policy.Statement.filter((s) => [s.Resource].flat().includes(arn));
      expect(onObjects.flatMap((s) => [s.Action].flat()).sort()).toEqual(contractActions(bucket, 'object'));
      expect(onBucket.flatMap((s) => [s.Action].flat()).sort()).toEqual(contractActions(bucket, 'bucket'));
      // Evaluated too: every object action is allowed exactly when the contract names it.
      for (const action of OBJECT_ACTIONS) {
        expect(
          isAllowed(policy, { action, resource: `${arn}/${SAMPLE_KEYS[bucket]}` }),
          `${action} in ${bucket}`,
        ).toBe(contractActions(bucket, 'object').includes(action));
      }
    },
  );

  it('grants no S3 action outside the contract, and only the KMS actions on the storage key', () => {
    const contract = (Object.keys(S3_CONTRACT) as S3Bucket[]).flatMap((bucket) => [
      ...contractActions(bucket, 'object'),
      ...contractActions(bucket, 'bucket'),
    ]);
    const granted = new Set(policy.Statement.flatMap((s) => [s.Action].flat()));
    expect([...granted].filter((action) => action.startsWith('s3:')).sort()).toEqual(
      [...new Set(contract)].sort(),
    );
    expect([...granted].filter((action) => !action.startsWith('s3:')).sort()).toEqual([
      'kms:Decrypt',
      'kms:GenerateDataKey',
    ]);
    expect(policy.Statement.find((s) => s.Sid === 'BucketKey')?.Resource).toBe(KEY);
  });

  it.each(SERVICE_CALLS)('allows in %s: %s (%s)', (bucket, _operation, action, scope) => {
    const request =
      scope === 'object'
        ? { action, resource: `${BUCKET_ARNS[bucket]}/${SAMPLE_KEYS[bucket]}` }
        : { action, resource: BUCKET_ARNS[bucket], context: { 's3:prefix': S3_CONTRACT[bucket].prefix } };
    expect(isAllowed(policy, request)).toBe(true);
  });

  it.each(KMS_CALLS)('allows %s on %s through S3', (action, resource) => {
    expect(isAllowed(policy, { action, resource, context: VIA_S3 })).toBe(true);
  });

  it('lets the key be used only through S3 in the stack region', () => {
    expect(policy.Statement.find((s) => s.Sid === 'BucketKey')?.Condition).toEqual({
      StringEquals: { 'kms:ViaService': 's3.eu-west-1.amazonaws.com' },
    });
  });

  it.each(FORBIDDEN_CALLS)('denies %s on %s (context %j)', (action, resource, context = {}) => {
    expect(isAllowed(policy, { action, resource, context })).toBe(false);
  });

  it('lists the backups bucket only under backups/', () => {
    const list = (prefix: string) => ({
      action: 's3:ListBucket',
      resource: BACKUPS,
      context: { 's3:prefix': prefix },
    });
    expect(isAllowed(policy, list('backups/'))).toBe(true);
    expect(isAllowed(policy, list('backups/2025-'))).toBe(true);
    expect(isAllowed(policy, list(''))).toBe(false);
    expect(isAllowed(policy, list('attachments/'))).toBe(false);
    expect(isAllowed(policy, { action: 's3:ListBucket', resource: BACKUPS })).toBe(false);
  });
});

describe.each(['dev', 'prod'] as const)('the role policy of the %s stack', (stack) => {
  it('names no wildcard action, and no wildcard resource but the prefixes of its own buckets', async () => {
    const { resources } = await runParley(stack, exampleStack(stack));
    const policy = JSON.parse(
      only(resources, 'aws:iam/rolePolicy:RolePolicy').inputs.policy as string,
    ) as PolicyDocument;
    const bucketArn = (name: string) => {
      const bucket = only(resources, 'aws:s3/bucket:Bucket', name).inputs;
      return `arn:aws:s3:::${bucket.bucket ?? `${bucket.bucketPrefix}20250101000000000000000001`}`;
    };
    // A wildcard may only close a key prefix the service owns, in the stack's own buckets.
    const prefixes = [
      `${bucketArn('parley-attachments')}/${S3_CONTRACT.attachments.prefix}*`,
      `${bucketArn('parley-backups')}/${S3_CONTRACT.backups.prefix}*`,
    ];
    expect(policy.Statement.length).toBeGreaterThan(0);
    for (const statement of policy.Statement) {
      const actions = [statement.Action].flat();
      const resources = [statement.Resource ?? []].flat();
      expect(statement.Effect).toBe('Allow');
      expect(actions.filter((action) => /[*?]/.test(action))).toEqual([]);
      expect(resources.length).toBeGreaterThan(0);
      for (const resource of resources) {
        if (/[*?]/.test(resource)) expect(prefixes, statement.Sid).toContain(resource);
      }
    }
  });
});
