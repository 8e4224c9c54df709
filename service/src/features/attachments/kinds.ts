import { z } from 'zod';
import { defineJob } from '../../platform/jobs.js';
import { QUEUES } from '../../platform/queues.js';

/**
 * Checks an uploaded object against its declaration. One job per attachment: the id is derived
 * from it, so a repeated /complete collapses into the job already there (BullMQ keeps a finished
 * job's id for a while, and the verification itself is idempotent after that). BullMQ refuses `:`
 * in a custom id, hence the dash.
 */
export const verifyAttachmentJob = defineJob({
  queue: QUEUES.attachments,
  name: 'verify',
  data: z.object({ attachmentId: z.uuid() }),
  options: (data) => ({ jobId: `verify-${data.attachmentId}` }),
});

/** Removes uploads never completed and old rejected ones (row and object). */
export const sweepAttachmentsJob = defineJob({
  queue: QUEUES.attachments,
  name: 'sweep',
  data: z.object({}),
});
