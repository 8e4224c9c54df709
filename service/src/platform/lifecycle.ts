import type { Logger } from './logger.js';

type Closer = () => Promise<unknown> | unknown;

export interface CloseOptions {
  /**
   * How long shutdown waits for this close before it moves on to the next (default 10 s). A close
   * that drains work (the API server's grace, a worker's longest job) must pass its own bound.
   */
  timeoutMs?: number;
}

const DEFAULT_CLOSE_TIMEOUT_MS = 10_000;

interface Registration {
  name: string;
  close: Closer;
  timeoutMs: number;
}

/**
 * Owns shutdown: every resource that opens registers its close here, and they run in reverse order
 * of registration, each bounded so one stuck client cannot hold the pod past its grace period.
 */
export class Lifecycle {
  private readonly closers: Registration[] = [];
  private readonly finalClosers: Registration[] = [];
  private drainingSince: number | undefined;
  private shuttingDown: Promise<void> | undefined;

  constructor(private readonly logger: Logger) {}

  register(name: string, close: Closer, options: CloseOptions = {}): void {
    this.closers.push({ name, close, timeoutMs: options.timeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS });
  }

  /** Closed after everything registered with `register`, e.g. the listener that reports the drain. */
  registerLast(name: string, close: Closer, options: CloseOptions = {}): void {
    this.finalClosers.unshift({ name, close, timeoutMs: options.timeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS });
  }

  get draining(): boolean {
    return this.drainingSince !== undefined;
  }

  /** Marks the process as draining (readiness fails at once), then closes everything in reverse. */
  shutdown(reason: string): Promise<void> {
    this.shuttingDown ??= this.runShutdown(reason);
    return this.shuttingDown;
  }

  private async runShutdown(reason: string): Promise<void> {
    this.drainingSince = Date.now();
    this.logger.info({ reason }, 'shutting down');
    for (const { name, close, timeoutMs } of [...[...this.closers].reverse(), ...this.finalClosers]) {
      const startedAt = Date.now();
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          Promise.resolve().then(close),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
          }),
        ]);
        this.logger.info({ resource: name, ms: Date.now() - startedAt }, 'closed');
      } catch (error) {
        this.logger.error({ resource: name, err: error }, 'close failed');
      } finally {
        clearTimeout(timer);
      }
    }
  }

  /** SIGTERM (Kubernetes) and SIGINT (Ctrl-C) start the shutdown; the process exits when it ends. */
  exitOnSignals(onDone: (code: number) => void = exitWhenIdle): void {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.once(signal, () => {
        void this.shutdown(signal).then(() => onDone(0));
      });
    }
  }
}

/**
 * Ends the process once its event loop is idle, at most a second after shutdown. process.exit at
 * once would cut pino's asynchronous stdout writes short: its exit hook writes what is buffered
 * synchronously, ahead of a write still in flight, so the last log lines could arrive out of order.
 */
function exitWhenIdle(code: number): void {
  process.exitCode = code;
  setTimeout(() => process.exit(code), 1_000).unref();
}
