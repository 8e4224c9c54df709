import type { Logger } from './logger.js';

type Closer = () => Promise<unknown> | unknown;

/**
 * Owns shutdown: every resource that opens registers its close here, and they run in reverse order
 * of registration, each bounded so one stuck client cannot hold the pod past its grace period.
 */
export class Lifecycle {
  private readonly closers: { name: string; close: Closer }[] = [];
  private readonly finalClosers: { name: string; close: Closer }[] = [];
  private drainingSince: number | undefined;
  private shuttingDown: Promise<void> | undefined;

  constructor(private readonly logger: Logger) {}

  register(name: string, close: Closer): void {
    this.closers.push({ name, close });
  }

  /** Closed after everything registered with `register`, e.g. the listener that reports the drain. */
  registerLast(name: string, close: Closer): void {
    this.finalClosers.unshift({ name, close });
  }

  get draining(): boolean {
    return this.drainingSince !== undefined;
  }

  /** Marks the process as draining (readiness fails at once), then closes everything in reverse. */
  shutdown(reason: string, perCloserTimeoutMs = 10_000): Promise<void> {
    this.shuttingDown ??= this.runShutdown(reason, perCloserTimeoutMs);
    return this.shuttingDown;
  }

  private async runShutdown(reason: string, perCloserTimeoutMs: number): Promise<void> {
    this.drainingSince = Date.now();
    this.logger.info({ reason }, 'shutting down');
    for (const { name, close } of [...[...this.closers].reverse(), ...this.finalClosers]) {
      const startedAt = Date.now();
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          Promise.resolve().then(close),
          new Promise((_, reject) => {
            timer = setTimeout(
              () => reject(new Error(`timed out after ${perCloserTimeoutMs} ms`)),
              perCloserTimeoutMs,
            );
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
  exitOnSignals(onDone: (code: number) => void = (code) => process.exit(code)): void {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.once(signal, () => {
        void this.shutdown(signal).then(() => onDone(0));
      });
    }
  }
}
