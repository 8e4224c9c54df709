import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';

import { stackResourceNames } from '../names.js';
import { BACKUPS_PREFIX, tlsOnlyBucketPolicy } from '../policies.js';

type LifecycleRule = aws.types.input.s3.BucketLifecycleConfigurationRule;

export interface EncryptedBucketArgs {
  /** Exact bucket name; without it AWS appends a unique suffix to `namePrefix`. */
  bucketName?: string;
  namePrefix: string;
  keyArn: pulumi.Input<string>;
  /** Lifecycle rules in addition to the abort-incomplete-multipart-upload rule every bucket gets. */
  lifecycleRules: LifecycleRule[];
  abortIncompleteUploadDays: number;
  corsRules?: aws.types.input.s3.BucketCorsConfigurationCorsRule[];
  forceDestroy: boolean;
  tags: Record<string, string>;
}

/**
 * A bucket that can only be private: public access blocked at the bucket, ACLs disabled, SSE-KMS
 * with the given key by default, versioned, and a policy that refuses anything but TLS 1.2+.
 */
export class EncryptedBucket extends pulumi.ComponentResource {
  readonly bucket: aws.s3.Bucket;
  readonly name: pulumi.Output<string>;
  readonly arn: pulumi.Output<string>;

  constructor(name: string, args: EncryptedBucketArgs, opts?: pulumi.ComponentResourceOptions) {
    super('parley:storage:EncryptedBucket', name, {}, opts);
    const child = { parent: this };

    this.bucket = new aws.s3.Bucket(
      name,
      {
        ...(args.bucketName ? { bucket: args.bucketName } : { bucketPrefix: args.namePrefix }),
        forceDestroy: args.forceDestroy,
        tags: args.tags,
      },
      child,
    );
    const bucket = this.bucket.id;

    const publicAccess = new aws.s3.BucketPublicAccessBlock(
      name,
      {
        bucket,
        blockPublicAcls: true,
        blockPublicPolicy: true,
        ignorePublicAcls: true,
        restrictPublicBuckets: true,
      },
      child,
    );
    new aws.s3.BucketOwnershipControls(
      name,
      { bucket, rule: { objectOwnership: 'BucketOwnerEnforced' } },
      child,
    );
    new aws.s3.BucketServerSideEncryptionConfiguration(
      name,
      {
        bucket,
        rules: [
          {
            applyServerSideEncryptionByDefault: { sseAlgorithm: 'aws:kms', kmsMasterKeyId: args.keyArn },
            // One data key per bucket instead of one KMS request per object: cheaper, and KMS
            // request quotas stop mattering for attachment bursts.
            bucketKeyEnabled: true,
          },
        ],
      },
      child,
    );
    const versioning = new aws.s3.BucketVersioning(
      name,
      { bucket, versioningConfiguration: { status: 'Enabled' } },
      child,
    );
    new aws.s3.BucketLifecycleConfiguration(
      name,
      {
        bucket,
        rules: [
          {
            id: 'abort-incomplete-multipart-uploads',
            status: 'Enabled',
            filter: {},
            abortIncompleteMultipartUpload: { daysAfterInitiation: args.abortIncompleteUploadDays },
          },
          ...args.lifecycleRules,
        ],
      },
      // Lifecycle rules on noncurrent versions only mean something once versioning is on.
      { parent: this, dependsOn: [versioning] },
    );
    new aws.s3.BucketPolicy(
      name,
      { bucket, policy: this.bucket.arn.apply((arn) => JSON.stringify(tlsOnlyBucketPolicy(arn))) },
      // S3 rejects a bucket policy while the public access block is still being applied.
      { parent: this, dependsOn: [publicAccess] },
    );
    if (args.corsRules) {
      new aws.s3.BucketCorsConfiguration(name, { bucket, corsRules: args.corsRules }, child);
    }

    this.name = this.bucket.bucket;
    this.arn = this.bucket.arn;
    this.registerOutputs({ name: this.name, arn: this.arn });
  }
}

