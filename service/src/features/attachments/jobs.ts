import type { S3Client } from '@aws-sdk/client-s3';
import type { Config } from '../../config.js';
import type { JobSchedule } from '../../platform/job-workers.js';
import { handle, type JobHandler } from '../../platform/jobs.js';
import type { Logger } from '../../platform/logger.js';
import type { Database } from '../../platform/mysql.js';
import { sweepAttachmentsJob, verifyAttachmentJob } from './kinds.js';
import { attachmentsRepository, type AttachmentsRepository } from './repository.js';
import { attachmentStorage, type AttachmentStorage } from './storage.js';

/** What the attachment jobs need; the worker's WorkerDeps has all of it. */
export interface AttachmentsJobDeps {
  db: Database;
  s3: S3Client;
  config: Pick<Config, 'attachments' | 's3'>;
  logger: Logger;
}

export type Verdict =
  | { outcome: 'ready' }
  | { outcome: 'rejected'; reason: string }
  /** Settled before this run (a retry or a duplicate), or swept: nothing was changed. */
  | { outcome: 'unchanged'; status: 'ready' | 'rejected' | 'gone' };

interface Parts {
  repository: AttachmentsRepository;
  storage: AttachmentStorage;
}

/**
 * Reads the stored object back and holds it to the declaration: its size and Content-Type (HEAD),
 * then its SHA-256 over the whole content, streamed. Ready when all three match; otherwise
 * rejected with the reason, and the object deleted. Safe to run twice: only a pending row changes
 * (the first verdict stands), and a rejected one only has its object deleted again, in case the
 * run that rejected it died before it could.
 */
export async function verifyAttachment(
  { repository, storage }: Parts,
  attachmentId: string,
  signal?: AbortSignal,
): Promise<Verdict> {
  const row = await repository.find(attachmentId);
  if (!row) return { outcome: 'unchanged', status: 'gone' };
  if (row.status === 'rejected') {
    await storage.remove(row.objectKey);
    return { outcome: 'unchanged', status: 'rejected' };
  }
  if (row.status === 'ready') return { outcome: 'unchanged', status: 'ready' };

  const reject = async (reason: string): Promise<Verdict> => {
    // Marked first, then deleted: a run that dies in between leaves a rejected row, whose object
    // the next run (or the sweep) deletes, never an object that a pending row claims.
    if (!(await repository.markRejected(row.id, reason))) return unchangedNow();
    await storage.remove(row.objectKey);
    return { outcome: 'rejected', reason };
  };
  // Another run settled it first (or the sweep removed it): its verdict stands.
  const unchangedNow = async (): Promise<Verdict> => {
    const status = (await repository.find(attachmentId))?.status;
    return { outcome: 'unchanged', status: status === 'ready' || status === 'rejected' ? status : 'gone' };
  };

  const stored = await storage.head(row.objectKey);
  if (!stored) return reject('no object was uploaded');
  if (stored.size !== row.sizeBytes) {
    return reject(`the upload is ${stored.size} bytes, not the ${row.sizeBytes} declared`);
  }
  if (stored.contentType !== row.contentType) {
    return reject(`the upload is ${stored.contentType ?? 'untyped'}, not the ${row.contentType} declared`);
  }
  const { sha256, bytes } = await storage.digest(row.objectKey, stored.etag, signal);
  if (bytes !== row.sizeBytes)
    return reject(`the upload is ${bytes} bytes, not the ${row.sizeBytes} declared`);
  if (sha256 !== row.sha256) return reject('its SHA-256 is not the one declared');
  if (!(await repository.markReady(row.id))) return unchangedNow();
  return { outcome: 'ready' };
}

/** How many rows one sweep handles at most: a backlog is worked off over several runs. */
const SWEEP_LIMIT = 1_000;

/**
 * Removes uploads still pending after the pending TTL (never uploaded, or never completed), and
 * rejected ones after the rejected TTL: the object, then the row. A stale pending row is first
 * marked rejected, so that a verification finishing meanwhile cannot make ready a row whose object
 * is being deleted, and a sweep that dies half-way leaves rejected rows the next one removes.
 */
export async function sweepAttachments(
  { repository, storage }: Parts,
  config: Config['attachments'],
  now = new Date(),
): Promise<{ abandoned: number; removed: number }> {
  const pendingBefore = new Date(now.getTime() - config.pendingTtlSeconds * 1000);
  const rejectedBefore = new Date(now.getTime() - config.rejectedTtlSeconds * 1000);
  let abandoned = 0;
  let removed = 0;
  for (const row of await repository.olderThan('pending', pendingBefore, SWEEP_LIMIT)) {
    if (!(await repository.markRejected(row.id, 'the upload was never completed'))) continue;
    abandoned++;
    await storage.remove(row.objectKey);
    if (await repository.deleteRejected(row.id)) removed++;
  }
  for (const row of await repository.olderThan('rejected', rejectedBefore, SWEEP_LIMIT)) {
    await storage.remove(row.objectKey);
    if (await repository.deleteRejected(row.id)) removed++;
  }
  return { abandoned, removed };
}

/** The attachment jobs for the worker: verification on demand, and the sweep on a schedule. */
export function attachmentsJobs(deps: AttachmentsJobDeps): {
  handlers: JobHandler[];
  schedules: JobSchedule[];
} {
  const parts: Parts = {
    repository: attachmentsRepository(deps.db),
    storage: attachmentStorage(deps.s3, deps.config.s3.attachmentsBucket),
  };
  return {
    handlers: [
      handle(verifyAttachmentJob, async ({ attachmentId }, _job, signal) => {
        const verdict = await verifyAttachment(parts, attachmentId, signal);
        deps.logger.info({ attachmentId, ...verdict }, 'attachment verified');
        return verdict;
      }),
      handle(sweepAttachmentsJob, async () => {
        const swept = await sweepAttachments(parts, deps.config.attachments);
        if (swept.removed + swept.abandoned > 0) deps.logger.info(swept, 'attachments swept');
        return swept;
      }),
    ],
    schedules: [
      { kind: sweepAttachmentsJob, data: {}, every: deps.config.attachments.sweepEveryMs },
    ] satisfies JobSchedule[],
  };
}
