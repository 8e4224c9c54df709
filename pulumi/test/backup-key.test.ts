import * as pulumi from '@pulumi/pulumi';
import { describe, expect, it } from 'vitest';

import {
  configProblem,
  containsWireSecret,
  exampleStack,
  isWireSecret,
  ofType,
  only,
  runParley,
  type Loose,
} from './harness.js';

const SECRET = 'aws:secretsmanager/secret:Secret';
const VERSION = 'aws:secretsmanager/secretVersion:SecretVersion';

describe('the backup passphrase', () => {
  it('is generated once and kept in Secrets Manager even with the Kubernetes secrets backend', async () => {
    const { resources, parley } = await runParley('dev', exampleStack('dev'));
    const secret = only(resources, SECRET, 'parley-backup-key').inputs;
    expect(secret.namePrefix).toBe('parley/dev/backup-key-');
    expect(secret.recoveryWindowInDays).toBe(0);
    const version = only(resources, VERSION, 'parley-backup-key');
    expect(isWireSecret(version.raw.secretString)).toBe(true);
    const stored = JSON.parse(version.inputs.secretString as string) as Record<string, string>;
    expect(Object.keys(stored)).toEqual(['backup-encryption-key']);
    expect(stored['backup-encryption-key']).toMatch(/^[A-Za-z0-9]{48}$/);
    expect(
      only(resources, 'random:index/randomPassword:RandomPassword', 'parley-backup-key-passphrase').inputs,
    ).toMatchObject({ length: 48, special: false });

    // The worker reads it from the release Secret, under the key the chart reads by default.
    const k8sSecret = only(resources, 'kubernetes:core/v1:Secret').inputs.stringData as Record<
      string,
      string
    >;
    expect(k8sSecret['backup-encryption-key']).toBe(stored['backup-encryption-key']);
    const release = only(resources, 'kubernetes:helm.sh/v3:Release');
    expect(release.inputs.values.secrets).toEqual({ existingSecret: 'parley-credentials' });
    expect(release.inputs.values.backups).toBeUndefined();
    expect(JSON.stringify(release.inputs.values)).not.toContain(stored['backup-encryption-key']);
    expect(containsWireSecret(release.raw)).toBe(false);

    // Where an operator finds it: a name, not the value.
    const name = await new Promise((done) =>
      pulumi.output(parley.outputs.backupKeySecret as Loose).apply(done),
    );
    expect(name).toBe('parley/dev/backup-key-20250101000000000000000001');
    expect(await pulumi.isSecret(parley.outputs.backupKeySecret)).toBe(false);
  });

  it('prod: survives a mistaken destroy for the longest window AWS allows, and stays out of the app secret', async () => {
    const { resources } = await runParley('prod', exampleStack('prod'));
    expect(only(resources, SECRET, 'parley-backup-key').inputs.recoveryWindowInDays).toBe(30);
    const app = JSON.parse(only(resources, VERSION, 'parley').inputs.secretString as string) as object;
    expect(Object.keys(app)).not.toContain('backup-encryption-key');
    expect(ofType(resources, 'kubernetes:core/v1:Secret')).toEqual([]);
  });

  it('a rotation: the operator sets the new passphrase and the previous ones, and the worker reads both', async () => {
    const current = 'the new backup passphrase 2027';
    const previous = 'the old generated passphrase of 48 letters';
    const { resources } = await runParley(
      'dev',
      {
        ...exampleStack('dev'),
        'parley:backupEncryptionKey': current,
        'parley:backupPreviousKeys': previous,
      },
      ['parley:backupEncryptionKey', 'parley:backupPreviousKeys'],
    );
    expect(ofType(resources, 'random:index/randomPassword:RandomPassword').map((r) => r.name)).not.toContain(
      'parley-backup-key-passphrase',
    );
    const stored = JSON.parse(only(resources, VERSION, 'parley-backup-key').inputs.secretString as string);
    expect(stored).toEqual({ 'backup-encryption-key': current, 'backup-previous-keys': previous });
    const k8sSecret = only(resources, 'kubernetes:core/v1:Secret').inputs.stringData as Record<
      string,
      string
    >;
    expect(k8sSecret['backup-previous-keys']).toBe(previous);
    const values = only(resources, 'kubernetes:helm.sh/v3:Release').inputs.values;
    expect(values.backups).toEqual({ encryption: { previousKeysKey: 'backup-previous-keys' } });
    expect(JSON.stringify(values)).not.toMatch(/new backup passphrase|old generated passphrase/);
  });

  it('refuses a passphrase shorter than the service accepts, without repeating it', async () => {
    const message = await configProblem({
      ...exampleStack('dev'),
      'parley:backupEncryptionKey': 'too-short',
      'parley:backupPreviousKeys': 'a long enough older passphrase,short',
    });
    expect(message).toContain(
      'parley:backupEncryptionKey: each passphrase must be at least 16 characters long',
    );
    expect(message).toContain(
      'parley:backupPreviousKeys: each passphrase must be at least 16 characters long',
    );
    expect(message).not.toMatch(/too-short|,short/);
  });
});
