import { createPrivateKey, generateKeyPairSync } from 'node:crypto';

import * as pulumi from '@pulumi/pulumi';
import { beforeAll, describe, expect, it } from 'vitest';

import { SECRET_KEYS } from '../src/config.js';
import {
  containsWireSecret,
  exampleStack,
  isWireSecret,
  ofType,
  only,
  runParley,
  type Loose,
  type Recorded,
} from './harness.js';

// In Secrets Manager's app secret; the Kubernetes Secret also holds backup-encryption-key.
const SECRET_DATA_KEYS = [
  'jwt-private-key',
  'mysql-migration-password',
  'mysql-password',
  'mysql-replication-password',
  'mysql-root-password',
  'redis-password',
];

const ed25519Pem = () =>
  generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

describe('credentials with the default backend (a Kubernetes Secret)', () => {
  let resources: Recorded[];
  let parley: Awaited<ReturnType<typeof runParley>>['parley'];
  let data: Record<string, string>;

  beforeAll(async () => {
    ({ resources, parley } = await runParley('dev', exampleStack('dev')));
    data = only(resources, 'kubernetes:core/v1:Secret').inputs.stringData;
  });

  it('writes one Secret with exactly the keys the chart reads, in the release namespace', () => {
    const secret = only(resources, 'kubernetes:core/v1:Secret');
    expect(secret.inputs.metadata).toMatchObject({ name: 'parley-credentials', namespace: 'parley' });
    expect(secret.inputs.type).toBe('Opaque');
    expect(Object.keys(data).sort()).toEqual(['backup-encryption-key', ...SECRET_DATA_KEYS]);
    expect(parley.secrets.secretName).toBe('parley-credentials');
  });

  it('sends the Secret data to the engine as a secret', () => {
    const secret = only(resources, 'kubernetes:core/v1:Secret');
    expect(isWireSecret(secret.raw.stringData)).toBe(true);
  });

  it('generates an Ed25519 JWT signing key in PKCS#8 PEM', () => {
    expect(only(resources, 'tls:index/privateKey:PrivateKey').inputs).toEqual({ algorithm: 'ED25519' });
    const pem = data['jwt-private-key']!;
    expect(pem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(createPrivateKey(pem).asymmetricKeyType).toBe('ed25519');
  });

  it('generates long, distinct passwords from letters and digits only', () => {
    const generated = ofType(resources, 'random:index/randomPassword:RandomPassword');
    expect(generated).toHaveLength(6); // five credentials and the backup passphrase
    for (const password of generated) {
      expect(password.inputs.special).toBe(false);
      expect(password.inputs.length).toBeGreaterThanOrEqual(32);
    }
    const passwords = [...SECRET_DATA_KEYS, 'backup-encryption-key']
      .filter((key) => key !== 'jwt-private-key')
      .map((key) => data[key]!);
    for (const password of passwords) expect(password).toMatch(/^[A-Za-z0-9]{32,}$/);
    expect(new Set(passwords).size).toBe(passwords.length);
  });

  it('keeps every credential a secret output', async () => {
    for (const key of SECRET_KEYS) {
      expect(await pulumi.isSecret(parley.secrets.values[key]), key).toBe(true);
    }
  });

  it('puts no credential into the release values or the stack outputs', async () => {
    const release = only(resources, 'kubernetes:helm.sh/v3:Release');
    expect(containsWireSecret(release.raw)).toBe(false);
    const values = JSON.stringify(release.inputs.values);
    const outputs = JSON.stringify(
      await new Promise((done) => pulumi.output(parley.outputs as Loose).apply(done)),
    );
    for (const [key, value] of Object.entries(data)) {
      // PEM lines are long enough to be unique; a whole PEM would never appear escaped anyway.
      const needle = key === 'jwt-private-key' ? value.split('\n')[1]! : value;
      expect(values.includes(needle), `${key} in release values`).toBe(false);
      expect(outputs.includes(needle), `${key} in stack outputs`).toBe(false);
    }
    for (const [name, output] of Object.entries(parley.outputs)) {
      if (pulumi.Output.isInstance(output)) expect(await pulumi.isSecret(output), name).toBe(false);
    }
  });
});

describe('credentials set by the operator as config secrets', () => {
  const jwt = ed25519Pem();
  let resources: Recorded[];

  beforeAll(async () => {
    ({ resources } = await runParley(
      'dev',
      {
        ...exampleStack('dev'),
        'parley:mysqlPassword': 'Operator-Chosen-Passw0rd',
        'parley:jwtPrivateKey': jwt,
      },
      ['parley:mysqlPassword', 'parley:jwtPrivateKey'],
    ));
  });

  it('are used instead of generated ones, and stay secret', () => {
    const secret = only(resources, 'kubernetes:core/v1:Secret');
    expect(isWireSecret(secret.raw.stringData)).toBe(true);
    expect(secret.inputs.stringData['mysql-password']).toBe('Operator-Chosen-Passw0rd');
    expect(secret.inputs.stringData['jwt-private-key']).toBe(jwt);
    expect(ofType(resources, 'tls:index/privateKey:PrivateKey')).toEqual([]);
    expect(ofType(resources, 'random:index/randomPassword:RandomPassword').map((r) => r.name)).not.toContain(
      'parley-mysql-password',
    );
  });
});

describe('the aws-secrets-manager backend in a dev stack', () => {
  it('deletes the secret without a recovery window, so dev stacks can be torn down and rebuilt', async () => {
    const { resources } = await runParley('dev', {
      ...exampleStack('dev'),
      'parley:secretsBackend': 'aws-secrets-manager',
      'parley:externalSecrets': { clusterSecretStore: 'aws-secrets-manager' },
    });
    const secret = only(resources, 'aws:secretsmanager/secret:Secret', 'parley').inputs;
    expect(secret.namePrefix).toBe('parley/dev/app-');
    expect(secret.recoveryWindowInDays).toBe(0);
  });
});

describe('credentials with the aws-secrets-manager backend (prod)', () => {
  let resources: Recorded[];

  beforeAll(async () => {
    ({ resources } = await runParley('prod', exampleStack('prod')));
  });

  it('stores them in Secrets Manager as a secret, and writes no Kubernetes Secret itself', () => {
    expect(ofType(resources, 'kubernetes:core/v1:Secret')).toEqual([]);
    const secret = only(resources, 'aws:secretsmanager/secret:Secret', 'parley').inputs;
    // A unique suffix: destroy + up within the recovery window must not collide with the old name.
    expect(secret.name).toBeUndefined();
    expect(secret.namePrefix).toBe('parley/prod/app-');
    expect(secret.recoveryWindowInDays).toBe(7);
    const version = only(resources, 'aws:secretsmanager/secretVersion:SecretVersion', 'parley');
    expect(isWireSecret(version.raw.secretString)).toBe(true);
    expect(Object.keys(JSON.parse(version.inputs.secretString as string)).sort()).toEqual(SECRET_DATA_KEYS);
  });

  it('syncs them into the Secret the chart reads with an ExternalSecret', () => {
    const external = only(resources, 'kubernetes:external-secrets.io/v1:ExternalSecret');
    expect(external.inputs.metadata).toMatchObject({ name: 'parley-credentials', namespace: 'parley' });
    expect(external.inputs.spec).toEqual({
      refreshInterval: '1h',
      secretStoreRef: { kind: 'ClusterSecretStore', name: 'aws-secrets-manager' },
      target: { name: 'parley-credentials', creationPolicy: 'Owner' },
      dataFrom: [
        { extract: { key: 'parley/prod/app-20250101000000000000000001' } },
        { extract: { key: 'parley/prod/backup-key-20250101000000000000000001' } },
      ],
    });
  });

  it('hands the managed databases their passwords only as secrets', () => {
    expect(isWireSecret(only(resources, 'aws:rds/instance:Instance', 'parley-mysql').raw.password)).toBe(
      true,
    );
    const redis = only(resources, 'aws:elasticache/replicationGroup:ReplicationGroup');
    expect(isWireSecret(redis.raw.authToken)).toBe(true);
    const release = only(resources, 'kubernetes:helm.sh/v3:Release');
    expect(containsWireSecret(release.raw)).toBe(false);
  });
});
