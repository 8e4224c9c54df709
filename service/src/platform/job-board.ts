import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { HonoAdapter } from '@bull-board/hono';
import { serveStatic } from '@hono/node-server/serve-static';
import type { Queue } from 'bullmq';
import type { Hono } from 'hono';
import type { JobsConfig } from '../config.js';

export const JOB_BOARD_PATH = '/queues';

/**
 * Bull Board, for the worker's management port only (never the public port: it shows job data).
 * Read-only unless JOBS_BOARD=read-write: the board's own API refuses retries, removals and pauses
 * then, not just its buttons, so redrives go through `npm run jobs`, which leaves a trace in the
 * shell history of whoever ran it.
 */
export function jobBoard(queues: Queue[], mode: Exclude<JobsConfig['board'], 'off'>): Hono {
  const serverAdapter = new HonoAdapter(serveStatic).setBasePath(JOB_BOARD_PATH);
  createBullBoard({
    queues: queues.map((queue) => new BullMQAdapter(queue, { readOnlyMode: mode === 'read-only' })),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'Parley jobs' } },
  });
  return serverAdapter.registerPlugin();
}