export interface ParleyStorageArgs {
  stack: string;
  environment: 'dev' | 'prod';
  attachmentsBucketName?: string;
  backupsBucketName?: string;
  backupRetentionDays: number;
  noncurrentVersionRetentionDays: number;
  abortIncompleteUploadDays: number;
  corsOrigins: string[];
  tags: Record<string, string>;
}

/**
 * The service's object storage: one customer-managed KMS key, the attachments bucket (presigned
 * browser uploads from the configured origins) and the backups bucket (expired after retention).
 */
export class ParleyStorage extends pulumi.ComponentResource {
  readonly key: aws.kms.Key;
  readonly attachments: EncryptedBucket;
  readonly backups: EncryptedBucket;

  constructor(name: string, args: ParleyStorageArgs, opts?: pulumi.ComponentResourceOptions) {
    super('parley:storage:ParleyStorage', name, {}, opts);
    const child = { parent: this };
    const isProd = args.environment === 'prod';
    const names = stackResourceNames(args.stack);

    this.key = new aws.kms.Key(
      `${name}-key`,
      {
        description: `Parley ${args.stack}: S3 default encryption for attachments and backups`,
        enableKeyRotation: true,
        deletionWindowInDays: isProd ? 30 : 7,
        tags: args.tags,
      },
      child,
    );
    new aws.kms.Alias(
      `${name}-key`,
      { name: `alias/parley-${args.stack}-storage`, targetKeyId: this.key.keyId },
      child,
    );

    const expireNoncurrentVersions: LifecycleRule = {
      id: 'expire-noncurrent-versions',
      status: 'Enabled',
      filter: {},
      noncurrentVersionExpiration: { noncurrentDays: args.noncurrentVersionRetentionDays },
      // Once its noncurrent versions have expired, a delete marker is all that is left of a
      // deleted object: remove it too, or every deleted key keeps a marker (and a LIST entry) forever.
      expiration: { expiredObjectDeleteMarker: true },
    };

    this.attachments = new EncryptedBucket(
      `${name}-attachments`,
      {
        bucketName: args.attachmentsBucketName,
        namePrefix: names.attachmentsBucketPrefix,
        keyArn: this.key.arn,
        abortIncompleteUploadDays: args.abortIncompleteUploadDays,
        lifecycleRules: [expireNoncurrentVersions],
        corsRules: [
          {
            id: 'presigned-uploads',
            allowedOrigins: args.corsOrigins,
            // POST: uploads are presigned POSTs (their policy fixes size, type and checksum); GET and
            // HEAD: presigned downloads. The presigned request fixes what may be sent; the browser
            // only needs to be let through.
            allowedMethods: ['POST', 'GET', 'HEAD'],
            allowedHeaders: ['*'],
            exposeHeaders: ['ETag'],
            maxAgeSeconds: 3600,
          },
        ],
        forceDestroy: !isProd,
        tags: args.tags,
      },
      child,
    );

    this.backups = new EncryptedBucket(
      `${name}-backups`,
      {
        bucketName: args.backupsBucketName,
        namePrefix: names.backupsBucketPrefix,
        keyArn: this.key.arn,
        abortIncompleteUploadDays: args.abortIncompleteUploadDays,
        lifecycleRules: [
          {
            id: 'expire-backups',
            status: 'Enabled',
            filter: { prefix: BACKUPS_PREFIX },
            expiration: { days: args.backupRetentionDays },
          },
          // An expired or deleted backup stays recoverable as a noncurrent version for a while.
          expireNoncurrentVersions,
        ],
        forceDestroy: !isProd,
        tags: args.tags,
      },
      child,
    );

    this.registerOutputs({
      keyArn: this.key.arn,
      attachmentsBucket: this.attachments.name,
      backupsBucket: this.backups.name,
    });
  }
}
