/**
 * What the service does with S3, as data: the key prefix of each bucket and the S3 operations the
 * features are designed to perform under it, each with the IAM actions that authorise it.
 *
 * This is the single source of truth for the service's S3 access. The IAM role that the api and
 * worker pods assume in production (pulumi/src/policies.ts) grants exactly the actions listed
 * here, on exactly these prefixes, and nothing else; its tests fail when the two disagree. So the
 * features that use S3 (attachments, backups) must use only these operations under these
 * prefixes: anything else is refused with AccessDenied on AWS. A feature that needs a new
 * operation adds it here first, and the infrastructure follows.
 *
 * Dependency-free on purpose: the Pulumi program imports this file directly.
 */

export interface S3Operation {
  /** The S3 API operation, as the SDK's command is named (`PutObjectCommand` → `PutObject`). */
  readonly operation: string;
  /** How the service calls it, for readers: presigned by the api, or directly by the worker. */
  readonly how: string;
  /** IAM actions that authorise the operation (AWS: "Actions, resources, and condition keys for Amazon S3"). */
  readonly actions: readonly string[];
  /** What the actions apply to: objects under the prefix, or the bucket restricted to the prefix. */
  readonly scope: 'object' | 'bucket';
}

export interface S3Area {
  /** Every key the service reads or writes in this bucket starts with it. */
  readonly prefix: string;
  readonly operations: readonly S3Operation[];
}

/** Keyed by bucket: `attachments` is S3_ATTACHMENTS_BUCKET, `backups` is S3_BACKUPS_BUCKET. */
export const S3_CONTRACT = {
  attachments: {
    // attachments/<room>/<yyyy-mm-dd>/<id>
    prefix: 'attachments/',
    operations: [
      {
        operation: 'PutObject',
        how: 'a presigned POST by the api (size, type and SHA-256 in its policy); the browser uploads in one request',
        actions: ['s3:PutObject'],
        scope: 'object',
      },
      {
        operation: 'GetObject',
        how: 'presigned by the api, the browser downloads; the worker reads an upload back to hash it',
        actions: ['s3:GetObject'],
        scope: 'object',
      },
      {
        operation: 'HeadObject',
        how: 'worker: checks size, type and checksum after upload',
        actions: ['s3:GetObject'],
        scope: 'object',
      },
      {
        operation: 'DeleteObject',
        how: 'worker: removes a rejected upload, and the sweep one never completed',
        actions: ['s3:DeleteObject'],
        scope: 'object',
      },
    ],
  },
  backups: {
    // backups/<yyyy>/<mm>/<dd>/<timestamp>-<id>.ndjson.gz.enc
    prefix: 'backups/',
    operations: [
      {
        operation: 'PutObject',
        how: 'worker: a backup smaller than one part goes up in one request',
        actions: ['s3:PutObject'],
        scope: 'object',
      },
      {
        operation: 'CreateMultipartUpload',
        how: 'worker: streams an encrypted backup',
        actions: ['s3:PutObject'],
        scope: 'object',
      },
      { operation: 'UploadPart', how: 'worker', actions: ['s3:PutObject'], scope: 'object' },
      { operation: 'CompleteMultipartUpload', how: 'worker', actions: ['s3:PutObject'], scope: 'object' },
      {
        operation: 'AbortMultipartUpload',
        how: 'worker: cleans up a failed backup',
        actions: ['s3:AbortMultipartUpload'],
        scope: 'object',
      },
      { operation: 'GetObject', how: 'worker: restore', actions: ['s3:GetObject'], scope: 'object' },
      {
        operation: 'DeleteObject',
        how: 'worker: deletes the backups beyond the last BACKUP_KEEP',
        actions: ['s3:DeleteObject'],
        scope: 'object',
      },
      {
        operation: 'ListObjectsV2',
        how: 'worker: lists the backups (to keep the last BACKUP_KEEP, and for the operator), under the prefix only',
        actions: ['s3:ListBucket'],
        scope: 'bucket',
      },
    ],
  },
} as const satisfies Record<string, S3Area>;

export type S3Bucket = keyof typeof S3_CONTRACT;

/** The IAM actions the service needs in a bucket, for one scope, sorted and without repeats. */
export function contractActions(bucket: S3Bucket, scope: S3Operation['scope']): string[] {
  const operations: readonly S3Operation[] = S3_CONTRACT[bucket].operations;
  const actions = operations.filter((op) => op.scope === scope).flatMap((op) => op.actions);
  return [...new Set(actions)].sort();
}
