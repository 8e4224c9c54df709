import type { MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { ProblemError } from './problem.js';

/** The methods whose requests may carry a body. */
export const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

/**
 * 413 for a body over `maxBytes`. A declared Content-Length is checked from the header alone (Node's
 * parser never delivers more than it declares); only a chunked body is counted as it streams, by
 * Hono's bodyLimit. Touching `raw.body` makes @hono/node-server build a fetch Request and a web
 * stream for the body, which costs more than the rest of a cached read (bench/profile-room-read.ts),
 * so a GET never touches it.
 */
export function limitRequestBody(maxBytes: number): MiddlewareHandler {
  const tooLarge = () =>
    new ProblemError(
      413,
      'payload-too-large',
      'Payload Too Large',
      `request bodies are limited to ${maxBytes} bytes`,
    );
  const countStreamed = bodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw tooLarge();
    },
  });
  return (c, next) => {
    if (!BODY_METHODS.has(c.req.method)) return next();
    const length = c.req.header('content-length');
    if (length !== undefined && c.req.header('transfer-encoding') === undefined) {
      if (Number(length) > maxBytes) throw tooLarge();
      return next();
    }
    return countStreamed(c, next);
  };
}
