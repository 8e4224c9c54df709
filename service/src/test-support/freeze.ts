import { stopProcess } from '../../devstack/local/local-server.js';
import type { ServerControl } from '../../devstack/types.js';

/**
 * Freezes a server as a hung node is (connections open, nothing answered) and returns the function
 * that thaws it. Give it the server: `pause()` works with either devstack provider (SIGSTOP until
 * the kernel reports the process stopped, or `docker pause`). A bare pid, local servers only, is
 * still accepted for older callers.
 */
export async function freeze(target: ServerControl | number): Promise<() => Promise<void>> {
  if (typeof target === 'number') {
    await stopProcess(target);
    return () => Promise.resolve(void process.kill(target, 'SIGCONT'));
  }
  await target.pause();
  return () => target.resume();
}
