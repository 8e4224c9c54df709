import type { Context, ErrorHandler, NotFoundHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import {
  Conflict,
  DomainError,
  Forbidden,
  IdempotencyKeyReused,
  NotFound,
  NotPropagated,
  Unauthenticated,
  Unprocessable,
} from '../domain/errors.js';
import { DependencyUnavailable } from '../platform/breakers.js';
import { ProblemError, problemResponse } from './problem.js';
import type { AppEnv } from './types.js';

interface ProblemShape {
  status: ContentfulStatusCode;
  title: string;
  headers?: (error: DomainError) => Record<string, string>;
}

// Every domain refusal's HTTP face, in one table: the status, the title and any header a client
// needs to act on it. The problem type is the error's own code.
const DOMAIN_PROBLEMS: [new (...args: never[]) => DomainError, ProblemShape][] = [
  [NotFound, { status: 404, title: 'Not Found' }],
  [Forbidden, { status: 403, title: 'Forbidden' }],
  [
    Unauthenticated,
    { status: 401, title: 'Unauthorized', headers: () => ({ 'WWW-Authenticate': 'Bearer realm="parley"' }) },
  ],
  [Conflict, { status: 409, title: 'Conflict' }],
  [IdempotencyKeyReused, { status: 422, title: 'Idempotency-Key reused' }],
  [Unprocessable, { status: 422, title: 'Unprocessable Content' }],
  [
    NotPropagated,
    {
      status: 503,
      title: 'Service Unavailable',
      headers: (error) => ({ 'Retry-After': String((error as NotPropagated).retryAfterSeconds) }),
    },
  ],
];

/** The problem+json a domain refusal answers with; undefined for a kind this table lacks (a bug). */
export function problemFromDomainError(error: DomainError): ProblemError | undefined {
  const shape = DOMAIN_PROBLEMS.find(([kind]) => error instanceof kind)?.[1];
  return (
    shape &&
    new ProblemError(shape.status, error.code, shape.title, error.message, {}, shape.headers?.(error))
  );
}

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
  const refusal = error instanceof DomainError ? problemFromDomainError(error) : undefined;
  if (refusal) return problemResponse(c, refusal);
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
