import { beforeAll, describe, expect, it } from 'vitest';

import type { PolicyDocument } from '../src/policies.js';
import { exampleStack, OIDC_ISSUER, OIDC_PROVIDER_ARN, only, runParley, type Recorded } from './harness.js';
import { isAllowed } from './iam.js';

const ATTACHMENTS = 'arn:aws:s3:::parley-dev-attachments-20250101000000000000000001';
const BACKUPS = 'arn:aws:s3:::parley-dev-backups-20250101000000000000000001';
const KEY = 'arn:aws:kms:eu-west-1:123456789012:key/key-parley-key';

/** Every S3 and KMS call the service makes (service/src/platform/s3.ts, features/attachments, backups). */
const SERVICE_CALLS = [
  ['s3:PutObject', `${ATTACHMENTS}/attachments/room-1/2025-01-01/01JATTACHMENT`],
  ['s3:GetObject', `${ATTACHMENTS}/attachments/room-1/2025-01-01/01JATTACHMENT`],
  ['s3:DeleteObject', `${ATTACHMENTS}/attachments/room-1/2025-01-01/01JATTACHMENT`],
  ['s3:AbortMultipartUpload', `${ATTACHMENTS}/attachments/room-1/2025-01-01/01JATTACHMENT`],
  ['s3:PutObject', `${BACKUPS}/backups/2025-01-01T00-00-00Z.parley.gz.enc`],
  ['s3:GetObject', `${BACKUPS}/backups/2025-01-01T00-00-00Z.parley.gz.enc`],
  ['s3:DeleteObject', `${BACKUPS}/backups/2025-01-01T00-00-00Z.parley.gz.enc`],
  ['s3:AbortMultipartUpload', `${BACKUPS}/backups/2025-01-01T00-00-00Z.parley.gz.enc`],
  ['s3:ListMultipartUploadParts', `${BACKUPS}/backups/2025-01-01T00-00-00Z.parley.gz.enc`],
  ['kms:Encrypt', KEY],
  ['kms:Decrypt', KEY],
  ['kms:GenerateDataKey', KEY],
] as const;

/** Calls a compromised pod might try; none of them may pass. */
const FORBIDDEN_CALLS = [
  ['s3:PutObject', `${ATTACHMENTS}/backups/smuggled`],
  ['s3:GetObject', `${ATTACHMENTS}/other/secret.txt`],
  ['s3:GetObject', `${BACKUPS}/attachments/room-1/x`],
  ['s3:PutObject', `${BACKUPS}/not-a-backup`],
  ['s3:GetObject', 'arn:aws:s3:::someone-elses-bucket/backups/x'],
  ['s3:ListBucket', ATTACHMENTS],
  ['s3:DeleteBucket', BACKUPS],
  ['s3:PutBucketPolicy', ATTACHMENTS],
  ['s3:PutLifecycleConfiguration', BACKUPS],
  ['s3:DeleteObjectVersion', `${BACKUPS}/backups/2025-01-01T00-00-00Z.parley.gz.enc`],
  ['s3:PutObjectAcl', `${ATTACHMENTS}/attachments/room-1/2025-01-01/01JATTACHMENT`],
  ['kms:Decrypt', 'arn:aws:kms:eu-west-1:123456789012:key/another-key'],
  ['kms:ScheduleKeyDeletion', KEY],
  ['kms:PutKeyPolicy', KEY],
  ['kms:CreateGrant', KEY],
  ['iam:PassRole', 'arn:aws:iam::123456789012:role/parley-service'],
] as const;

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

  it('names no wildcard action and no wildcard resource', () => {
    for (const statement of policy.Statement) {
      const actions = [statement.Action].flat();
      const resources = [statement.Resource ?? []].flat();
      expect(statement.Effect).toBe('Allow');
      expect(actions.filter((action) => action.includes('*'))).toEqual([]);
      expect(resources.length).toBeGreaterThan(0);
      for (const resource of resources) {
        expect(resource).not.toBe('*');
        // A wildcard may only close a key prefix the service owns.
        if (resource.includes('*'))
          expect(resource).toMatch(/:::parley-dev-[a-z]+-\d+\/(attachments|backups)\/\*$/);
      }
    }
  });

  it('grants exactly the S3 and KMS actions the service uses', () => {
    const granted = new Set(policy.Statement.flatMap((s) => [s.Action].flat()));
    expect([...granted].sort()).toEqual(
      [
        's3:AbortMultipartUpload',
        's3:DeleteObject',
        's3:GetObject',
        's3:ListBucket',
        's3:ListMultipartUploadParts',
        's3:PutObject',
        'kms:Decrypt',
        'kms:Encrypt',
        'kms:GenerateDataKey',
      ].sort(),
    );
    expect(policy.Statement.find((s) => s.Sid === 'BucketKey')?.Resource).toBe(KEY);
  });

  it.each(SERVICE_CALLS)('allows %s on %s', (action, resource) => {
    expect(isAllowed(policy, { action, resource })).toBe(true);
  });

  it.each(FORBIDDEN_CALLS)('denies %s on %s', (action, resource) => {
    expect(isAllowed(policy, { action, resource })).toBe(false);
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
