import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';

import { stackResourceNames } from '../names.js';

export const MYSQL_PORT = 3306;
export const REDIS_PORT = 6379;
export const DATABASE_NAME = 'parley';
/** RDS master user; its password is the Secret's `mysql-root-password`. */
export const MYSQL_ADMIN_USER = 'parley_admin';

export interface ManagedDataPlaneArgs {
  stack: string;
  environment: 'dev' | 'prod';
  network: { vpcId: string; subnetIds: string[]; clientSecurityGroupIds: string[] };
  database: {
    instanceClass: string;
    allocatedStorageGb: number;
    backupRetentionDays: number;
    multiAz?: boolean;
    deletionProtection?: boolean;
  };
  cache: { nodeType: string; replicas: number };
  mysqlRootPassword: pulumi.Input<string>;
  redisPassword: pulumi.Input<string>;
  tags: Record<string, string>;
}

/**
 * `dataPlane: aws-managed`: RDS for MySQL 8.4 (writer, Multi-AZ in prod, plus a read replica) and
 * ElastiCache for Redis with automatic failover, both encrypted with their own KMS key and reachable
 * only from the security groups of the nodes or pods that run Parley.
 */
export class ManagedDataPlane extends pulumi.ComponentResource {
  readonly key: aws.kms.Key;
  readonly mysqlParameters: aws.rds.ParameterGroup;
  readonly writer: aws.rds.Instance;
  readonly reader: aws.rds.Instance;
  readonly redis: aws.elasticache.ReplicationGroup;
  readonly writerHost: pulumi.Output<string>;
  readonly readerHost: pulumi.Output<string>;
  readonly redisUrl: pulumi.Output<string>;

