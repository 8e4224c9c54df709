import type { ServerControl } from '../../devstack/types.js';

/**
 * Freezes a server as a hung node is (connections open, nothing answered) and returns the function
 * that thaws it. `pause()` works with either devstack provider (SIGSTOP until the kernel reports
 * the process stopped, or `docker pause`).
 */
export async function freeze(target: ServerControl): Promise<() => Promise<void>> {
  await target.pause();
  // Idempotent, so a test can thaw mid-way and again in its `finally`.
  let thawed: Promise<void> | undefined;
  return () => (thawed ??= target.resume());
}
