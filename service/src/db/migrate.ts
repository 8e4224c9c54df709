import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { drizzle } from 'drizzle-orm/mysql2';
import { migrate } from 'drizzle-orm/mysql2/migrator';
import type { Connection } from 'mysql2/promise';
import { exitOnConfigError, loadMigrationConfig, type Config } from '../config.js';
import { createLogger, type Logger } from '../platform/logger.js';
import { createMigrationConnection } from '../platform/mysql.js';

// Resolves to service/drizzle both from src/db (tsx) and from dist/db (the image).
export const MIGRATIONS_FOLDER = fileURLToPath(new URL('../../drizzle', import.meta.url));
const LOCK_NAME = 'parley:migrate';

async function withNamedLock<T>(
  connection: Connection,
  timeoutSeconds: number,
  work: () => Promise<T>,
): Promise<T> {
  // GET_LOCK is held by this session on MySQL and MariaDB alike, and released if the Job dies.
  const [rows] = await connection.query('SELECT GET_LOCK(?, ?) AS acquired', [LOCK_NAME, timeoutSeconds]);
  if ((rows as { acquired: number | null }[])[0]?.acquired !== 1) {
    throw new Error(`another migration holds the lock "${LOCK_NAME}" for more than ${timeoutSeconds} s`);
  }
  try {
    return await work();
  } finally {
    await connection.query('SELECT RELEASE_LOCK(?)', [LOCK_NAME]);
  }
}

/**
 * Applies pending migrations. Idempotent (applied ones are recorded in __drizzle_migrations) and
 * safe to run concurrently: a second run waits for the lock, then finds nothing to do.
 */
export async function runMigrations(
  config: Config['mysql'],
  logger: Logger,
  options: { lockTimeoutSeconds?: number; migrationsFolder?: string } = {},
): Promise<void> {
  const connection = await createMigrationConnection(config);
  try {
    await withNamedLock(connection, options.lockTimeoutSeconds ?? 120, async () => {
      const startedAt = Date.now();
      await migrate(drizzle({ client: connection }), {
        migrationsFolder: options.migrationsFolder ?? MIGRATIONS_FOLDER,
      });
      logger.info({ ms: Date.now() - startedAt }, 'migrations applied');
    });
  } finally {
    await connection.end();
  }
}

/**
 * Node runs the main module from its real path, but argv[1] keeps the path as given: through a
 * symlink (a bin link, an image's /app link) a plain comparison would exit 0 without migrating.
 */
function isEntryPoint(): boolean {
  const given = process.argv[1];
  if (!given) return false;
  try {
    return realpathSync(given) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false; // argv[1] is not a file (e.g. `node -e`): imported, not run
  }
}

if (isEntryPoint()) {
  const config = exitOnConfigError(() => loadMigrationConfig());
  const logger = createLogger(config, 'migrate');
  try {
    await runMigrations(config.mysql, logger);
  } catch (error) {
    logger.fatal({ err: error }, 'migration failed');
    process.exitCode = 1;
  }
}
