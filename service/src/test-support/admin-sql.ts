import mysql, { type Connection, type ResultSetHeader } from 'mysql2/promise';
import type { Devstack } from '../../devstack/index.js';

/**
 * A connection as the stack's admin, to act behind the service's back (hold a transaction open,
 * write a row as another writer would); the caller ends it.
 */
export function adminConnection(stack: Devstack, target: 'primary' | 'replica' = 'primary') {
  const server = stack.mysql[target]!;
  return mysql.createConnection({
    host: server.host,
    port: server.port,
    ...stack.mysql.admin,
    database: stack.mysql.database,
  });
}

/**
 * Inserts a message as the repository does (the room's counter raised, which locks the room, then
 * the row with that seq) on `connection`, and leaves the transaction open: the caller commits it,
 * or holds it to see what waits. Nothing is published.
 */
export async function beginMessageInsert(
  connection: Connection,
  message: { roomId: string; authorId: string; body: string; createdAt: Date },
): Promise<{ id: number; seq: number }> {
  await connection.query('START TRANSACTION');
  const [counter] = (await connection.query(
    'UPDATE rooms SET message_seq = LAST_INSERT_ID(message_seq + 1) WHERE id = ?',
    [message.roomId],
  )) as [ResultSetHeader, unknown];
  const [row] = (await connection.query(
    'INSERT INTO messages (room_id, author_id, body, seq, created_at) VALUES (?, ?, ?, ?, ?)',
    [message.roomId, message.authorId, message.body, counter.insertId, message.createdAt],
  )) as [ResultSetHeader, unknown];
  return { id: row.insertId, seq: counter.insertId };
}

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
  const connection = await adminConnection(stack, target);
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
