import type { Context, MiddlewareHandler } from 'hono';
import { BODY_METHODS } from './body-limit.js';
import { ProblemError } from './problem.js';

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

/**
 * Over HTTP/1.1 a body is framed by Content-Length or Transfer-Encoding; with neither there is none
 * (a bare `curl -X POST`), though @hono/node-server still hands over an empty stream. A request
 * built in-process (no Node request behind it) has a body exactly when its `body` is set.
 */
function carriesBody(c: Context): boolean {
  const length = c.req.header('content-length');
  if (length !== undefined) return length !== '0';
  if (c.req.header('transfer-encoding') !== undefined) return true;
  const overHttp = (c.env as { incoming?: unknown } | undefined)?.incoming !== undefined;
  return !overHttp && c.req.raw.body !== null;
}

/**
 * A body that is not JSON gets 415 up front. Without this, the JSON validator would see an empty
 * object and report missing fields, which hides the real mistake from the client.
 */
export function requireJsonBody(): MiddlewareHandler {
  return (c, next) => {
    if (BODY_METHODS.has(c.req.method)) {
      const hasBody = carriesBody(c);
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
    return next();
  };
}
