/**
 * A message post's floor: node:http, a JSON body, what MySQL must do for one message (a mysql2 pool
 * of 20, as the API's) and a JSON answer; no auth, limits, idempotency or events. What MySQL must do
 * is the repository's transaction for one row, sent in one round trip: the room's counter raised
 * (which locks the room and gives the seq), the row inserted with it, the commit. Prints its port. Needs one user and one room
 * in the database (the bench creates them first).
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { listenAndAnnounce } from './announce.js';
import mysql, { type ResultSetHeader, type RowDataPacket } from 'mysql2/promise';
import { loadConfig } from '../../src/config.js';

const { mysql: config } = loadConfig(process.env, 'api');
const pool = mysql.createPool({
  host: config.primary.host,
  port: config.primary.port,
  user: config.user,
  password: config.password,
  database: config.database,
  connectionLimit: 20,
  multipleStatements: true,
});
const [[author]] = await pool.query<RowDataPacket[]>('SELECT id FROM users LIMIT 1');
const [[room]] = await pool.query<RowDataPacket[]>('SELECT id FROM rooms LIMIT 1');

const server = createServer((request, response) => {
  let text = '';
  request.setEncoding('utf8');
  request.on('data', (chunk: string) => (text += chunk));
  request.on('end', async () => {
    const { body } = JSON.parse(text) as { body: string };
    const createdAt = new Date();
    const connection = await pool.getConnection();
    let result: ResultSetHeader;
    try {
      // One round trip, as the repository sends it: the lock is held only while the server runs it.
      const [results] = await connection.query<ResultSetHeader[]>(
        [
          'START TRANSACTION',
          'UPDATE rooms SET message_seq = LAST_INSERT_ID(message_seq + 1) WHERE id = ?',
          'INSERT INTO messages (room_id, author_id, body, idempotency_key, created_at, seq) VALUES (?, ?, ?, ?, ?, LAST_INSERT_ID())',
          'COMMIT',
        ].join(';'),
        [room!.id, room!.id, author!.id, body, randomUUID(), createdAt],
      );
      result = results[2]!;
      connection.release();
    } catch (error) {
      await connection.query('ROLLBACK').catch(() => undefined);
      connection.release();
      response.writeHead(500).end(String(error));
      return;
    }
    const answer = JSON.stringify({
      id: String(result.insertId),
      roomId: room!.id,
      authorId: author!.id,
      body,
      createdAt: createdAt.toISOString(),
    });
    response.writeHead(201, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(answer),
    });
    response.end(answer);
  });
});
listenAndAnnounce(server);
