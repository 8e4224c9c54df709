import mysql from 'mysql2/promise';
import type { Devstack } from '../../devstack/index.js';

/**
 * Runs one statement as the stack's admin on its own connection, to look behind the service's back:
 * the rows it wrote, the server's counters, the replica's state.
 */
export async function adminQuery<T>(
  stack: Devstack,
  sql: string,
  params: unknown[] = [],
  target: 'primary' | 'replica' = 'primary',
): Promise<T[]> {
  const server = stack.mysql[target]!;
  const connection = await mysql.createConnection({
    host: server.host,
    port: server.port,
    ...stack.mysql.admin,
    database: 'parley',
  });
  try {
    return (await connection.query(sql, params))[0] as T[];
  } finally {
    await connection.end();
  }
}

/** INSERT statements the primary has run so far (all clients): how many a batch of writes took. */
export async function insertStatements(stack: Devstack): Promise<number> {
  const [row] = await adminQuery<{ Value: string }>(stack, "SHOW GLOBAL STATUS LIKE 'Com_insert'");
  return Number(row!.Value);
}