  constructor(name: string, args: ManagedDataPlaneArgs, opts?: pulumi.ComponentResourceOptions) {
    super('parley:data:ManagedDataPlane', name, {}, opts);
    const child = { parent: this };
    const isProd = args.environment === 'prod';
    const names = stackResourceNames(args.stack);

    // Its own key, not the buckets': the pods' role may use the storage key (through S3), and a
    // key grant for one must never reach the database volumes, snapshots or cache.
    this.key = new aws.kms.Key(
      `${name}-data-key`,
      {
        description: `Parley ${args.stack}: encryption at rest of RDS MySQL and ElastiCache Redis`,
        enableKeyRotation: true,
        deletionWindowInDays: isProd ? 30 : 7,
        tags: args.tags,
      },
      child,
    );
    new aws.kms.Alias(
      `${name}-data-key`,
      { name: `alias/parley-${args.stack}-data`, targetKeyId: this.key.keyId },
      child,
    );

    const allowFromClients = (sgName: string, port: number, what: string): aws.ec2.SecurityGroup => {
      const group = new aws.ec2.SecurityGroup(
        sgName,
        { vpcId: args.network.vpcId, description: `Parley ${args.stack}: ${what} clients`, tags: args.tags },
        child,
      );
      args.network.clientSecurityGroupIds.forEach((clientGroup, index) => {
        new aws.vpc.SecurityGroupIngressRule(
          `${sgName}-${index}`,
          {
            securityGroupId: group.id,
            referencedSecurityGroupId: clientGroup,
            ipProtocol: 'tcp',
            fromPort: port,
            toPort: port,
            description: `${what} from ${clientGroup}`,
          },
          child,
        );
      });
      return group;
    };

    // MySQL: writer and one read replica, TLS only. The service verifies the server against the
    // RDS CA bundle (MYSQL_TLS, MYSQL_TLS_CA_FILE); the server refuses any plaintext login.
    const mysqlGroup = allowFromClients(`${name}-mysql`, MYSQL_PORT, 'MySQL');
    this.mysqlParameters = new aws.rds.ParameterGroup(
      `${name}-mysql`,
      {
        family: 'mysql8.4',
        description: `Parley ${args.stack}: MySQL 8.4, TLS only`,
        // A boolean of DB instance parameter groups: RDS takes 1/0 here (ON/OFF is the Aurora
        // cluster spelling). Dynamic: applied without a reboot.
        parameters: [{ name: 'require_secure_transport', value: '1' }],
        tags: args.tags,
      },
      child,
    );
    const subnets = new aws.rds.SubnetGroup(
      `${name}-mysql`,
      { subnetIds: args.network.subnetIds, tags: args.tags },
      child,
    );
    const common = {
      instanceClass: args.database.instanceClass,
      storageEncrypted: true,
      kmsKeyId: this.key.arn,
      vpcSecurityGroupIds: [mysqlGroup.id],
      parameterGroupName: this.mysqlParameters.name,
      publiclyAccessible: false,
      autoMinorVersionUpgrade: true,
      copyTagsToSnapshot: true,
      tags: args.tags,
    };
    const deletionProtection = args.database.deletionProtection ?? isProd;
    this.writer = new aws.rds.Instance(
      `${name}-mysql`,
      {
        ...common,
        identifier: names.mysqlIdentifier,
        engine: 'mysql',
        engineVersion: '8.4',
        allocatedStorage: args.database.allocatedStorageGb,
        maxAllocatedStorage: args.database.allocatedStorageGb * 4,
        storageType: 'gp3',
        dbName: DATABASE_NAME,
        username: MYSQL_ADMIN_USER,
        password: args.mysqlRootPassword,
        dbSubnetGroupName: subnets.name,
        multiAz: args.database.multiAz ?? isProd,
        // A read replica needs automated backups on its source.
        backupRetentionPeriod: args.database.backupRetentionDays,
        deletionProtection,
        skipFinalSnapshot: !isProd,
        ...(isProd ? { finalSnapshotIdentifier: names.mysqlFinalSnapshotIdentifier } : {}),
      },
      child,
    );
    this.reader = new aws.rds.Instance(
      `${name}-mysql-replica`,
      {
        ...common,
        identifier: names.mysqlReplicaIdentifier,
        replicateSourceDb: this.writer.identifier,
        deletionProtection,
        skipFinalSnapshot: true,
      },
      child,
    );

    // Redis: primary + replicas across AZs; ElastiCache promotes a replica when the primary fails.
    const redisGroup = allowFromClients(`${name}-redis`, REDIS_PORT, 'Redis');
    const cacheSubnets = new aws.elasticache.SubnetGroup(
      `${name}-redis`,
      { subnetIds: args.network.subnetIds, tags: args.tags },
      child,
    );
    const cacheParameters = new aws.elasticache.ParameterGroup(
      `${name}-redis`,
      {
        family: 'redis7',
        description: `Parley ${args.stack}: Redis 7 for BullMQ`,
        // BullMQ loses jobs silently if Redis evicts keys.
        parameters: [{ name: 'maxmemory-policy', value: 'noeviction' }],
        tags: args.tags,
      },
      child,
    );
    this.redis = new aws.elasticache.ReplicationGroup(
      `${name}-redis`,
      {
        replicationGroupId: names.redisReplicationGroupId,
        description: `Parley ${args.stack}: cache, rate limits, pub/sub and queues`,
        engine: 'redis',
        engineVersion: '7.1',
        nodeType: args.cache.nodeType,
        numCacheClusters: 1 + args.cache.replicas,
        automaticFailoverEnabled: true,
        multiAzEnabled: true,
        port: REDIS_PORT,
        parameterGroupName: cacheParameters.name,
        subnetGroupName: cacheSubnets.name,
        securityGroupIds: [redisGroup.id],
        atRestEncryptionEnabled: true,
        kmsKeyId: this.key.arn,
        transitEncryptionEnabled: true,
        authToken: args.redisPassword,
        snapshotRetentionLimit: isProd ? 7 : 1,
        autoMinorVersionUpgrade: true,
        tags: args.tags,
      },
      child,
    );

    this.writerHost = this.writer.address;
    this.readerHost = this.reader.address;
    // rediss: ElastiCache speaks TLS only (transit encryption); the password comes from the Secret.
    this.redisUrl = pulumi.interpolate`rediss://${this.redis.primaryEndpointAddress}:${REDIS_PORT}`;
    this.registerOutputs({
      writerHost: this.writerHost,
      readerHost: this.readerHost,
      redisUrl: this.redisUrl,
    });
  }
}
