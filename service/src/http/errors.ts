import type { Context, ErrorHandler, NotFoundHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { DependencyUnavailable } from '../platform/breakers.js';
import { ProblemError, problemResponse } from './problem.js';
import type { AppEnv } from './types.js';

// Hono's own exceptions carry terse messages; these say what the client should change.
function fromHttpException(error: HTTPException): ProblemError {
  if (error.status === 400 && /malformed json/i.test(error.message)) {
    return new ProblemError(400, 'malformed-json', 'Malformed JSON', 'the request body is not valid JSON');
  }
  if (error.status === 413) {
    return new ProblemError(413, 'payload-too-large', 'Payload Too Large', error.message);
  }
  return new ProblemError(
    error.status as ContentfulStatusCode,
    'http-error',
    error.message || 'HTTP error',
    error.message || `request failed with status ${error.status}`,
  );
}

export const handleError: ErrorHandler<AppEnv> = (error, c: Context<AppEnv>) => {
  if (error instanceof ProblemError) return problemResponse(c, error);
  if (error instanceof DependencyUnavailable) {
    c.get('log')?.warn({ dependency: error.dependency, err: error.cause }, 'dependency unavailable');
    return problemResponse(
      c,
      new ProblemError(
        503,
        'dependency-unavailable',
        'Service Unavailable',
        `${error.dependency} is unavailable; retry after ${error.retryAfterSeconds} s`,
        { dependency: error.dependency },
        { 'Retry-After': String(error.retryAfterSeconds) },
      ),
    );
  }
  if (error instanceof HTTPException) return problemResponse(c, fromHttpException(error));
  // Unexpected: log everything, tell the client nothing internal (no message, no stack).
  c.get('log')?.error({ err: error }, 'unhandled error');
  return problemResponse(
    c,
    new ProblemError(
      500,
      'internal-error',
      'Internal Server Error',
      `an unexpected error occurred; request id ${c.get('requestId')}`,
      {
        requestId: c.get('requestId'),
      },
    ),
  );
};

export const handleNotFound: NotFoundHandler<AppEnv> = (c) =>
  problemResponse(
    c,
    new ProblemError(404, 'not-found', 'Not Found', `no route matches ${c.req.method} ${c.req.path}`),
  );
