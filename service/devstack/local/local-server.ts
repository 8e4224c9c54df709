import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { once } from 'node:events';
import { retryUntil } from '../retry.js';
import type { ServerControl } from '../types.js';

export interface LocalServerSpec {
  name: string;
  host: string;
  port: number;
  command: string;
  args: string[];
  /** Added to this process's environment. */
  env?: Record<string, string>;
  logFile: string;
  /** Resolves once the server answers; called repeatedly until it does or the deadline passes. */
  probe: () => Promise<void>;
  startTimeoutMs?: number;
}

// setpriv (util-linux) sets PR_SET_PDEATHSIG before exec: if this Node process is SIGKILLed, the
// kernel kills the server too, so not even a crashed test runner leaks a mariadbd.
const hasSetpriv = spawnSync('setpriv', ['--help'], { stdio: 'ignore' }).status === 0;

/** The command line that runs `command` so the kernel sends it `signal` when this process dies. */
export function diesWithParent(command: string, args: string[], signal: 'KILL' | 'TERM'): [string, string[]] {
  return hasSetpriv ? ['setpriv', ['--pdeathsig', signal, '--', command, ...args]] : [command, args];
}

/**
 * SIGSTOPs `pid` and resolves once the kernel reports it stopped: kill() returns before that, and
 * a thread already running on another core could still answer a query in between.
 */
export async function stopProcess(pid: number, boundMs = 5_000): Promise<void> {
  process.kill(pid, 'SIGSTOP');
  const deadline = Date.now() + boundMs;
  for (;;) {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('T')) return;
    if (Date.now() > deadline) throw new Error(`process ${pid} did not stop`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export class LocalServer implements ServerControl {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  private child: ChildProcess | undefined;
  private exited: Promise<unknown> | undefined;

  constructor(private readonly spec: LocalServerSpec) {
    this.name = spec.name;
    this.host = spec.host;
    this.port = spec.port;
  }

  pid(): number | undefined {
    return this.isRunning() ? this.child?.pid : undefined;
  }

  isRunning(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  async start(): Promise<void> {
    if (this.isRunning()) return;
    const log = openSync(this.spec.logFile, 'a');
    const [command, args] = diesWithParent(this.spec.command, this.spec.args, 'KILL');
    // Own process group: a Ctrl-C in the terminal reaches the owner, which stops the servers in order
    // after the service has closed its connections, instead of every server dying at once.
    const child = spawn(command, args, {
      stdio: ['ignore', log, log],
      detached: true,
      env: { ...process.env, ...this.spec.env },
    });
    closeSync(log);
    this.child = child;
    this.exited = once(child, 'exit');
    const died = this.exited.then(() => {
      throw new Error(`${this.name} exited during start-up; log tail:\n${this.logTail()}`);
    });
    await Promise.race([
      retryUntil(this.name, this.spec.startTimeoutMs ?? 30_000, async () => {
        if (!this.isRunning()) throw new Error('not running');
        await this.spec.probe();
      }),
      died,
    ]).catch((error: unknown) => {
      child.kill('SIGKILL');
      throw error;
    });
    died.catch(() => undefined);
  }

  async stop(): Promise<void> {
    await this.signalAndWait('SIGTERM', 15_000);
  }

  async pause(): Promise<void> {
    const pid = this.pid();
    if (pid === undefined) throw new Error(`${this.name} is not running`);
    await stopProcess(pid);
  }

  async resume(): Promise<void> {
    const pid = this.pid();
    if (pid !== undefined) process.kill(pid, 'SIGCONT');
  }

  async kill(): Promise<void> {
    await this.signalAndWait('SIGKILL', 5_000);
  }

  private async signalAndWait(signal: NodeJS.Signals, boundMs: number): Promise<void> {
    if (!this.isRunning() || !this.child) return;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), boundMs);
    await this.exited;
    clearTimeout(timer);
  }

  private logTail(): string {
    try {
      return readFileSync(this.spec.logFile, 'utf8').split('\n').slice(-15).join('\n');
    } catch {
      return '(no log)';
    }
  }
}
