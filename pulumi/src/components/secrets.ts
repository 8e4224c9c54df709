import * as aws from '@pulumi/aws';
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import * as random from '@pulumi/random';
import * as tls from '@pulumi/tls';

import type { SecretKey } from '../config.js';
import type { BackupKey } from './backup-key.js';

/** The Secret's keys, as the chart's `secrets.existingSecret` contract names them. */
export const SECRET_DATA_KEYS: Record<SecretKey, string> = {
  mysqlPassword: 'mysql-password',
  mysqlMigrationPassword: 'mysql-migration-password',
  mysqlRootPassword: 'mysql-root-password',
  mysqlReplicationPassword: 'mysql-replication-password',
  redisPassword: 'redis-password',
  jwtPrivateKey: 'jwt-private-key',
};

export interface ParleySecretsArgs {
  stack: string;
  environment: 'dev' | 'prod';
  namespace: pulumi.Input<string>;
  secretName: string;
  /** Values the operator set as config secrets (validated by loadStackConfig); the rest are generated. */
  overrides: Partial<Record<SecretKey, pulumi.Output<string>>>;
  /** The backup passphrase (kept in Secrets Manager on its own): its keys join the Secret. */
  backupKey: BackupKey;
  backend: 'kubernetes' | 'aws-secrets-manager';
  clusterSecretStore?: string;
  tags: Record<string, string>;
}

/**
 * Every credential Parley needs, in one Kubernetes Secret that the chart mounts through
 * `secrets.existingSecret`: written directly, or (opt-in) kept in AWS Secrets Manager and synced
 * into the namespace by External Secrets. Values are secret outputs from start to end.
 */
export class ParleySecrets extends pulumi.ComponentResource {
  readonly secretName: string;
  readonly values: Record<SecretKey, pulumi.Output<string>>;
  readonly secretsManagerSecret?: aws.secretsmanager.Secret;

  constructor(name: string, args: ParleySecretsArgs, opts?: pulumi.ComponentResourceOptions) {
    super('parley:secrets:ParleySecrets', name, {}, opts);
    const child = { parent: this };

    // Letters and digits only: these end up in connection strings and MySQL GRANTs unescaped.
    const password = (key: SecretKey, length = 32): pulumi.Output<string> =>
      args.overrides[key] ??
      new random.RandomPassword(`${name}-${SECRET_DATA_KEYS[key]}`, { length, special: false }, child).result;

    const jwtPrivateKey =
      args.overrides.jwtPrivateKey ??
      new tls.PrivateKey(`${name}-jwt`, { algorithm: 'ED25519' }, child).privateKeyPemPkcs8;

    const values: Record<SecretKey, pulumi.Output<string>> = {
      mysqlPassword: password('mysqlPassword'),
      mysqlMigrationPassword: password('mysqlMigrationPassword'),
      mysqlRootPassword: password('mysqlRootPassword'),
      mysqlReplicationPassword: password('mysqlReplicationPassword'),
      redisPassword: password('redisPassword'),
      jwtPrivateKey,
    };
    // Explicitly secret, whatever their source marked them: they flow into other resources' inputs.
    this.values = Object.fromEntries(
      Object.entries(values).map(([key, value]) => [key, pulumi.secret(value)]),
    ) as Record<SecretKey, pulumi.Output<string>>;
    this.secretName = args.secretName;

    const keys = Object.keys(SECRET_DATA_KEYS) as SecretKey[];
    const credentials = pulumi
      .all(keys.map((key) => this.values[key]))
      .apply((resolved) =>
        Object.fromEntries(keys.map((key, index) => [SECRET_DATA_KEYS[key], resolved[index]!])),
      );
    const stringData = pulumi.secret(
      pulumi.all([credentials, args.backupKey.data]).apply(([app, backup]) => ({ ...app, ...backup })),
    );
    const metadata = {
      name: args.secretName,
      namespace: args.namespace,
      labels: { 'app.kubernetes.io/part-of': 'parley', 'app.kubernetes.io/managed-by': 'pulumi' },
    };

    if (args.backend === 'kubernetes') {
      new k8s.core.v1.Secret(name, { metadata, type: 'Opaque', stringData }, child);
    } else {
      this.secretsManagerSecret = new aws.secretsmanager.Secret(
        name,
        {
          // A deleted secret keeps its name for the recovery window: a fixed name would make
          // `pulumi destroy` then `pulumi up` fail for days. The prefix gets a unique suffix.
          namePrefix: `parley/${args.stack}/app-`,
          description: `Parley ${args.stack}: credentials synced into Kubernetes by External Secrets`,
          // Dev stacks come and go: delete at once. Prod keeps a week to undo a mistaken destroy.
          recoveryWindowInDays: args.environment === 'prod' ? 7 : 0,
          tags: args.tags,
        },
        child,
      );
      new aws.secretsmanager.SecretVersion(
        name,
        {
          secretId: this.secretsManagerSecret.id,
          // The backup key is not copied here: it has a Secrets Manager secret of its own.
          secretString: pulumi.secret(credentials.apply((data) => JSON.stringify(data))),
        },
        child,
      );
      new k8s.apiextensions.CustomResource(
        name,
        {
          apiVersion: 'external-secrets.io/v1',
          kind: 'ExternalSecret',
          metadata,
          spec: {
            refreshInterval: '1h',
            secretStoreRef: { kind: 'ClusterSecretStore', name: args.clusterSecretStore },
            target: { name: args.secretName, creationPolicy: 'Owner' },
            dataFrom: [
              { extract: { key: this.secretsManagerSecret.name } },
              { extract: { key: args.backupKey.secret.name } },
            ],
          },
        },
        child,
      );
    }

    this.registerOutputs({ secretName: this.secretName });
  }
}
