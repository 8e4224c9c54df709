# Sourced by the official image's entrypoint on the primary's first start (empty data directory).
# Replicas get the database and the users by cloning the primary (replica-seed.sh). Least
# privilege: the app user has DML only, the migration user owns the schema, the replication user
# can only replicate and be cloned from (BACKUP_ADMIN, which CLONE needs on the donor).
SECRETS=/var/run/secrets/parley
docker_process_sql <<SQL
CREATE DATABASE IF NOT EXISTS \`${PARLEY_DATABASE}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_ai_ci;
CREATE USER IF NOT EXISTS '${PARLEY_USER}'@'%' IDENTIFIED BY '$(cat "$SECRETS/mysql-password")';
GRANT SELECT, INSERT, UPDATE, DELETE ON \`${PARLEY_DATABASE}\`.* TO '${PARLEY_USER}'@'%';
CREATE USER IF NOT EXISTS '${PARLEY_MIGRATION_USER}'@'%' IDENTIFIED BY '$(cat "$SECRETS/mysql-migration-password")';
GRANT ALL PRIVILEGES ON \`${PARLEY_DATABASE}\`.* TO '${PARLEY_MIGRATION_USER}'@'%';
CREATE USER IF NOT EXISTS 'replication'@'%' IDENTIFIED BY '$(cat "$SECRETS/mysql-replication-password")' REQUIRE SSL;
GRANT REPLICATION SLAVE, BACKUP_ADMIN ON *.* TO 'replication'@'%';
SQL
