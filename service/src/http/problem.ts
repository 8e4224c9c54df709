import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';

/**
 * RFC 9457 problem details. HTTP middleware throws these for what only HTTP knows (a missing header,
 * a body of the wrong type); domain code throws DomainErrors, which http/errors.ts maps to these.
 */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  [extension: string]: unknown;
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';
const problemType = (slug: string) => `urn:parley:problem:${slug}`;

export class ProblemError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly slug: string,
    readonly title: string,
    detail: string,
    readonly extensions: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
    this.name = 'ProblemError';
  }

  toProblem(instance?: string): Problem {
    return {
      type: problemType(this.slug),
      title: this.title,
      status: this.status,
      detail: this.message,
      ...(instance ? { instance } : {}),
      ...this.extensions,
    };
  }
}

export interface FieldError {
  /** Where the bad value is, e.g. `body.username` or `query.limit`. */
  path: string;
  message: string;
}

export class ValidationFailed extends ProblemError {
  constructor(detail: string, errors: FieldError[]) {
    super(400, 'validation-failed', 'Request validation failed', detail, { errors });
  }
}

export function problemResponse(
  c: Context,
  problem: ProblemError,
  extraHeaders: Record<string, string> = {},
) {
  const body = problem.toProblem(c.req.path);
  return c.body(JSON.stringify(body), problem.status, {
    'Content-Type': PROBLEM_CONTENT_TYPE,
    ...problem.headers,
    ...extraHeaders,
  });
}
