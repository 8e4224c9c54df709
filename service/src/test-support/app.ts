import { Writable } from 'node:stream';
import { createApp, type App } from '../app.js';
import type { Config } from '../config.js';
import { openDependencies, type Dependencies } from '../platform/dependencies.js';
import { Lifecycle } from '../platform/lifecycle.js';
import { createLogger } from '../platform/logger.js';
import { createMetrics, type Metrics } from '../platform/metrics.js';

export interface TestApp extends Dependencies {
  app: App;
  metrics: Metrics;
  lifecycle: Lifecycle;
  /** Every JSON line the app logged. */
  logLines: Record<string, unknown>[];
  close(): Promise<void>;
}

/** The real app and adapters, in this process, against a test stack; logs are captured, not printed. */
export function buildTestApp(config: Config): TestApp {
  const logLines: Record<string, unknown>[] = [];
  const capture = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) logLines.push(JSON.parse(line));
      done();
    },
  });
  const logger = createLogger({ ...config, logLevel: 'info' }, 'api', capture);
  const lifecycle = new Lifecycle(logger);
  const metrics = createMetrics();
  const dependencies = openDependencies(config, logger, metrics, lifecycle);
  const app = createApp({
    config,
    logger,
    metrics,
    lifecycle,
    db: dependencies.db,
    redis: dependencies.redis,
  });
  return {
    app,
    metrics,
    lifecycle,
    logLines,
    ...dependencies,
    close: () => lifecycle.shutdown('test finished'),
  };
}
