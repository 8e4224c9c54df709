import { missingLocalBinaries, startLocalDevstack } from './local/stack.js';
import type { Devstack, DevstackOptions } from './types.js';

export type * from './types.js';

export type ProviderName = 'local' | 'containers';

/** A runtime that answers in milliseconds when there is none; "docker is on PATH" proves nothing. */
async function containerRuntimeAnswers(): Promise<boolean> {
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    await getContainerRuntimeClient();
    return true;
  } catch {
    return false;
  }
}

/**
 * PARLEY_DEVSTACK=local|containers forces a provider; otherwise containers when a runtime answers,
 * local binaries when not. Throws, naming what to install, when neither can run.
 */
export async function chooseProvider(forced = process.env.PARLEY_DEVSTACK): Promise<ProviderName> {
  if (forced !== undefined && forced !== '' && forced !== 'local' && forced !== 'containers') {
    throw new Error(`PARLEY_DEVSTACK must be "local" or "containers", not "${forced}"`);
  }
  if (forced === 'containers') {
    if (await containerRuntimeAnswers()) return 'containers';
    throw new Error('PARLEY_DEVSTACK=containers, but no container runtime answers (start Docker or Podman)');
  }
  const missing = missingLocalBinaries();
  if (forced === 'local') {
    if (missing.length === 0) return 'local';
    throw new Error(`PARLEY_DEVSTACK=local, but these are missing: ${missing.join(', ')}`);
  }
  if (await containerRuntimeAnswers()) return 'containers';
  if (missing.length === 0) return 'local';
  throw new Error(
    `the devstack needs a container runtime (Docker or Podman) or local binaries; missing: ${missing.join(', ')}`,
  );
}

export async function startDevstack(options: DevstackOptions = {}): Promise<Devstack> {
  const provider = await chooseProvider();
  if (provider === 'containers') {
    const { startContainerDevstack } = await import('./containers/stack.js');
    return startContainerDevstack(options);
  }
  return startLocalDevstack(options);
}
