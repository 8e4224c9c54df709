/**
 * The IAM and bucket policy documents, as plain data: the components serialise them, and the tests
 * parse what the resources received and hold it to the same promises.
 */

import { contractActions, S3_CONTRACT, type S3Bucket } from '../../service/src/platform/s3-contract.js';

export interface PolicyStatement {
  Sid: string;
  Effect: 'Allow' | 'Deny';
  Principal?: '*' | { AWS?: string | string[]; Federated?: string };
  Action: string | string[];
  Resource?: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

export interface PolicyDocument {
  Version: '2012-10-17';
  Statement: PolicyStatement[];
}

/**
 * What the service does in S3 is declared once, beside its code (service/src/platform/s3-contract.ts):
 * the prefixes and the IAM actions of the operations the features perform. The role grants exactly
 * those, so the service and its permissions cannot drift apart.
 */
export const BACKUPS_PREFIX = S3_CONTRACT.backups.prefix;

/**
 * SSE-KMS needs only these from the caller: GenerateDataKey to write (PutObject, each multipart
 * part), Decrypt to read and to complete a multipart upload. S3 never asks the caller for Encrypt.
 */
export const KMS_ACTIONS = ['kms:Decrypt', 'kms:GenerateDataKey'] as const;

/**
 * The contract's actions on one bucket: object actions on `<prefix>*`, bucket actions (listing)
 * on the bucket itself but only for keys under the prefix. No statement for an empty set.
 */
function s3Statements(sid: string, bucketArn: string, bucket: S3Bucket): PolicyStatement[] {
  const { prefix } = S3_CONTRACT[bucket];
  const objectActions = contractActions(bucket, 'object');
  const bucketActions = contractActions(bucket, 'bucket');
  return [
    ...(objectActions.length > 0
      ? [
          {
            Sid: `${sid}Objects`,
            Effect: 'Allow' as const,
            Action: objectActions,
            Resource: `${bucketArn}/${prefix}*`,
          },
        ]
      : []),
    ...(bucketActions.length > 0
      ? [
          {
            Sid: `${sid}Listing`,
            Effect: 'Allow' as const,
            Action: bucketActions,
            Resource: bucketArn,
            Condition: { StringLike: { 's3:prefix': [prefix, `${prefix}*`] } },
          },
        ]
      : []),
  ];
}

export function serviceAccessPolicy(args: {
  attachmentsBucketArn: string;
  backupsBucketArn: string;
  keyArn: string;
  region: string;
}): PolicyDocument {
  return {
    Version: '2012-10-17',
    Statement: [
      ...s3Statements('Attachment', args.attachmentsBucketArn, 'attachments'),
      ...s3Statements('Backup', args.backupsBucketArn, 'backups'),
      {
        // Only through S3 in the stack's region: the pod cannot decrypt or mint data keys by
        // calling KMS itself.
        Sid: 'BucketKey',
        Effect: 'Allow',
        Action: [...KMS_ACTIONS],
        Resource: args.keyArn,
        Condition: { StringEquals: { 'kms:ViaService': `s3.${args.region}.amazonaws.com` } },
      },
    ],
  };
}

/** IRSA: only this cluster's service account, only for STS, may assume the role. */
export function irsaTrustPolicy(args: {
  oidcProviderArn: string;
  oidcIssuer: string;
  namespace: string;
  serviceAccountName: string;
}): PolicyDocument {
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'ServiceAccount',
        Effect: 'Allow',
        Principal: { Federated: args.oidcProviderArn },
        Action: 'sts:AssumeRoleWithWebIdentity',
        Condition: {
          StringEquals: {
            [`${args.oidcIssuer}:sub`]: `system:serviceaccount:${args.namespace}:${args.serviceAccountName}`,
            [`${args.oidcIssuer}:aud`]: 'sts.amazonaws.com',
          },
        },
      },
    ],
  };
}

/** Refuses every request that does not arrive over TLS 1.2 or later, whoever makes it. */
export function tlsOnlyBucketPolicy(bucketArn: string): PolicyDocument {
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'DenyInsecureTransport',
        Effect: 'Deny',
        Principal: '*',
        Action: 's3:*',
        Resource: [bucketArn, `${bucketArn}/*`],
        Condition: { Bool: { 'aws:SecureTransport': 'false' } },
      },
      {
        Sid: 'DenyOutdatedTls',
        Effect: 'Deny',
        Principal: '*',
        Action: 's3:*',
        Resource: [bucketArn, `${bucketArn}/*`],
        Condition: { NumericLessThan: { 's3:TlsVersion': '1.2' } },
      },
    ],
  };
}
