/**
 * The IAM and bucket policy documents, as plain data: the components serialise them, and the tests
 * parse what the resources received and hold it to the same promises.
 */

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

/** Key prefixes the service writes under (service/src/features/{attachments,backups}). */
export const ATTACHMENTS_PREFIX = 'attachments/';
export const BACKUPS_PREFIX = 'backups/';

/**
 * Object actions the service performs. HeadObject is authorised by s3:GetObject; the multipart
 * calls CreateMultipartUpload, UploadPart and CompleteMultipartUpload by s3:PutObject.
 */
export const OBJECT_ACTIONS = [
  's3:PutObject',
  's3:GetObject',
  's3:DeleteObject',
  's3:AbortMultipartUpload',
  's3:ListMultipartUploadParts',
] as const;

/** The customer-managed key is used through S3 (SSE-KMS) only for these operations. */
export const KMS_ACTIONS = ['kms:Encrypt', 'kms:Decrypt', 'kms:GenerateDataKey'] as const;

export function serviceAccessPolicy(args: {
  attachmentsBucketArn: string;
  backupsBucketArn: string;
  keyArn: string;
}): PolicyDocument {
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'AttachmentObjects',
        Effect: 'Allow',
        Action: [...OBJECT_ACTIONS],
        Resource: `${args.attachmentsBucketArn}/${ATTACHMENTS_PREFIX}*`,
      },
      {
        Sid: 'BackupObjects',
        Effect: 'Allow',
        Action: [...OBJECT_ACTIONS],
        Resource: `${args.backupsBucketArn}/${BACKUPS_PREFIX}*`,
      },
      {
        // Restore lists the backups to find the newest; nothing else lists a bucket.
        Sid: 'ListBackups',
        Effect: 'Allow',
        Action: 's3:ListBucket',
        Resource: args.backupsBucketArn,
        Condition: { StringLike: { 's3:prefix': [BACKUPS_PREFIX, `${BACKUPS_PREFIX}*`] } },
      },
      {
        Sid: 'BucketKey',
        Effect: 'Allow',
        Action: [...KMS_ACTIONS],
        Resource: args.keyArn,
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
