import { existsSync } from 'node:fs';
import { loadConfigOrExit } from './config.js';
import { runJobsCommand } from './jobs-cli.js';

// `npm run jobs -- <command>` locally, `jobs <command>` in the image (kubectl exec into a worker
// pod): the worker's own configuration, so it reaches the same Redis, MySQL and S3.
// Beside `npm run dev`, the stack it started, unless the environment already names one.
const devstackEnv = new URL('../.devstack.env', import.meta.url);
if (process.env.MYSQL_HOST === undefined && existsSync(devstackEnv)) process.loadEnvFile(devstackEnv);

// Usage is printed without a configuration; a command then needs the worker's.
const code = await runJobsCommand(
  () => loadConfigOrExit('worker'),
  process.argv.slice(2),
  (line) => process.stdout.write(`${line}\n`),
  (line) => process.stderr.write(`${line}\n`),
);
// Everything the command opened is closed by now, but with Redis behind Sentinel something still
// holds the event loop open afterwards: exit explicitly, as the servers do on their signals.
process.stdout.write('', () => process.exit(code));
