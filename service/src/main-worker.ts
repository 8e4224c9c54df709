import { loadConfigOrExit } from './config.js';
import { dependencyChecks } from './features/health/checks.js';
import { healthRoutes } from './features/health/routes.js';
import { overdueMs, ProgressWatch } from './features/maintenance/heartbeat.js';
import { registerReplicaLagMetric, startReplicationHeartbeat } from './features/maintenance/replica-lag.js';
import { listen } from './platform/http-server.js';
import { JOB_BOARD_PATH, jobBoard } from './platform/job-board.js';
import { startJobWorkers, upsertSchedules } from './platform/job-workers.js';
import { Lifecycle } from './platform/lifecycle.js';
import { createLogger } from './platform/logger.js';
import { createMetrics } from './platform/metrics.js';
import { QUEUES, registerQueueMetrics } from './platform/queues.js';
import { openWorkerDeps, workerJobs } from './worker.js';

const config = loadConfigOrExit('worker');
const logger = createLogger(config, 'worker');
const lifecycle = new Lifecycle(logger);
const metrics = createMetrics();

const deps = openWorkerDeps(config, logger, metrics, lifecycle);
const { db, redis, jobs } = deps;
const queues = Object.values(QUEUES).map((name) => jobs.queue(name));
registerQueueMetrics(metrics.registry, queues);

// Three missed heartbeats before Kubernetes restarts the worker.
const progress = new ProgressWatch(config.jobs.heartbeatMs * 3 + 5_000, () =>
  overdueMs(jobs.queue(QUEUES.maintenance)),
);
const { handlers, schedules } = workerJobs(deps);
const workers = startJobWorkers({
  config,
  handlers,
  logger,
  registry: metrics.registry,
  onCompleted: () => progress.recordProgress(),
});
// BullMQ's close has no bound of its own: past WORKER_SHUTDOWN_GRACE_MS the running jobs are handed
// back to the queue, and the pod's grace period must exceed that.
lifecycle.register('job workers', () => workers.close(config.worker.shutdownGraceMs), {
  timeoutMs: config.worker.shutdownGraceMs + 5_000,
});

if (db.hasReplica) {
  const replicationHeartbeat = startReplicationHeartbeat(db, logger);
  lifecycle.register('replication heartbeat', () => replicationHeartbeat.stop());
}
registerReplicaLagMetric(metrics.registry, db, logger);

await upsertSchedules(jobs, schedules);

const managementApp = healthRoutes({
  checks: dependencyChecks(db, redis),
  timeoutMs: config.readinessTimeoutMs,
  isDraining: () => lifecycle.draining,
  registry: metrics.registry,
  liveness: () => progress.status(),
});
if (config.jobs.board !== 'off') managementApp.route(JOB_BOARD_PATH, jobBoard(queues, config.jobs.board));
const management = await listen(managementApp.fetch, config.http.host, config.worker.healthPort);

lifecycle.registerLast('management server', () => management.close(1_000));

lifecycle.exitOnSignals();
logger.info({ healthPort: management.port, pid: process.pid, queues: workers.queues }, 'worker started');
