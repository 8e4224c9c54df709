import { eq, sql } from 'drizzle-orm';
import { Gauge, type Registry } from 'prom-client';
import { replicationHeartbeat } from '../../db/schema.js';
import type { Logger } from '../../platform/logger.js';
import type { Database } from '../../platform/mysql.js';

/*
 * Replica lag, pt-heartbeat style: the worker stamps one row on the primary with the primary's
 * clock, and lag is how old the replica's copy of that row is. It needs only DML, so it works on
 * RDS/Aurora, where the app user may not run SHOW REPLICA STATUS, and needs no mysqld_exporter.
 *
 * The stamp comes from a 1 s timer, not from the 15 s heartbeat job: the job's resolution would make
 * the gauge a 0–15 s sawtooth, and the job runs through Redis, so a Redis outage would stop the stamps
 * and read as replica lag. Every worker pod writes (same row, so any live writer keeps it fresh);
 * that is one tiny upsert per pod per second on the primary and in its binlog.
 */
export const REPLICATION_HEARTBEAT_EVERY_MS = 1_000;
const HEARTBEAT_ROW = 1;

/** Stamps the heartbeat row with the primary's UTC clock. */
export async function writeReplicationHeartbeat(db: Database): Promise<void> {
  await db.write((database) =>
    database
      .insert(replicationHeartbeat)
      .values({ id: HEARTBEAT_ROW, beatAt: sql`UTC_TIMESTAMP(3)` })
      // Valid on MySQL 8.4 and MariaDB 10.11 alike: no `AS new` (MariaDB rejects it) and no VALUES()
      // (deprecated on MySQL). UTC_TIMESTAMP is fixed at statement start, so both mentions agree.
      .onDuplicateKeyUpdate({ set: { beatAt: sql`UTC_TIMESTAMP(3)` } }),
  );
}

/**
 * Seconds the replica is behind, with one clock: the stamp the replica holds and "now" both come from
 * the primary's UTC_TIMESTAMP, so neither clock skew between servers nor the pod's clock enters, and
 * the stamp travels as text so no time zone conversion does either. Reads the replica only: falling
 * back to the primary would report 0 for a replica that is down.
 */
export async function measureReplicaLagSeconds(db: Database): Promise<number> {
  const [row] = await db.readReplica((database) =>
    database
      .select({ beatAt: sql<string>`CAST(${replicationHeartbeat.beatAt} AS CHAR)` })
      .from(replicationHeartbeat)
      .where(eq(replicationHeartbeat.id, HEARTBEAT_ROW)),
  );
  if (!row) throw new Error('the replica has no replication heartbeat yet');
  const [result] = await db.write((database) =>
    database.execute(
      sql`SELECT TIMESTAMPDIFF(MICROSECOND, ${row.beatAt}, UTC_TIMESTAMP(6)) AS lagMicroseconds`,
    ),
  );
  const lagMicroseconds = Number(
    (result as unknown as { lagMicroseconds: number | string }[])[0]?.lagMicroseconds,
  );
  if (!Number.isFinite(lagMicroseconds)) throw new Error(`unreadable heartbeat stamp "${row.beatAt}"`);
  // beat_at is rounded to milliseconds, so a fresh stamp can be a fraction of one in the future.
  return Math.max(0, lagMicroseconds / 1e6);
}

/**
 * Stamps the heartbeat row every `everyMs` until stopped. The next write is timed from the end of
 * the last, so a slow primary never has writes piling up. A failed write is logged once per outage:
 * the gauge shows its effect (the lag grows), and a log line a second would add nothing.
 */
export function startReplicationHeartbeat(
  db: Database,
  logger: Logger,
  everyMs = REPLICATION_HEARTBEAT_EVERY_MS,
): { stop(): Promise<void> } {
  let stopped = false;
  let failing = false;
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<void>;
  const beat = async (): Promise<void> => {
    try {
      await writeReplicationHeartbeat(db);
      if (failing) logger.info('replication heartbeat written again');
      failing = false;
    } catch (error) {
      if (!failing) logger.warn({ err: error }, 'replication heartbeat failed; replica lag will read high');
      failing = true;
    }
    if (!stopped) timer = setTimeout(() => (current = beat()), everyMs);
  };
  current = beat();
  return {
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await current;
    },
  };
}

/**
 * parley_mysql_replica_lag_seconds, measured at scrape time. Not registered without a replica: a 0
 * would claim a replica that does not exist is in sync.
 *
 * When the lag cannot be measured (replica down, its circuit open, no stamp replicated yet) the value
 * is NaN, not the last figure: a frozen last value would keep a lag alert quiet, or firing, on data
 * that is no longer true. NaN compares false (`> 30` does not fire on it), keeps the series present
 * (no `absent()` flapping across pods), and is what `x != x` detects for a "lag unknown" alert. The
 * replica's outage itself shows in circuit_breaker_state{circuit="mysql-replica"}.
 */
export function registerReplicaLagMetric(registry: Registry, db: Database, logger: Logger): void {
  if (!db.hasReplica) return;
  let failing = false;
  new Gauge({
    name: 'parley_mysql_replica_lag_seconds',
    help:
      'How far the MySQL read replica is behind the primary, from a heartbeat row the worker writes on the ' +
      `primary every ${REPLICATION_HEARTBEAT_EVERY_MS / 1000} s (the resolution: up to that much is the stamp's ` +
      'own age). NaN when it cannot be measured; absent when no replica is configured.',
    registers: [registry],
    async collect() {
      try {
        this.set(await measureReplicaLagSeconds(db));
        if (failing) logger.info('replica lag measurable again');
        failing = false;
      } catch (error) {
        // Never throw from collect: prom-client would fail the whole scrape, every other metric with it.
        this.set(Number.NaN);
        if (!failing) logger.warn({ err: error }, 'replica lag cannot be measured; reporting NaN');
        failing = true;
      }
    },
  });
}
