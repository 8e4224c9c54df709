import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { UnrecoverableError } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queuesFrom, type JobQueues } from './platform/jobs.js';
import { createQueue, createWorker, QUEUES } from './platform/queues.js';
import { adminQuery } from './test-support/admin-sql.js';
import { startTestStack, type TestStack } from './test-support/stack.js';
import { eventually } from './test-support/until.js';

const SERVICE_ROOT = fileURLToPath(new URL('..', import.meta.url));
let testStack: TestStack;
let jobs: JobQueues;

beforeAll(async () => {
  testStack = await startTestStack({ mysqlReplica: false, redisTopology: 'single' });
  jobs = queuesFrom((name) => createQueue(testStack.config, name));
  // Two dead letters on the attachments queue, made the way a worker makes them.
  const worker = createWorker<{ id: string }>(testStack.config, QUEUES.attachments, async (job) => {
    throw new UnrecoverableError(`object attachments/${job.data.id} is missing`);
  });
  await jobs.queue(QUEUES.attachments).add('verify', { id: 'a1' }, { jobId: 'verify-a1' });
  await jobs.queue(QUEUES.attachments).add('verify', { id: 'a2' }, { jobId: 'verify-a2' });
  await eventually(
    () => jobs.queue(QUEUES.attachments).getFailedCount(),
    (count) => count === 2,
  );
  await worker.close();
});
afterAll(async () => {
  await jobs?.close();
  await testStack?.stack.stop();
});

/** `npm run jobs -- <args>`, as an operator runs it: its exit code and what it printed. */
async function jobsCommand(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'src/main-jobs.ts', ...args],
      {
        cwd: SERVICE_ROOT,
        env: {
          PATH: process.env.PATH ?? '',
          ...testStack.env,
          LOG_LEVEL: 'info',
          BACKUP_ENCRYPTION_KEY: 'correct horse battery staple, for the CLI test',
        },
      },
    );
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

describe('npm run jobs', () => {
  it('lists the dead letters of every queue with their last error, as a table or as JSON', async () => {
    const listed = await jobsCommand('dead');
    expect(listed.code).toBe(0);
    const [header, ...rows] = listed.stdout.trim().split('\n');
    expect(header).toMatch(/^QUEUE\s+ID\s+NAME\s+ATTEMPTS\s+FAILED AT\s+LAST ERROR$/);
    expect(rows.sort()).toEqual([
      expect.stringMatching(
        /^attachments\s+verify-a1\s+verify\s+1\s+\S+Z\s+object attachments\/a1 is missing$/,
      ),
      expect.stringMatching(
        /^attachments\s+verify-a2\s+verify\s+1\s+\S+Z\s+object attachments\/a2 is missing$/,
      ),
    ]);

    const json = await jobsCommand('dead', 'attachments', '--json');
    expect(JSON.parse(json.stdout)).toHaveLength(2);
    expect((await jobsCommand('dead', 'backups')).stdout).toBe('no dead letters\n');
  });

  it('redrives one dead letter by id, then all of a queue', async () => {
    const one = await jobsCommand('redrive', 'attachments', 'verify-a1');
    expect(one).toMatchObject({ code: 0, stdout: 'redriven on attachments: verify-a1\n' });
    expect(await jobs.queue(QUEUES.attachments).getJobState('verify-a1')).toBe('waiting');

    const all = await jobsCommand('redrive', 'attachments', '--all');
    expect(all).toMatchObject({ code: 0, stdout: 'redriven on attachments: verify-a2\n' });
    expect((await jobsCommand('dead')).stdout).toBe('no dead letters\n');
  });

  it('says what is wrong with a command, and exits 2 for a usage mistake, 1 for a failure', async () => {
    const unknownQueue = await jobsCommand('dead', 'uploads');
    expect(unknownQueue.code).toBe(1);
    expect(unknownQueue.stderr).toContain(
      'jobs dead: no queue "uploads"; the queues are: maintenance, leaderboards, attachments, backups\n',
    );
    const notDead = await jobsCommand('redrive', 'attachments', 'verify-a1');
    expect(notDead.code).toBe(1);
    expect(notDead.stderr).toMatch(
      /jobs redrive: job verify-a1 on queue attachments is (waiting|active|completed)/,
    );

    const ambiguous = await jobsCommand('redrive', 'attachments', 'verify-a1', '--all');
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.stderr).toContain('usage: npm run jobs -- redrive <queue> <id | --all>');
    const unknown = await jobsCommand('vacuum');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^unknown command "vacuum"\n\nusage: npm run jobs -- <command>/);
    expect((await jobsCommand()).code).toBe(2);
    const help = await jobsCommand('help');
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/dead \[queue\] \[--json\]\s+lists the jobs that exhausted their attempts/);
  });

  it('backs up, lists the backup, restores it into the emptied database, and refuses a second time', async () => {
    const user = ['01950000-0000-7000-8000-000000000001', 'backed-up', 'hash'];
    await adminQuery(
      testStack.stack,
      'INSERT INTO users (id, username, password_hash) VALUES (?, ?, ?)',
      user,
    );
    const taken = await jobsCommand('backup');
    expect(taken.code, taken.stderr).toBe(0);
    expect(taken.stdout).toMatch(/^backed up 1 rows of \d+ tables from the primary to /);
    const key = /to (backups\/\d{4}\/\d{2}\/\d{2}\/\S+\.ndjson\.gz\.enc) \(/.exec(taken.stdout)?.[1];
    expect((await jobsCommand('backups')).stdout.startsWith(`${key}  `)).toBe(true);

    await adminQuery(testStack.stack, 'DELETE FROM users');
    const restored = await jobsCommand('restore', key!);
    expect(restored).toMatchObject({
      code: 0,
      stdout: `restored 1 rows of ${/of (\d+) tables/.exec(taken.stdout)![1]} tables from ${key} (key: BACKUP_ENCRYPTION_KEY)\n`,
    });
    expect(await adminQuery(testStack.stack, 'SELECT id, username, password_hash FROM users')).toEqual([
      { id: user[0], username: user[1], password_hash: user[2] },
    ]);

    const again = await jobsCommand('restore', key!);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/jobs restore: .*users/);
    expect((await jobsCommand('restore')).code).toBe(2);
  });
});
