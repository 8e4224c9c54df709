import { createApi, healthFor, openApiDeps } from './app.js';
import { loadConfigOrExit } from './config.js';
import { listen } from './platform/http-server.js';
import { Lifecycle } from './platform/lifecycle.js';
import { createLogger } from './platform/logger.js';
import { createMetrics } from './platform/metrics.js';

const config = loadConfigOrExit('api');
const logger = createLogger(config, 'api');
const lifecycle = new Lifecycle(logger);
const metrics = createMetrics();

// Closers run in reverse: the API port drains first, then the clients close, and the management
// port (probes answer 503, metrics stay scrapeable during the drain) closes last.
const deps = await openApiDeps(config, logger, metrics, lifecycle);
const management = await listen(healthFor(deps).fetch, config.http.host, config.http.managementPort);
lifecycle.registerLast('management server', () => management.close(1_000));

const { app, gateway, upgrade } = createApi(deps);
const api = await listen(app.fetch, config.http.host, config.http.port);
// The same server and port as HTTP (`GET /v1/ws`), so an Ingress or Gateway needs no second one.
api.server.on('upgrade', upgrade);
// Sockets close (1001, spread over the drain window) while HTTP requests finish (up to the grace);
// the server's close waits for both. close() cuts what is left at the grace; the margin lets it do
// so before shutdown moves on.
const { drainWindowMs } = config.realtime;
lifecycle.register(
  'api server',
  () => Promise.all([gateway.drain(drainWindowMs), api.close(config.shutdownGraceMs)]),
  { timeoutMs: Math.max(config.shutdownGraceMs, drainWindowMs) + 7_000 },
);

lifecycle.exitOnSignals();
logger.info({ port: api.port, managementPort: management.port, pid: process.pid }, 'api listening');
