/**
 * `npm run devstack`: starts the real dependencies, prints the service's environment (as shell
 * exports) and waits; Ctrl-C or SIGTERM stops everything. `--check` starts, reports the times, stops.
 */
import { startDevstack } from './index.js';

const checkOnly = process.argv.includes('--check');
const startedAt = performance.now();
const stack = await startDevstack({ cleanupOnExit: true }).catch((error: unknown) => {
  // What to install or fix is the whole message; a stack trace would only bury it.
  process.stderr.write(`devstack: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
const startMs = performance.now() - startedAt;

process.stdout.write(`# devstack up (${stack.provider}) in ${startMs.toFixed(0)} ms\n`);
for (const [name, value] of Object.entries(stack.env())) process.stdout.write(`export ${name}='${value}'\n`);

const shutdown = async () => {
  const stoppingAt = performance.now();
  await stack.stop();
  process.stdout.write(`# devstack stopped in ${(performance.now() - stoppingAt).toFixed(0)} ms\n`);
  process.exit(0);
};

if (checkOnly) await shutdown();
else {
  process.stdout.write('# Ctrl-C stops it\n');
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}
