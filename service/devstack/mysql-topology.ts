import mysql, { type ConnectionOptions } from 'mysql2/promise';
import { retryUntil } from './retry.js';
import type { Credentials, MysqlStack, ServerControl } from './types.js';

/** Provider-neutral primary + GTID replica provisioning, valid on MariaDB 10.11 and MySQL 8.4. */
export const DATABASE = 'parley';
export const APP: Credentials = { user: 'parley_app', password: 'parley-app-dev' };
export const MIGRATION: Credentials = { user: 'parley_migrator', password: 'parley-migrator-dev' };
export const REPLICATION: Credentials = { user: 'parley_repl', password: 'parley-repl-dev' };
export const ADMIN: Credentials = { user: 'root', password: 'parley-root-dev' };

export type Flavor = 'mariadb' | 'mysql';

export async function adminQuery(connection: ConnectionOptions, sql: string): Promise<unknown[]> {
  const client = await mysql.createConnection({
    ...connection,
    multipleStatements: true,
    connectTimeout: 2_000,
  });
  try {
    const [rows] = await client.query(sql);
    return rows as unknown[];
  } finally {
    await client.end();
  }
}

// Hosts are '%' because the service connects over TCP; the app user cannot write on the replica
// (read_only, and no SUPER/READ ONLY ADMIN): a write there would break GTID replication.
function provisioningSql(flavor: Flavor): string {
  return `
    CREATE DATABASE ${DATABASE} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
    CREATE USER '${APP.user}'@'%' IDENTIFIED BY '${APP.password}';
    GRANT SELECT, INSERT, UPDATE, DELETE ON ${DATABASE}.* TO '${APP.user}'@'%';
    CREATE USER '${MIGRATION.user}'@'%' IDENTIFIED BY '${MIGRATION.password}';
    GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, DROP, INDEX, REFERENCES, LOCK TABLES
      ON ${DATABASE}.* TO '${MIGRATION.user}'@'%';
    CREATE USER '${REPLICATION.user}'@'%' IDENTIFIED BY '${REPLICATION.password}';
    GRANT REPLICATION SLAVE ON *.* TO '${REPLICATION.user}'@'%';
    ${
      // The MySQL image already has root@'%'; mariadb-install-db made a passwordless root@127.0.0.1.
      flavor === 'mariadb'
        ? `CREATE OR REPLACE USER '${ADMIN.user}'@'127.0.0.1' IDENTIFIED BY '${ADMIN.password}';
           GRANT ALL PRIVILEGES ON *.* TO '${ADMIN.user}'@'127.0.0.1' WITH GRANT OPTION;`
        : ''
    }`;
}

// MySQL's replica also gets super_read_only (persisted, so it holds across a restart): read_only
// alone lets an administrator's write through, and that write would break GTID replication.
// MariaDB 10.11 has no super_read_only; its app user lacks READ ONLY ADMIN instead.
function startReplicationSql(flavor: Flavor, primary: { host: string; port: number }): string {
  return flavor === 'mariadb'
    ? `CHANGE MASTER TO MASTER_HOST='${primary.host}', MASTER_PORT=${primary.port},
         MASTER_USER='${REPLICATION.user}', MASTER_PASSWORD='${REPLICATION.password}',
         MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1;
       START SLAVE;`
    : `CHANGE REPLICATION SOURCE TO SOURCE_HOST='${primary.host}', SOURCE_PORT=${primary.port},
         SOURCE_USER='${REPLICATION.user}', SOURCE_PASSWORD='${REPLICATION.password}',
         SOURCE_AUTO_POSITION=1, SOURCE_CONNECT_RETRY=1, GET_SOURCE_PUBLIC_KEY=1;
       START REPLICA;
       SET PERSIST super_read_only = ON;`;
}

export async function assembleMysqlStack(options: {
  flavor: Flavor;
  primary: ServerControl;
  replica: ServerControl | undefined;
  /** How the stack itself reaches each server as an administrator. */
  adminConnection: (role: 'primary' | 'replica') => ConnectionOptions;
}): Promise<MysqlStack> {
  const { flavor, primary, replica, adminConnection } = options;
  await adminQuery(adminConnection('primary'), provisioningSql(flavor));
  if (replica) await adminQuery(adminConnection('replica'), startReplicationSql(flavor, primary));

  const waitForReplication = async (timeoutMs = 10_000): Promise<void> => {
    if (!replica) return;
    const positionSql = flavor === 'mariadb' ? '@@gtid_binlog_pos' : '@@global.gtid_executed';
    const [row] = (await adminQuery(adminConnection('primary'), `SELECT ${positionSql} AS pos`)) as {
      pos: string;
    }[];
    const position = (row?.pos ?? '').replace(/\s/g, '');
    const waitSql =
      flavor === 'mariadb'
        ? `SELECT MASTER_GTID_WAIT('${position}', 0.5) AS waited`
        : `SELECT WAIT_FOR_EXECUTED_GTID_SET('${position}', 0.5) AS waited`;
    await retryUntil('replica catch-up', timeoutMs, async () => {
      const rows = (await adminQuery(adminConnection('replica'), waitSql)) as { waited: number }[];
      if (Number(rows[0]?.waited) !== 0) throw new Error(`replica has not applied ${position}`);
    });
  };
  await waitForReplication();

  return {
    primary,
    replica,
    database: DATABASE,
    app: APP,
    migration: MIGRATION,
    admin: ADMIN,
    waitForReplication,
  };
}
