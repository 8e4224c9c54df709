import CircuitBreaker from 'opossum';
import { Gauge, type Registry } from 'prom-client';
import type { Logger } from './logger.js';

/** Thrown when a dependency's circuit is open or a call to it failed or timed out: the edge answers 503. */
export class DependencyUnavailable extends Error {
  constructor(
    readonly dependency: string,
    readonly retryAfterSeconds: number,
    options?: { cause?: unknown },
  ) {
    super(`${dependency} is unavailable`, options);
    this.name = 'DependencyUnavailable';
  }
}

export interface CircuitOptions {
  /** Per-call deadline; a slower call counts as a failure. */
  timeoutMs: number;
  /** How long the circuit stays open before one trial call (half-open). */
  openMs: number;
  /** Only errors for which this returns true count against the dependency (not duplicate keys). */
  isFailure: (error: unknown) => boolean;
}

export type BreakerState = 'closed' | 'half-open' | 'open';

export interface Breaker {
  readonly name: string;
  run<T>(call: () => Promise<T>): Promise<T>;
  state(): BreakerState;
}

const STATE_VALUE: Record<BreakerState, number> = { closed: 0, 'half-open': 1, open: 2 };

/*
 * opossum rather than mollitia, the library first chosen: mollitia 0.1.1 reloads its call window
 * from its state store on every call, so under concurrent traffic a half-open trial is never
 * counted and the circuit stays half-open for good; src/resilience.test.ts caught it. opossum lets
 * exactly one trial through when half-open and closes or reopens on its result.
 */

/** Creates breakers that share one gauge: circuit_breaker_state{circuit} 0 closed, 1 half-open, 2 open. */
export function createBreakerFactory(registry: Registry, logger?: Logger) {
  const gauge = new Gauge({
    name: 'circuit_breaker_state',
    help: 'Circuit breaker state per dependency: 0 closed, 1 half-open, 2 open',
    labelNames: ['circuit'] as const,
    registers: [registry],
  });

  return function createBreaker(name: string, options: CircuitOptions): Breaker {
    const circuit = new CircuitBreaker((call: () => Promise<unknown>) => call(), {
      name,
      timeout: options.timeoutMs,
      resetTimeout: options.openMs,
      errorThresholdPercentage: 50,
      // Trip only on a real sample: at least 3 calls in the rolling 10 s window.
      volumeThreshold: 3,
      rollingCountTimeout: 10_000,
      rollingCountBuckets: 10,
      // opossum's defaults concatenate and sort every latency of the 10 s window once a second (the
      // snapshot event) and on every failure (the percentiles): under load, a stall on the event
      // loop that grows with traffic and is worst while a dependency fails. Nothing here reads either.
      enableSnapshots: false,
      rollingPercentilesEnabled: false,
      // A duplicate key or a bad query says nothing about the dependency's health.
      errorFilter: (error: unknown) => !options.isFailure(error),
    });
    const state = (): BreakerState => (circuit.opened ? 'open' : circuit.halfOpen ? 'half-open' : 'closed');
    const report = () => {
      gauge.set({ circuit: name }, STATE_VALUE[state()]);
      logger?.warn({ circuit: name, state: state() }, `circuit ${name} ${state()}`);
    };
    gauge.set({ circuit: name }, 0);
    circuit.on('open', report);
    circuit.on('halfOpen', report);
    circuit.on('close', report);
    const retryAfterSeconds = Math.max(1, Math.ceil(options.openMs / 1000));

    return {
      name,
      state,
      run: async <T>(call: () => Promise<T>): Promise<T> => {
        try {
          return (await circuit.fire(call)) as T;
        } catch (error) {
          // Open circuit (EOPENBREAKER), timeout (ETIMEDOUT), or a failure that counts against the
          // dependency: all mean "unavailable", which the edge answers with 503.
          const code = (error as { code?: string }).code;
          if (code === 'EOPENBREAKER' || code === 'ETIMEDOUT' || options.isFailure(error)) {
            throw new DependencyUnavailable(name, retryAfterSeconds, { cause: error });
          }
          throw error;
        }
      },
    };
  };
}
