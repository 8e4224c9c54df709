/**
 * AWS names built from the stack name, in one place: the components use them, and
 * `loadStackConfig` checks the stack name against the limits of each name it ends up in, so a stack
 * name AWS would refuse fails before anything is planned.
 */
export function stackResourceNames(stack: string) {
  return {
    attachmentsBucketPrefix: `parley-${stack}-attachments-`,
    backupsBucketPrefix: `parley-${stack}-backups-`,
    mysqlIdentifier: `parley-${stack}-mysql`,
    mysqlReplicaIdentifier: `parley-${stack}-mysql-replica`,
    mysqlFinalSnapshotIdentifier: `parley-${stack}-mysql-final`,
    redisReplicationGroupId: `parley-${stack}-redis`,
  };
}

export type StackResourceName = keyof ReturnType<typeof stackResourceNames>;

/** The longest each name may be, and what AWS calls it. */
export const NAME_LIMITS: Record<StackResourceName, { max: number; what: string }> = {
  // S3 appends a 26-character unique suffix to a bucket prefix; bucket names end at 63.
  attachmentsBucketPrefix: { max: 37, what: 'the attachments bucket name prefix' },
  backupsBucketPrefix: { max: 37, what: 'the backups bucket name prefix' },
  mysqlIdentifier: { max: 63, what: 'the RDS instance identifier' },
  mysqlReplicaIdentifier: { max: 63, what: 'the RDS replica identifier' },
  mysqlFinalSnapshotIdentifier: { max: 255, what: 'the RDS final snapshot identifier' },
  redisReplicationGroupId: { max: 40, what: 'the ElastiCache replication group id' },
};
