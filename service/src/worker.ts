import type { S3Client } from '@aws-sdk/client-s3';
import type { Config } from './config.js';
import { attachmentsJobs } from './features/attachments/jobs.js';
import { backupsJobs } from './features/backups/jobs.js';
import { leaderboardsJobs } from './features/leaderboards/jobs.js';
import { heartbeatJobs } from './features/maintenance/heartbeat.js';
import { openDependencies, type Dependencies } from './platform/dependencies.js';
import type { JobSchedule } from './platform/job-workers.js';
import { queuesFrom, type JobHandler, type JobQueues } from './platform/jobs.js';
import type { Lifecycle } from './platform/lifecycle.js';
import type { Logger } from './platform/logger.js';
import type { Metrics } from './platform/metrics.js';
import { createQueue } from './platform/queues.js';
import { createS3Client } from './platform/s3.js';

/** What the worker's jobs and `npm run jobs` work with. */
export interface WorkerDeps extends Dependencies {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  jobs: JobQueues;
  s3: S3Client;
}

export function openWorkerDeps(
  config: Config,
  logger: Logger,
  metrics: Metrics,
  lifecycle: Lifecycle,
): WorkerDeps {
  const dependencies = openDependencies(config, logger, metrics, lifecycle);
  const jobs = queuesFrom((name) => createQueue(config, name));
  lifecycle.register('job queues', () => jobs.close());
  const s3 = createS3Client(config.s3);
  lifecycle.register('s3 client', async () => s3.destroy());
  return { ...dependencies, config, logger, metrics, jobs, s3 };
}

/** Every job the worker runs and every schedule it keeps, feature by feature. */
export function workerJobs(deps: WorkerDeps): { handlers: JobHandler[]; schedules: JobSchedule[] } {
  const features: { handlers: readonly JobHandler[]; schedules: readonly JobSchedule[] }[] = [
    heartbeatJobs(deps.db, deps.config.jobs.heartbeatMs),
    leaderboardsJobs(deps),
    attachmentsJobs(deps),
    backupsJobs(deps),
  ];
  return {
    handlers: features.flatMap((feature) => feature.handlers),
    schedules: features.flatMap((feature) => feature.schedules),
  };
}
