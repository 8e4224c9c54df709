# Sourced by the official image's entrypoint on a replica's first start. The entrypoint's own
# setup ran with the binary log off; clearing GTID state anyway guarantees no errant transaction,
# then replication starts from the primary's first GTID (SOURCE_AUTO_POSITION).
SECRETS=/var/run/secrets/parley
docker_process_sql <<SQL
RESET BINARY LOGS AND GTIDS;
CHANGE REPLICATION SOURCE TO
  SOURCE_HOST='${PARLEY_PRIMARY_HOST}',
  SOURCE_PORT=3306,
  SOURCE_USER='replication',
  SOURCE_PASSWORD='$(cat "$SECRETS/mysql-replication-password")',
  SOURCE_AUTO_POSITION=1,
  SOURCE_SSL=1,
  SOURCE_CONNECT_RETRY=5,
  SOURCE_RETRY_COUNT=1000000;
START REPLICA;
-- Read-only even for privileged users from now on (persisted in the data directory): a stray
-- write on a replica would break GTID replication.
SET PERSIST read_only = ON;
SET PERSIST super_read_only = ON;
SQL
