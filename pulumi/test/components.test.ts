/**
 * Which component owns which resources: the parent of every registration, as the engine would
 * record it. Ownership decides what `pulumi destroy --target`, aliases and the console tree show,
 * and a resource created without `{ parent: this }` silently escapes its component.
 */
import { beforeAll, describe, expect, it } from 'vitest';

import { exampleStack, parentOf, runParley, type Recorded } from './harness.js';

const TOP_LEVEL = '(stack)';

/** Owner type → the types of resources it registers directly. */
function ownership(resources: Recorded[]): Record<string, string[]> {
  const owners: Record<string, Set<string>> = {};
  for (const resource of resources) {
    const owner = resource.parentUrn === '' ? TOP_LEVEL : parentOf(resources, resource)?.type;
    expect(owner, `parent of ${resource.type} ${resource.name} is not a recorded resource`).toBeDefined();
    (owners[owner!] ??= new Set()).add(resource.type);
  }
  return Object.fromEntries(Object.entries(owners).map(([owner, types]) => [owner, [...types].sort()]));
}

const STORAGE = {
  'parley:storage:ParleyStorage': [
    'aws:kms/alias:Alias',
    'aws:kms/key:Key',
    'parley:storage:EncryptedBucket',
  ],
  'parley:storage:EncryptedBucket': [
    'aws:s3/bucket:Bucket',
    'aws:s3/bucketCorsConfiguration:BucketCorsConfiguration',
    'aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration',
    'aws:s3/bucketOwnershipControls:BucketOwnershipControls',
    'aws:s3/bucketPolicy:BucketPolicy',
    'aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock',
    'aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration',
    'aws:s3/bucketVersioning:BucketVersioning',
  ],
};
const IDENTITY = {
  'parley:identity:ServiceIdentity': ['aws:iam/role:Role', 'aws:iam/rolePolicy:RolePolicy'],
};
const RELEASE = {
  'parley:release:ParleyNamespace': ['kubernetes:core/v1:Namespace'],
  'parley:release:ParleyRelease': ['kubernetes:helm.sh/v3:Release'],
};
const GENERATED = ['random:index/randomPassword:RandomPassword', 'tls:index/privateKey:PrivateKey'];
// The backup passphrase lives in Secrets Manager whatever the secrets backend.
const BACKUP_KEY = {
  'parley:backups:BackupKey': [
    'aws:secretsmanager/secret:Secret',
    'aws:secretsmanager/secretVersion:SecretVersion',
    'random:index/randomPassword:RandomPassword',
  ],
};

describe('component ownership', () => {
  let dev: Recorded[];
  let prod: Recorded[];

  beforeAll(async () => {
    ({ resources: dev } = await runParley('dev', exampleStack('dev')));
    ({ resources: prod } = await runParley('prod', exampleStack('prod')));
  });

  it('dev: every resource belongs to the component of its concern, only components at the top', () => {
    expect(ownership(dev)).toEqual({
      [TOP_LEVEL]: [
        'parley:backups:BackupKey',
        'parley:identity:ServiceIdentity',
        'parley:release:ParleyNamespace',
        'parley:release:ParleyRelease',
        'parley:secrets:ParleySecrets',
        'parley:storage:ParleyStorage',
      ],
      ...STORAGE,
      ...IDENTITY,
      'parley:secrets:ParleySecrets': ['kubernetes:core/v1:Secret', ...GENERATED].sort(),
      ...BACKUP_KEY,
      ...RELEASE,
    });
  });

  it('prod: the managed databases and their key belong to the data plane, Secrets Manager to secrets', () => {
    expect(ownership(prod)).toEqual({
      [TOP_LEVEL]: [
        'parley:backups:BackupKey',
        'parley:data:ManagedDataPlane',
        'parley:data:ManagedDatabaseAccess',
        'parley:identity:ServiceIdentity',
        'parley:release:ParleyNamespace',
        'parley:release:ParleyRelease',
        'parley:secrets:ParleySecrets',
        'parley:storage:ParleyStorage',
      ],
      ...STORAGE,
      ...IDENTITY,
      'parley:secrets:ParleySecrets': [
        'aws:secretsmanager/secret:Secret',
        'aws:secretsmanager/secretVersion:SecretVersion',
        'kubernetes:external-secrets.io/v1:ExternalSecret',
        ...GENERATED,
      ].sort(),
      ...BACKUP_KEY,
      'parley:data:ManagedDataPlane': [
        'aws:ec2/securityGroup:SecurityGroup',
        'aws:elasticache/parameterGroup:ParameterGroup',
        'aws:elasticache/replicationGroup:ReplicationGroup',
        'aws:elasticache/subnetGroup:SubnetGroup',
        'aws:kms/alias:Alias',
        'aws:kms/key:Key',
        'aws:rds/instance:Instance',
        'aws:rds/parameterGroup:ParameterGroup',
        'aws:rds/subnetGroup:SubnetGroup',
        'aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule',
      ],
      'parley:data:ManagedDatabaseAccess': ['kubernetes:batch/v1:Job', 'kubernetes:core/v1:ConfigMap'],
      ...RELEASE,
    });
  });

  it('puts each bucket in its own EncryptedBucket under the storage component', () => {
    for (const bucket of prod.filter((r) => r.type === 'aws:s3/bucket:Bucket')) {
      const wrapper = parentOf(prod, bucket)!;
      expect(wrapper.name).toBe(bucket.name);
      expect(parentOf(prod, wrapper)?.type).toBe('parley:storage:ParleyStorage');
    }
  });
});
