import { hash } from 'node:crypto';
import type { Context, MiddlewareHandler, Next } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Redis } from 'ioredis';
import { IdempotencyKeyReused } from '../domain/errors.js';
import type { Breaker } from '../platform/breakers.js';
import type { RedisWrite } from '../platform/redis-write.js';
import { ProblemError } from './problem.js';
import type { AppEnv } from './types.js';

interface InFlight {
  state: 'in-flight';
  fingerprint: string;
}
interface Completed {
  state: 'done';
  fingerprint: string;
  status: number;
  body: string;
  contentType: string;
}
type Record_ = InFlight | Completed;

export interface IdempotencyOptions {
  redis: Redis;
  breaker: Breaker;
  /** How long keys are kept (the draft's recommendation: 24 h). */
  ttlSeconds?: number;
  /** How long a duplicate waits for the original to finish before it gets 409. */
  waitMs?: number;
  /**
   * How long the claim of a request still running lasts. It must outlive any request (the breakers
   * end every dependency call within seconds); it only matters when the process holding it dies or
   * cannot record the answer, and then the key is usable again this much later instead of answering
   * 409 for a whole day.
   */
  inFlightSeconds?: number;
}

// What a key may be, stated once for the check below and for the OpenAPI document.
const KEY_CHARACTERS = '[!-~]'; // visible ASCII
const KEY_MAX_LENGTH = 255;
const KEY_RULE = `1 to ${KEY_MAX_LENGTH} visible ASCII characters`;
const KEY_PATTERN = new RegExp(`^${KEY_CHARACTERS}{1,${KEY_MAX_LENGTH}}$`);

/**
 * The header as a route documents it in OpenAPI. The middleware below is what checks it (before the
 * route's validators run), so routes list it as a plain parameter rather than a zod `headers`
 * schema: Hono's header validator copies every request header into a web `Headers` object, which
 * undici validates one by one — the largest single cost of a post's validation
 * (bench/profile-room-read.ts post).
 */
export const IDEMPOTENCY_KEY_PARAMETER = {
  name: 'Idempotency-Key',
  in: 'header',
  required: true,
  description: `unique per request, e.g. a UUID; a retry reuses it (${KEY_RULE})`,
  schema: { type: 'string', minLength: 1, maxLength: KEY_MAX_LENGTH, pattern: `^${KEY_CHARACTERS}+$` },
} as const;

/** What the middleware hands the handler behind it (`c.get('idempotentRequest')`). */
export interface IdempotentRequest {
  /** The request's Idempotency-Key, checked. */
  readonly key: string;
  /**
   * Adds this request's answer, as its record for replay, to a Redis write the handler sends before
   * it answers (`status` must be the one it answers with), so the record travels with the handler's
   * own writes instead of in a write of its own after them. A handler that does not call it has its
   * answer read back from the Response and recorded after it.
   */
  recordIn(write: RedisWrite, status: number, body: unknown): void;
}

/**
 * Idempotency-Key (draft-ietf-httpapi-idempotency-key-header), scoped per user, kept in Redis:
 * - same key, same request: the stored response is replayed, same status and body, marked
 *   `Idempotent-Replayed: true`; a duplicate that arrives while the original is still running waits
 *   up to `waitMs` for its result, then gets 409;
 * - same key, different request: 422.
 * Responses of 5xx are not stored, so the client may retry. Without Redis the request goes through
 * and the handler's own unique key (MySQL) stops a duplicate row, as it does for a retry after the
 * claim of a request whose process died has lapsed (`inFlightSeconds`).
 */
