import type * as pulumi from '@pulumi/pulumi';

import type { BackupSecretKey, SecretKey, StackConfig } from './config.js';
import { ManagedDatabaseAccess, MYSQL_CA_KEY } from './components/database-access.js';
import { DATABASE_NAME, MYSQL_ADMIN_USER, MYSQL_PORT, ManagedDataPlane } from './components/data-plane.js';
import { ServiceIdentity } from './components/identity.js';
import { ParleyNamespace, ParleyRelease } from './components/release.js';
import { BackupKey } from './components/backup-key.js';
import { ParleySecrets } from './components/secrets.js';
import { ParleyStorage } from './components/storage.js';
import { chartValues } from './values.js';

/** Database users of the service (DML) and its migrations (DDL), as the chart names them. */
export const SERVICE_DATABASE_USER = 'parley';
export const MIGRATION_DATABASE_USER = 'parley_migrator';

export interface ParleyStack {
  storage: ParleyStorage;
  identity: ServiceIdentity;
  secrets: ParleySecrets;
  backupKey: BackupKey;
  dataPlane?: ManagedDataPlane;
  databaseAccess?: ManagedDatabaseAccess;
  release: ParleyRelease;
  outputs: {
    hostname: string;
    url: string;
    namespace: pulumi.Output<string>;
    attachmentsBucket: pulumi.Output<string>;
    backupsBucket: pulumi.Output<string>;
    serviceRoleArn: pulumi.Output<string>;
    storageKeyArn: pulumi.Output<string>;
    secretName: string;
    /** The Secrets Manager secret holding the backup passphrase: where an operator finds it. */
    backupKeySecret: pulumi.Output<string>;
    releaseStatus: pulumi.Output<string>;
    mysqlWriterHost?: pulumi.Output<string>;
    mysqlReaderHost?: pulumi.Output<string>;
    redisUrl?: pulumi.Output<string>;
  };
}

/** For values loadStackConfig guarantees in this configuration: a miss is a bug, not a bad stack. */
function required<T>(value: T | undefined, key: string): T {
  if (value === undefined) throw new Error(`${key} is missing although loadStackConfig requires it`);
  return value;
}

/** Wires the components together: storage → identity → secrets (→ managed data) → release. */
export function deployParley(
  config: StackConfig,
  secretOverrides: Partial<Record<SecretKey | BackupSecretKey, pulumi.Output<string>>>,
): ParleyStack {
  const tags = {
    project: 'parley',
    stack: config.stack,
    environment: config.environment,
    'managed-by': 'pulumi',
  };

  const storage = new ParleyStorage('parley', {
    stack: config.stack,
    environment: config.environment,
    attachmentsBucketName: config.buckets.attachments,
    backupsBucketName: config.buckets.backups,
    backupRetentionDays: config.backupRetentionDays,
    noncurrentVersionRetentionDays: config.noncurrentVersionRetentionDays,
    abortIncompleteUploadDays: config.abortIncompleteUploadDays,
    corsOrigins: config.corsOrigins,
    tags,
  });

  const identity = new ServiceIdentity('parley-service', {
    stack: config.stack,
    oidcProviderArn: config.oidcProviderArn,
    oidcIssuer: config.oidcIssuer,
    namespace: config.namespace,
    serviceAccountName: config.serviceAccountName,
    attachmentsBucketArn: storage.attachments.arn,
    backupsBucketArn: storage.backups.arn,
    keyArn: storage.key.arn,
    region: config.awsRegion,
    tags,
  });

  const namespace = new ParleyNamespace('parley', { namespace: config.namespace });

  const backupKey = new BackupKey('parley-backup-key', {
    stack: config.stack,
    environment: config.environment,
    overrides: { current: secretOverrides.backupEncryptionKey, previous: secretOverrides.backupPreviousKeys },
    tags,
  });

  const secrets = new ParleySecrets('parley', {
    stack: config.stack,
    environment: config.environment,
    namespace: namespace.name,
    secretName: `${config.releaseName}-credentials`,
    overrides: secretOverrides,
    backupKey,
    backend: config.secretsBackend,
    clusterSecretStore: config.externalSecrets?.clusterSecretStore,
    tags,
  });

  const dataPlane =
    config.dataPlane === 'aws-managed' && config.network
      ? new ManagedDataPlane('parley', {
          stack: config.stack,
          environment: config.environment,
          network: config.network,
          database: config.database,
          cache: config.cache,
          mysqlRootPassword: secrets.values.mysqlRootPassword,
          redisPassword: secrets.values.redisPassword,
          tags,
        })
      : undefined;

  // RDS creates only its master user: this creates the service's and the migrations' users
  // before the release, whose pre-install migrations log in as the latter.
  const databaseAccess = dataPlane
    ? new ManagedDatabaseAccess(
        'parley',
        {
          namespace: namespace.name,
          releaseName: config.releaseName,
          caBundle: required(config.mysqlCaBundle, 'database.caBundleFile'),
          writerHost: dataPlane.writerHost,
          port: MYSQL_PORT,
          database: DATABASE_NAME,
          adminUser: MYSQL_ADMIN_USER,
          appUser: SERVICE_DATABASE_USER,
          migrationUser: MIGRATION_DATABASE_USER,
          secretName: secrets.secretName,
          passwords: {
            admin: secrets.values.mysqlRootPassword,
            app: secrets.values.mysqlPassword,
            migration: secrets.values.mysqlMigrationPassword,
          },
        },
        // The Job mounts the Secret (written, or synced by External Secrets) and logs in to the writer.
        { dependsOn: [secrets, dataPlane] },
      )
    : undefined;

  const values = chartValues(config, {
    awsRegion: config.awsRegion,
    secretName: secrets.secretName,
    roleArn: identity.roleArn,
    attachmentsBucket: storage.attachments.name,
    backupsBucket: storage.backups.name,
    backupPreviousKeys: backupKey.hasPreviousKeys,
    managed: dataPlane &&
      databaseAccess && {
        writerHost: dataPlane.writerHost,
        readerHost: dataPlane.readerHost,
        port: MYSQL_PORT,
        database: DATABASE_NAME,
        user: SERVICE_DATABASE_USER,
        migrationUser: MIGRATION_DATABASE_USER,
        redisUrl: dataPlane.redisUrl,
        tls: { caConfigMap: databaseAccess.caConfigMapName, caKey: MYSQL_CA_KEY },
      },
  });

  const release = new ParleyRelease(
    'parley',
    { chartPath: config.chartPath, releaseName: config.releaseName, namespace: namespace.name, values },
    // The pods mount the Secret and assume the role from their first start; with RDS, the
    // migrations need the database users the ManagedDatabaseAccess Job creates.
    {
      dependsOn: [
        secrets,
        identity,
        ...(dataPlane ? [dataPlane] : []),
        ...(databaseAccess ? [databaseAccess] : []),
      ],
    },
  );

  return {
    storage,
    identity,
    secrets,
    backupKey,
    dataPlane,
    databaseAccess,
    release,
    outputs: {
      hostname: config.hostname,
      url: `https://${config.hostname}`,
      namespace: namespace.name,
      attachmentsBucket: storage.attachments.name,
      backupsBucket: storage.backups.name,
      serviceRoleArn: identity.roleArn,
      storageKeyArn: storage.key.arn,
      secretName: secrets.secretName,
      backupKeySecret: backupKey.secret.name,
      releaseStatus: release.status,
      ...(dataPlane
        ? {
            mysqlWriterHost: dataPlane.writerHost,
            mysqlReaderHost: dataPlane.readerHost,
            redisUrl: dataPlane.redisUrl,
          }
        : {}),
    },
  };
}
