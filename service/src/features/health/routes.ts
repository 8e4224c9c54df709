import { Hono } from 'hono';
import type { Registry } from 'prom-client';
import { assessReadiness, type DependencyCheck } from './readiness.js';

export interface HealthOptions {
  checks: DependencyCheck[];
  timeoutMs: number;
  isDraining: () => boolean;
  registry: Registry;
  /** Liveness beyond "the event loop answers", e.g. the worker's job progress. */
  liveness?: () => { alive: boolean; detail?: Record<string, unknown> };
  /** Extra facts for /readyz, such as connection pool stats. */
  details?: () => Record<string, unknown>;
}

/** /livez, /readyz and /metrics, mounted on the API port and on each process's management port. */
export function healthRoutes(options: HealthOptions): Hono {
  const app = new Hono();
  // Probes must never be cached by a proxy in between. Set per route: a router-wide `use` would be
  // mounted on '/*' of the app that routes this one, and so touch every API response.
  const noStore = { 'Cache-Control': 'no-store' };

  app.get('/livez', (c) => {
    const liveness = options.liveness?.() ?? { alive: true };
    return c.json(
      { status: liveness.alive ? 'alive' : 'stalled', ...liveness.detail },
      liveness.alive ? 200 : 503,
      noStore,
    );
  });

  app.get('/readyz', async (c) => {
    const readiness = await assessReadiness(options.checks, options.timeoutMs, options.isDraining());
    return c.json(
      { ...readiness, ...options.details?.() },
      readiness.status === 'ready' ? 200 : 503,
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
