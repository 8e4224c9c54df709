import { Hono } from 'hono';
import type { Registry } from 'prom-client';
import { createReadiness, type DependencyCheck, type Readiness } from './readiness.js';

export interface HealthOptions {
  checks: DependencyCheck[];
  timeoutMs: number;
  isDraining: () => boolean;
  registry: Registry;
  /** Liveness beyond "the event loop answers", e.g. the worker's job progress. */
  liveness?: () =>
    | { alive: boolean; detail?: Record<string, unknown> }
    | Promise<{ alive: boolean; detail?: Record<string, unknown> }>;
  /** Extra facts for /readyz, such as connection pool stats. */
  details?: () => Record<string, unknown>;
}

/** /livez, /readyz and /metrics, served on each process's management port, never on the API port. */
export function healthRoutes(options: HealthOptions): Hono {
  const app = new Hono();
  // Probes must never be cached by a proxy in between. Set per route: a router-wide `use` would be
  // mounted on '/*' of the app that routes this one, and so touch every API response.
  const noStore = { 'Cache-Control': 'no-store' };
  const assessReadiness = createReadiness(options.checks, options.timeoutMs);

  app.get('/livez', async (c) => {
    const liveness = (await options.liveness?.()) ?? { alive: true };
    return c.json(
      { status: liveness.alive ? 'alive' : 'stalled', ...liveness.detail },
      liveness.alive ? 200 : 503,
      noStore,
    );
  });

  app.get('/readyz', async (c) => {
    // A draining process is never ready, whatever its dependencies say: answer at once, so the
    // endpoints drop the pod on the first probe after SIGTERM even while a dependency hangs.
    if (options.isDraining()) {
      const draining: Readiness = { status: 'draining', checks: {} };
      return c.json({ ...draining, ...options.details?.() }, 503, noStore);
    }
    const readiness = await assessReadiness();
    return c.json(
      { ...readiness, ...options.details?.() },
      readiness.status === 'starting' ? 503 : 200,
      noStore,
    );
  });

  app.get('/metrics', async (c) => {
    return c.body(await options.registry.metrics(), 200, {
      ...noStore,
      'Content-Type': options.registry.contentType,
    });
  });
  return app;
}
