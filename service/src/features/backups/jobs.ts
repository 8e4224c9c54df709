import { z } from 'zod';
import { defineJob, handle, type JobHandler, type JobKind } from '../../platform/jobs.js';
import { QUEUES } from '../../platform/queues.js';
import { runBackup, type BackupDeps } from './backup.js';

/**
 * One backup. Every add carries the same deduplication id, so while a backup is waiting, running
 * or waiting for a retry, another add (a manual one during the scheduled one, a second worker's
 * schedule tick) collapses into it. A jobId derived from the data would instead refuse every later
 * manual backup for as long as the first job's record is kept. A backup run twice is harmless
 * anyway: it writes a second file, and the older ones are pruned.
 */
export const BACKUP_JOB = defineJob({
  queue: QUEUES.backups,
  name: 'backup',
  data: z.object({ reason: z.enum(['scheduled', 'manual']) }),
  options: () => ({ deduplication: { id: 'backup' } }),
});

export interface JobSchedule<Data> {
  kind: JobKind<Data>;
  every?: number;
  pattern?: string;
  data: Data;
}

/**
 * The backup handler, and its schedule (config BACKUP_SCHEDULE) when BACKUP_ENABLED. The handler is
 * there either way, so that a manual backup added to the queue runs where a key is configured.
 */
export function backupsJobs(deps: BackupDeps): {
  handlers: JobHandler<{ reason: 'scheduled' | 'manual' }>[];
  schedules: JobSchedule<{ reason: 'scheduled' | 'manual' }>[];
} {
  return {
    handlers: [handle(BACKUP_JOB, () => runBackup(deps))],
    schedules: deps.config.backups.enabled
      ? [{ kind: BACKUP_JOB, pattern: deps.config.backups.schedule, data: { reason: 'scheduled' } }]
      : [],
  };
}
