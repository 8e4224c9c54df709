import { readFileSync } from 'node:fs';

/**
 * SIGSTOPs a server and waits until the kernel reports it stopped: kill() returns before that, and
 * a thread already running on another core can still answer a query in between.
 */
export async function freeze(pid: number): Promise<() => void> {
  process.kill(pid, 'SIGSTOP');
  const deadline = Date.now() + 5_000;
  for (;;) {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('T')) break;
    if (Date.now() > deadline) throw new Error(`process ${pid} did not stop`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return () => process.kill(pid, 'SIGCONT');
}
