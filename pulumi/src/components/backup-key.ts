import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import * as random from '@pulumi/random';

/** The keys of the release Secret that the chart's backups.encryption values name. */
export const BACKUP_KEY_DATA_KEYS = {
  current: 'backup-encryption-key',
  previous: 'backup-previous-keys',
} as const;

export interface BackupKeyArgs {
  stack: string;
  environment: 'dev' | 'prod';
  /** `parley:backupEncryptionKey` and `parley:backupPreviousKeys`, when the operator set them. */
  overrides: { current?: pulumi.Output<string>; previous?: pulumi.Output<string> };
  tags: Record<string, string>;
}

/**
 * The passphrase every backup is encrypted with, kept in AWS Secrets Manager whatever the stack's
 * secrets backend: a backup is for the day the cluster (and the Kubernetes Secret in it) is gone,
 * and is worth nothing without this key. Generated once (letters and digits, 48 of them) unless the
 * operator sets one; during a rotation the older ones ride along as `backup-previous-keys`.
 */
export class BackupKey extends pulumi.ComponentResource {
  readonly secret: aws.secretsmanager.Secret;
  /** The Secret data the worker reads: the current key, and the previous ones when set. */
  readonly data: pulumi.Output<Record<string, string>>;
  readonly hasPreviousKeys: boolean;

  constructor(name: string, args: BackupKeyArgs, opts?: pulumi.ComponentResourceOptions) {
    super('parley:backups:BackupKey', name, {}, opts);
    const child = { parent: this };

    const current =
      args.overrides.current ??
      new random.RandomPassword(`${name}-passphrase`, { length: 48, special: false }, child).result;
    this.hasPreviousKeys = args.overrides.previous !== undefined;
    this.data = pulumi.secret(
      pulumi.all([current, args.overrides.previous]).apply(([key, previous]): Record<string, string> => {
        const data: Record<string, string> = { [BACKUP_KEY_DATA_KEYS.current]: key };
        if (previous !== undefined) data[BACKUP_KEY_DATA_KEYS.previous] = previous;
        return data;
      }),
    );

    this.secret = new aws.secretsmanager.Secret(
      name,
      {
        namePrefix: `parley/${args.stack}/backup-key-`,
        description: `Parley ${args.stack}: the passphrase of the encrypted database backups`,
        // Prod keeps the longest window AWS allows: a destroyed key is every backup lost.
        recoveryWindowInDays: args.environment === 'prod' ? 30 : 0,
        tags: args.tags,
      },
      child,
    );
    new aws.secretsmanager.SecretVersion(
      name,
      {
        secretId: this.secret.id,
        secretString: pulumi.secret(this.data.apply((data) => JSON.stringify(data))),
      },
      child,
    );
    this.registerOutputs({ secretName: this.secret.name });
  }
}
