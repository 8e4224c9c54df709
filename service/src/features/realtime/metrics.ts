import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export type RefusalReason =
  | 'not-found'
  | 'bad-request'
  | 'unauthenticated'
  | 'origin'
  | 'too-many-sockets'
  | 'draining'
  | 'unavailable';

/** What the live connections of one API process are doing, for /metrics on the management port. */
export function realtimeMetrics(registry: Registry) {
  const registers = [registry];
  return {
    sockets: new Gauge({ name: 'parley_ws_sockets', help: 'Open WebSocket connections', registers }),
    subscriptions: new Gauge({
      name: 'parley_ws_subscriptions',
      help: 'Room subscriptions of the open WebSocket connections',
      registers,
    }),
    rooms: new Gauge({
      name: 'parley_ws_rooms',
      help: 'Rooms this process is subscribed to in Redis (a local socket is in each)',
      registers,
    }),
    fanoutSeconds: new Histogram({
      name: 'parley_ws_fanout_seconds',
      help: 'From a message’s commit (its event’s stamp) to its ws.send to the last local socket of its room',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    slowConsumersClosed: new Counter({
      name: 'parley_ws_slow_consumers_closed_total',
      help: 'Sockets closed with 1013 because their unsent data passed the bound',
      registers,
    }),
    resumes: new Counter({
      name: 'parley_ws_resumes_total',
      help: 'Subscriptions with `after`, by outcome: recovered (replayed) or resync',
      labelNames: ['outcome'] as const,
      registers,
    }),
    replayed: new Histogram({
      name: 'parley_ws_replayed_messages',
      help: 'Messages replayed by one recovered resume',
      buckets: [0, 1, 10, 50, 100, 250, 500, 1_000, 5_000],
      registers,
    }),
    resyncs: new Counter({
      name: 'parley_ws_resyncs_total',
      help: 'resync frames sent, by reason',
      labelNames: ['reason'] as const,
      registers,
    }),
    refusedUpgrades: new Counter({
      name: 'parley_ws_upgrades_refused_total',
      help: 'WebSocket upgrades answered with an HTTP error, by reason',
      labelNames: ['reason'] as const,
      registers,
    }),
    closed: new Counter({
      name: 'parley_ws_closed_total',
      help: 'WebSocket connections ended, by close code (1006: no close frame)',
      labelNames: ['code'] as const,
      registers,
    }),
    gapsFilled: new Counter({
      name: 'parley_ws_gaps_filled_total',
      help: 'Messages delivered from MySQL because their event was late or lost',
      registers,
    }),
  };
}

export type RealtimeMetrics = ReturnType<typeof realtimeMetrics>;
