import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

const SERVICE_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface ServiceProcess {
  child: ChildProcess;
  /** Every log line the process wrote, parsed from its JSON stdout. */
  logs: Record<string, unknown>[];
  stderr: () => string;
  /** Ports from the "listening"/"started" log line. */
  ports: Record<string, number>;
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Runs a real entry point (src/main-api.ts or src/main-worker.ts) as its own process, as
 * Kubernetes would, and resolves once it logs that it is listening.
 */
export async function startServiceProcess(
  entry: 'main-api' | 'main-worker',
  env: Record<string, string>,
): Promise<ServiceProcess> {
  // `node --import tsx`, not the tsx CLI: one process, so signals reach the service itself.
  const child = spawn(process.execPath, ['--import', 'tsx', `src/${entry}.ts`], {
    cwd: SERVICE_ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      ...env,
      LOG_LEVEL: env.LOG_LEVEL === 'silent' ? 'info' : (env.LOG_LEVEL ?? 'info'),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  let buffered = '';
  // 'close', not 'exit': it fires after stdout is drained, so the last log lines are in `logs`.
  const exited = once(child, 'close').then(([code]) => code as number | null);
  const ready = new Promise<Record<string, number>>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        try {
          const entryLog = JSON.parse(line) as Record<string, unknown>;
          logs.push(entryLog);
          if (entryLog.msg === 'api listening' || entryLog.msg === 'worker started') {
            resolve(
              Object.fromEntries(
                Object.entries(entryLog).filter((pair): pair is [string, number] => /port$/i.test(pair[0])),
              ),
            );
          }
        } catch {
          stderr += `${line}\n`; // not JSON: tsx or Node printed it
        }
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    void exited.then((code) =>
      reject(new Error(`${entry} exited with ${code} before listening:\n${stderr}`)),
    );
  });
  const timeout = setTimeout(() => child.kill('SIGKILL'), 60_000);
  try {
    const ports = await ready;
    return {
      child,
      logs,
      stderr: () => stderr,
      ports,
      exited,
      stop: async (signal = 'SIGTERM') => {
        if (child.exitCode === null && child.signalCode === null) child.kill(signal);
        return exited;
      },
    };
  } finally {
    clearTimeout(timeout);
  }
}
