import { beforeAll, describe, expect, it } from 'vitest';

import { readFileSync } from 'node:fs';

import { exampleStack, ofType, only, runParley, TEST_CA_BUNDLE, type Recorded } from './harness.js';

const DATA_KEY = 'arn:aws:kms:eu-west-1:123456789012:key/key-parley-data-key';

describe('dataPlane: aws-managed (prod example)', () => {
  let resources: Recorded[];

  beforeAll(async () => {
    ({ resources } = await runParley('prod', exampleStack('prod')));
  });

  it('runs MySQL 8.4 on RDS: encrypted with the data key, private, Multi-AZ, protected, backed up', () => {
    const writer = only(resources, 'aws:rds/instance:Instance', 'parley-mysql').inputs;
    expect(writer).toMatchObject({
      identifier: 'parley-prod-mysql',
      engine: 'mysql',
      engineVersion: '8.4',
      instanceClass: 'db.r7g.large',
      allocatedStorage: 100,
      storageEncrypted: true,
      kmsKeyId: DATA_KEY,
      publiclyAccessible: false,
      multiAz: true,
      deletionProtection: true,
      backupRetentionPeriod: 14,
      skipFinalSnapshot: false,
      finalSnapshotIdentifier: 'parley-prod-mysql-final',
      dbName: 'parley',
    });
  });

  it('encrypts the databases with a key of their own, not the key the pods may use for S3', () => {
    const key = only(resources, 'aws:kms/key:Key', 'parley-data-key').inputs;
    expect(key).toMatchObject({ enableKeyRotation: true, deletionWindowInDays: 30 });
    expect(only(resources, 'aws:kms/alias:Alias', 'parley-data-key').inputs.name).toBe(
      'alias/parley-prod-data',
    );
    const encrypted = [
      ...ofType(resources, 'aws:rds/instance:Instance'),
      ...ofType(resources, 'aws:elasticache/replicationGroup:ReplicationGroup'),
    ];
    expect(encrypted).toHaveLength(3);
    for (const resource of encrypted) expect(resource.inputs.kmsKeyId, resource.name).toBe(DATA_KEY);
    const rolePolicy = only(resources, 'aws:iam/rolePolicy:RolePolicy').inputs.policy as string;
    expect(rolePolicy).not.toContain('key-parley-data-key');
  });

  it('refuses plaintext MySQL connections on the writer and the replica', () => {
    const parameters = only(resources, 'aws:rds/parameterGroup:ParameterGroup').inputs;
    expect(parameters.family).toBe('mysql8.4');
    // DB instance parameter groups spell the boolean 1 (ON is the Aurora cluster spelling).
    expect(parameters.parameters).toEqual([{ name: 'require_secure_transport', value: '1' }]);
    for (const instance of ofType(resources, 'aws:rds/instance:Instance')) {
      expect(instance.inputs.parameterGroupName, instance.name).toBe('parley-mysql');
    }
  });

  it('hands the pods the RDS CA bundle in a ConfigMap, to verify the server with', () => {
    const configMap = only(resources, 'kubernetes:core/v1:ConfigMap', 'parley-mysql-ca').inputs;
    expect(configMap.metadata).toMatchObject({ name: 'parley-mysql-ca', namespace: 'parley' });
    const bundle = readFileSync(new URL(`../${TEST_CA_BUNDLE}`, import.meta.url), 'utf8');
    const certificates = bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)!;
    expect(certificates).toHaveLength(2);
    // The certificates only, without the file's comments.
    expect(configMap.data).toEqual({ 'ca.pem': `${certificates.join('\n')}\n` });
  });

  it('adds a read replica of the writer', () => {
    const reader = only(resources, 'aws:rds/instance:Instance', 'parley-mysql-replica').inputs;
    expect(reader).toMatchObject({
      identifier: 'parley-prod-mysql-replica',
      replicateSourceDb: 'parley-prod-mysql',
      storageEncrypted: true,
      kmsKeyId: DATA_KEY,
      publiclyAccessible: false,
    });
    expect(reader.engine).toBeUndefined();
    expect(reader.password).toBeUndefined();
  });

  it('runs Redis on ElastiCache with automatic failover across AZs, encrypted, with AUTH and noeviction', () => {
    const redis = only(resources, 'aws:elasticache/replicationGroup:ReplicationGroup').inputs;
    expect(redis).toMatchObject({
      replicationGroupId: 'parley-prod-redis',
      engine: 'redis',
      nodeType: 'cache.r7g.large',
      numCacheClusters: 3,
      automaticFailoverEnabled: true,
      multiAzEnabled: true,
      atRestEncryptionEnabled: true,
      kmsKeyId: DATA_KEY,
      transitEncryptionEnabled: true,
    });
    expect(redis.authToken).toMatch(/^[A-Za-z0-9]{32}$/);
    const parameters = only(resources, 'aws:elasticache/parameterGroup:ParameterGroup').inputs;
    expect(parameters.family).toBe('redis7');
    expect(parameters.parameters).toEqual([{ name: 'maxmemory-policy', value: 'noeviction' }]);
    expect(redis.parameterGroupName).toBe('parley-redis');
    expect(redis.subnetGroupName).toBe('parley-redis');
  });

  it('opens the database ports only to the configured client security group', () => {
    const rules = ofType(resources, 'aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule').map(
      (r) => r.inputs,
    );
    expect(rules).toHaveLength(2);
    expect(
      rules.map((r) => [r.referencedSecurityGroupId, r.fromPort, r.toPort, r.ipProtocol]).sort(),
    ).toEqual([
      ['sg-0a1b2c3d4e5f60799', 3306, 3306, 'tcp'],
      ['sg-0a1b2c3d4e5f60799', 6379, 6379, 'tcp'],
    ]);
    for (const rule of rules) {
      expect(rule.cidrIpv4).toBeUndefined();
      expect(rule.cidrIpv6).toBeUndefined();
    }
    const subnets = only(resources, 'aws:rds/subnetGroup:SubnetGroup').inputs.subnetIds;
    expect(subnets).toEqual(
      exampleStack('prod')['parley:network'] &&
        (exampleStack('prod')['parley:network'] as { subnetIds: string[] }).subnetIds,
    );
  });

  it('creates none of it for the in-cluster data plane', async () => {
    const { resources: dev } = await runParley('dev', exampleStack('dev'));
    expect(dev.filter((r) => /^aws:(rds|elasticache|ec2|vpc)\//.test(r.type))).toEqual([]);
    expect(dev.filter((r) => r.type === 'kubernetes:core/v1:ConfigMap')).toEqual([]);
  });
});
