import { parseArgs } from 'node:util';
import type { Config } from './config.js';
import { listDeadLetters, queueNamed, redrive, type DeadLetter } from './platform/dead-letters.js';
import { Lifecycle } from './platform/lifecycle.js';
import { createLogger } from './platform/logger.js';
import { createMetrics } from './platform/metrics.js';
import { listBackups, runBackup } from './features/backups/backup.js';
import { restoreBackup } from './features/backups/restore.js';
import { rebuildLeaderboards } from './features/leaderboards/rebuild.js';
import { openWorkerDeps, type WorkerDeps } from './worker.js';

/** A usage mistake: exit 2 with the usage, as command-line tools do. */
export class UsageError extends Error {}

interface Command {
  usage: string;
  summary: string;
  run(deps: WorkerDeps, args: string[], out: (line: string) => void): Promise<void>;
}

function takesNoArguments(command: string, args: string[]): void {
  if (args.length > 0) throw new UsageError(`${command} takes no arguments`);
}

function formatBytes(bytes: number): string {
  return bytes < 1_048_576 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / 1_048_576).toFixed(1)} MiB`;
}

function table(letters: DeadLetter[]): string[] {
  const rows = letters.map((letter) => [
    letter.queue,
    letter.id,
    letter.name,
    String(letter.attempts),
    letter.failedAt ?? '-',
    letter.lastError.replace(/\s+/g, ' ').slice(0, 200),
  ]);
  const header = ['QUEUE', 'ID', 'NAME', 'ATTEMPTS', 'FAILED AT', 'LAST ERROR'];
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => row[column]!.length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column]!)))
      .join('  ');
  return [line(header), ...rows.map(line)];
}

const COMMANDS: Record<string, Command> = {
  dead: {
    usage: 'dead [queue] [--json]',
    summary: 'lists the jobs that exhausted their attempts, newest first, with their last error',
    async run(deps, args, out) {
      const { values, positionals } = parseArgs({
        args,
        options: { json: { type: 'boolean' } },
        allowPositionals: true,
      });
      if (positionals.length > 1) throw new UsageError('dead takes at most one queue');
      const letters = await listDeadLetters(
        deps.jobs,
        positionals[0] ? queueNamed(positionals[0]) : undefined,
      );
      if (values.json) return out(JSON.stringify(letters, null, 2));
      if (letters.length === 0) return out('no dead letters');
      for (const row of table(letters)) out(row);
    },
  },
  redrive: {
    usage: 'redrive <queue> <id | --all>',
    summary: 'runs dead letters again, each with a fresh set of attempts',
    async run(deps, args, out) {
      const { values, positionals } = parseArgs({
        args,
        options: { all: { type: 'boolean' } },
        allowPositionals: true,
      });
      const [queue, id, ...rest] = positionals;
      if (!queue || rest.length > 0 || Boolean(id) === Boolean(values.all))
        throw new UsageError('redrive takes a queue and either one job id or --all');
      const ids = await redrive(deps.jobs, queueNamed(queue), values.all ? 'all' : { id: id! });
      out(ids.length === 0 ? `no dead letters on ${queue}` : `redriven on ${queue}: ${ids.join(', ')}`);
    },
  },
  backup: {
    usage: 'backup',
    summary: 'takes an encrypted backup now, from the replica, to the backups bucket (and prunes old ones)',
    async run(deps, args, out) {
      takesNoArguments('backup', args);
      const result = await runBackup(deps);
      out(
        `backed up ${result.rows} rows of ${result.tables} tables from the ${result.server} ` +
          `to ${result.key} (${formatBytes(result.bytes)} encrypted, ${formatBytes(result.plaintextBytes)} of data)`,
      );
      if (result.deleted.length > 0) out(`deleted older backups: ${result.deleted.join(', ')}`);
    },
  },
  backups: {
    usage: 'backups',
    summary: 'lists the backups in the bucket, newest first',
    async run(deps, args, out) {
      takesNoArguments('backups', args);
      const found = await listBackups(deps);
      if (found.length === 0) return out('no backups');
      for (const backup of found)
        out(`${backup.key}  ${formatBytes(backup.bytes)}  ${backup.lastModified?.toISOString() ?? '-'}`);
    },
  },
  restore: {
    usage: 'restore <key>',
    summary: 'verifies a whole backup, then restores it into the configured, empty database',
    async run(deps, args, out) {
      if (args.length !== 1) throw new UsageError('restore takes the key of one backup (see: backups)');
      const result = await restoreBackup(deps, args[0]!);
      out(
        `restored ${result.rows} rows of ${result.tables} tables from ${result.key} (key: ${result.keyUsed})`,
      );
    },
  },
  'rebuild-leaderboards': {
    usage: 'rebuild-leaderboards',
    summary: 'restores the current leaderboards in Redis from MySQL (after Redis lost them)',
    async run(deps, args, out) {
      takesNoArguments('rebuild-leaderboards', args);
      const result = await rebuildLeaderboards(deps);
      out(
        `rebuilt the boards of ${result.rooms} rooms and the global ones (${result.week}, ${result.month}, all-time) ` +
          `from ${result.rows} rows in ${result.durationMs} ms`,
      );
    },
  },
};

export function usage(): string {
  const width = Math.max(...Object.values(COMMANDS).map((command) => command.usage.length));
  return [
    'usage: npm run jobs -- <command>   (in the image: jobs <command>)',
    '',
    ...Object.values(COMMANDS).map((command) => `  ${command.usage.padEnd(width)}  ${command.summary}`),
  ].join('\n');
}

/** Runs one command against the configured Redis, MySQL and S3; resolves to the exit code. */
export async function runJobsCommand(
  loadConfig: () => Config,
  argv: string[],
  out: (line: string) => void,
  err: (line: string) => void,
): Promise<number> {
  const [name, ...args] = argv;
  if (!name || name === 'help' || name === '--help') {
    (name ? out : err)(usage());
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    err(`unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  const config = loadConfig();
  // The command's own output is what the operator reads: the service's logs only when they matter.
  const logger = createLogger({ ...config, logLevel: 'warn' }, 'jobs');
  const lifecycle = new Lifecycle(logger);
  try {
    await command.run(openWorkerDeps(config, logger, createMetrics(), lifecycle), args, out);
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      err(`${error.message}\n\nusage: npm run jobs -- ${command.usage}`);
      return 2;
    }
    err(`jobs ${name}: ${(error as Error).message}`);
    return 1;
  } finally {
    await lifecycle.shutdown(`jobs ${name} done`);
  }
}
