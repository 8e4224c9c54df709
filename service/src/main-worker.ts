import type { Job } from 'bullmq';
import { loadConfigOrExit } from './config.js';
import { dependencyChecks } from './features/health/checks.js';
import { healthRoutes } from './features/health/routes.js';
import {
  HEARTBEAT_EVERY_MS,
  HEARTBEAT_JOB,
  ProgressWatch,
  runHeartbeat,
  scheduleHeartbeat,
} from './features/maintenance/heartbeat.js';
import { registerReplicaLagMetric, startReplicationHeartbeat } from './features/maintenance/replica-lag.js';
import { openDependencies } from './platform/dependencies.js';
import { listen } from './platform/http-server.js';
import { Lifecycle } from './platform/lifecycle.js';
import { createLogger } from './platform/logger.js';
import { createMetrics } from './platform/metrics.js';
import { createQueue, createWorker, QUEUES, registerQueueMetrics } from './platform/queues.js';

const config = loadConfigOrExit('worker');
const logger = createLogger(config, 'worker');
const lifecycle = new Lifecycle(logger);
const metrics = createMetrics();

const { db, redis } = openDependencies(config, logger, metrics, lifecycle);

const maintenanceQueue = createQueue(config, QUEUES.maintenance);
lifecycle.register('maintenance queue', () => maintenanceQueue.close());
registerQueueMetrics(metrics.registry, [maintenanceQueue]);

// Three missed heartbeats before Kubernetes restarts the worker.
const progress = new ProgressWatch(HEARTBEAT_EVERY_MS * 3 + 5_000);
const worker = createWorker(config, QUEUES.maintenance, async (job: Job) => {
  if (job.name === HEARTBEAT_JOB) return runHeartbeat(db, job);
  throw new Error(`unknown job "${job.name}" on queue ${QUEUES.maintenance}`);
});
worker.on('completed', () => progress.recordProgress());
worker.on('failed', (job, error) =>
  logger.error({ job: job?.name, jobId: job?.id, err: error }, 'job failed'),
);
worker.on('error', (error) => logger.error({ err: error }, 'worker error'));
// worker.close() waits for active jobs without a bound of its own: WORKER_SHUTDOWN_GRACE_MS (the
// longest job) bounds it, and the pod's grace period must exceed that.
lifecycle.register('maintenance worker', () => worker.close(), {
  timeoutMs: config.worker.shutdownGraceMs,
});

if (db.hasReplica) {
  const replicationHeartbeat = startReplicationHeartbeat(db, logger);
  lifecycle.register('replication heartbeat', () => replicationHeartbeat.stop());
}
registerReplicaLagMetric(metrics.registry, db, logger);

await scheduleHeartbeat(maintenanceQueue);

const management = await listen(
  healthRoutes({
    checks: dependencyChecks(db, redis),
    timeoutMs: config.readinessTimeoutMs,
    isDraining: () => lifecycle.draining,
    registry: metrics.registry,
    liveness: () => progress.status(),
  }).fetch,
  config.http.host,
  config.worker.healthPort,
);

lifecycle.registerLast('management server', () => management.close(1_000));

lifecycle.exitOnSignals();
logger.info({ healthPort: management.port, pid: process.pid }, 'worker started');
