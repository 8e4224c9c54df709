import { loadConfigOrExit } from './config.js';
import { runJobsCommand } from './jobs-cli.js';

// `npm run jobs -- <command>` locally, `jobs <command>` in the image (kubectl exec into a worker
// pod): the worker's own configuration, so it reaches the same Redis, MySQL and S3.
// Usage is printed without a configuration; a command then needs the worker's.
process.exitCode = await runJobsCommand(
  () => loadConfigOrExit('worker'),
  process.argv.slice(2),
  (line) => process.stdout.write(`${line}\n`),
  (line) => process.stderr.write(`${line}\n`),
);
