import { BreakerError, BreakerState, Circuit, SlidingCountBreaker, Timeout, TimeoutError } from 'mollitia';
import { Gauge, type Registry } from 'prom-client';

/** Thrown when a dependency's circuit is open or a call to it timed out: the HTTP edge answers 503. */
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
  /** How long the circuit stays open before a half-open probe. */
  openMs: number;
  /** Only errors for which this returns true count against the dependency (not duplicate keys). */
  isFailure: (error: unknown) => boolean;
}

export interface Breaker {
  readonly name: string;
  run<T>(call: () => Promise<T>): Promise<T>;
  state(): BreakerState;
}

const STATE_VALUE: Record<BreakerState, number> = {
  [BreakerState.CLOSED]: 0,
  [BreakerState.HALF_OPENED]: 1,
  [BreakerState.OPENED]: 2,
};

/** Creates breakers that share one Prometheus gauge: circuit_breaker_state{circuit} 0 closed, 1 half-open, 2 open. */
export function createBreakerFactory(registry: Registry) {
  const gauge = new Gauge({
    name: 'circuit_breaker_state',
    help: 'Circuit breaker state per dependency: 0 closed, 1 half-open, 2 open',
    labelNames: ['circuit'] as const,
    registers: [registry],
  });

  return function createBreaker(name: string, options: CircuitOptions): Breaker {
    const breaker = new SlidingCountBreaker({
      slidingWindowSize: 10,
      minimumNumberOfCalls: 3,
      failureRateThreshold: 50,
      openStateDelay: options.openMs,
      permittedNumberOfCallsInHalfOpenState: 1,
      onError: (error: unknown) => options.isFailure(error) || error instanceof TimeoutError,
    });
    const circuit = new Circuit({
      name,
      options: { modules: [breaker, new Timeout({ delay: options.timeoutMs })] },
    });
    gauge.set({ circuit: name }, 0);
    breaker.on('state-changed', (state: BreakerState) => gauge.set({ circuit: name }, STATE_VALUE[state]));
    const retryAfterSeconds = Math.max(1, Math.ceil(options.openMs / 1000));

    return {
      name,
      state: () => breaker.state,
      run: async <T>(call: () => Promise<T>): Promise<T> => {
        try {
          return await circuit.fn(call).execute<T>();
        } catch (error) {
          if (error instanceof BreakerError || error instanceof TimeoutError) {
            throw new DependencyUnavailable(name, retryAfterSeconds, { cause: error });
          }
          throw error;
        }
      },
    };
  };
}