export function idempotency(options: IdempotencyOptions): MiddlewareHandler<AppEnv> {
  const ttlSeconds = options.ttlSeconds ?? 24 * 3_600;
  const waitMs = options.waitMs ?? 2_000;
  const inFlightSeconds = options.inFlightSeconds ?? 60;
  const run = <T>(call: () => Promise<T>) => options.breaker.run(call);

  return async (c, next) => {
    const key = c.req.header('idempotency-key');
    if (key === undefined) {
      throw new ProblemError(
        400,
        'idempotency-key-missing',
        'Idempotency-Key required',
        'send an Idempotency-Key header (e.g. a UUID) so a retry cannot post twice',
      );
    }
    if (!KEY_PATTERN.test(key)) {
      throw new ProblemError(
        400,
        'idempotency-key-invalid',
        'Invalid Idempotency-Key',
        `the Idempotency-Key must be ${KEY_RULE}`,
      );
    }
    const body = await c.req.text();
    // crypto.hash: one call and no Hash object, cheaper than a createHash() chain on a hot path.
    const fingerprint = hash('sha256', `${c.req.method} ${c.req.path}\n${body}`, 'hex');
    const redisKey = `parley:idem:${c.get('principal').userId}:${hash('sha256', `${c.req.method} ${c.req.path} ${key}`, 'hex')}`;

    const claim = () =>
      run(() =>
        options.redis.set(
          redisKey,
          JSON.stringify({ state: 'in-flight', fingerprint } satisfies InFlight),
          'EX',
          inFlightSeconds,
          'NX',
        ),
      );
    const deadline = Date.now() + waitMs;
    for (;;) {
      let claimed: boolean;
      try {
        claimed = (await claim()) === 'OK';
      } catch (error) {
        c.get('log').warn(
          { err: error },
          'idempotency store unavailable; relying on the database unique key',
        );
        c.set('idempotentRequest', { key, recordIn: () => undefined });
        await next();
        return;
      }
      if (claimed) {
        await runAndRecord(c, next, key, redisKey, fingerprint);
        return;
      }
      // Another request holds the key: replay its answer, or claim the key once it lets go.
      if (await replayWhenDone(c, redisKey, fingerprint, deadline)) return;
    }
  };

  /** Runs the handler under the claim and records its answer (a 5xx releases the key instead). */
  async function runAndRecord(
    c: Context<AppEnv>,
    next: Next,
    key: string,
    redisKey: string,
    fingerprint: string,
  ) {
    const recordValue = (status: number, body: string, contentType: string) =>
      JSON.stringify({ state: 'done', fingerprint, status, body, contentType } satisfies Completed);
    let recordedByHandler: number | undefined;
    c.set('idempotentRequest', {
      key,
      recordIn: (write, status, body) => {
        write.commands.set(
          redisKey,
          recordValue(status, JSON.stringify(body), 'application/json'),
          'EX',
          ttlSeconds,
        );
        recordedByHandler = status;
      },
    });
    await next();
    const response = c.res;
    if (response.status >= 500) {
      await run(() => options.redis.del(redisKey)).catch(() => undefined);
      return;
    }
    if (recordedByHandler === response.status) return;
    // Errors, answered by the error handler, are read back from the response.
    const body = await response.clone().text();
    const contentType = response.headers.get('content-type') ?? 'application/json';
    await run(() =>
      options.redis.set(redisKey, recordValue(response.status, body, contentType), 'EX', ttlSeconds),
    ).catch(() => undefined);
  }

  /**
   * Waits for the request holding the key. True once its answer is replayed on `c`; false when it
   * let go of the key without one (it failed with a 5xx), so that the caller competes to claim it:
   * of several duplicates waiting, one runs and the others replay its answer. 422 for a different
   * request under the same key, 409 past the deadline.
   */
  async function replayWhenDone(
    c: Context<AppEnv>,
    redisKey: string,
    fingerprint: string,
    deadline: number,
  ): Promise<boolean> {
    for (;;) {
      const raw = await run(() => options.redis.get(redisKey)).catch(() => null);
      const record = raw === null ? undefined : (JSON.parse(raw) as Record_);
      if (record && record.fingerprint !== fingerprint) throw new IdempotencyKeyReused();
      if (record?.state === 'done') {
        // Built by the context, so the headers set so far (request id, rate limit, security) stay.
        c.res = c.body(record.body, record.status as ContentfulStatusCode, {
          'Content-Type': record.contentType,
          'Idempotent-Replayed': 'true',
        });
        return true;
      }
      if (!record) return false;
      if (Date.now() >= deadline) {
        throw new ProblemError(
          409,
          'idempotency-key-in-flight',
          'Request in progress',
          'a request with this Idempotency-Key is still being processed; retry shortly',
          {},
          { 'Retry-After': '1' },
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}
