import type { MiddlewareHandler } from 'hono';
import { ProblemError } from './problem.js';

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);
const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

/**
 * A body that is not JSON gets 415 up front. Without this, the JSON validator would see an empty
 * object and report missing fields, which hides the real mistake from the client.
 */
export function requireJsonBody(): MiddlewareHandler {
  return async (c, next) => {
    if (BODY_METHODS.has(c.req.method)) {
      const hasBody = c.req.raw.body !== null && c.req.header('content-length') !== '0';
      const contentType = c.req.header('content-type') ?? '';
      if (hasBody && !JSON_TYPE.test(contentType)) {
        throw new ProblemError(
          415,
          'unsupported-media-type',
          'Unsupported Media Type',
          `request bodies must be application/json, not ${contentType === '' ? 'untyped' : `"${contentType}"`}`,
          {},
          { 'Accept-Post': 'application/json' },
        );
      }
    }
    await next();
  };
}
