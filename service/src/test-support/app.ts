import { Writable } from 'node:stream';
import type { Hono } from 'hono';
import { createApi, healthFor, openApiDeps, type App, type AppDeps } from '../app.js';
import type { Config } from '../config.js';
import { Lifecycle } from '../platform/lifecycle.js';
import { createLogger } from '../platform/logger.js';
import { createMetrics } from '../platform/metrics.js';

export interface TestApp extends AppDeps {
  app: App;
  /** What the management port serves: /livez, /readyz, /metrics. */
  management: Hono;
  /** Every JSON line the app logged. */
  logLines: Record<string, unknown>[];
  close(): Promise<void>;
}

/** The real app and adapters, in this process, against a test stack; logs are captured, not printed. */
export async function buildTestApp(
  config: Config,
  options: { logLevel?: Config['logLevel'] } = {},
): Promise<TestApp> {
  const logLines: Record<string, unknown>[] = [];
  const capture = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) logLines.push(JSON.parse(line));
      done();
    },
  });
  const logger = createLogger({ ...config, logLevel: options.logLevel ?? 'info' }, 'api', capture);
  const lifecycle = new Lifecycle(logger);
  const deps = await openApiDeps(config, logger, createMetrics(), lifecycle);
  return {
    ...deps,
    app: createApi(deps).app,
    management: healthFor(deps),
    logLines,
    close: () => lifecycle.shutdown('test finished'),
  };
}
