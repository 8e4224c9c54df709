import { existsSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Guarantees that a stack leaves nothing behind, however its process ends:
 * - normal exit or an uncaught error: the `exit` hook SIGKILLs every server and removes the temp dir;
 * - SIGINT/SIGTERM/SIGHUP with no other handler: the same, then the signal's default action (a
 *   host with its own handler, like `npm run dev`, stops the stack itself);
 * - SIGKILL of this process: servers were spawned with PR_SET_PDEATHSIG (setpriv), so the kernel
 *   kills them; the orphaned temp dir is swept by the next stack (its owner pid is dead).
 */
export const STACK_DIR_PREFIX = 'parley-devstack-';

interface Resources {
  pids: () => number[];
  dir: string;
  beforeExit?: () => void;
}

const registered = new Set<Resources>();
let hooksInstalled = false;

function releaseSync(resources: Resources): void {
  resources.beforeExit?.();
  for (const pid of resources.pids()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // ESRCH: already gone, which is what we want.
    }
  }
  rmSync(resources.dir, { recursive: true, force: true });
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', () => {
    for (const resources of registered) releaseSync(resources);
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      // A host that handles the signal itself (npm run dev) stops the stack in order; the exit hook
      // above still covers it. Otherwise clean up and die of the signal as the default would.
      if (process.listenerCount(signal) > 1) return;
      process.off(signal, onSignal);
      for (const resources of registered) releaseSync(resources);
      registered.clear();
      process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

export function registerForCleanup(resources: Resources): () => void {
  installHooks();
  registered.add(resources);
  return () => registered.delete(resources);
}

/** True while a process with this pid exists (EPERM: it exists, owned by someone else). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes temp dirs of stacks whose owning process died without cleaning up (e.g. SIGKILL). */
export function sweepAbandonedStacks(root = tmpdir()): string[] {
  if (!existsSync(root)) return [];
  const swept: string[] = [];
  for (const entry of readdirSync(root)) {
    const match = new RegExp(`^${STACK_DIR_PREFIX}(\\d+)-`).exec(entry);
    if (!match || isAlive(Number(match[1]))) continue;
    rmSync(join(root, entry), { recursive: true, force: true });
    swept.push(entry);
  }
  return swept;
}
