import * as z from 'zod';

/** An `application/problem+json` answer (RFC 9457), as every API error is sent. */
export const Problem = z.looseObject({
  type: z.string(),
  title: z.string(),
  status: z.int(),
  detail: z.string().optional(),
});
export type Problem = z.infer<typeof Problem>;

/** A call the API refused or failed: the problem it answered with, and when it may be retried. */
export class ParleyError extends Error {
  override readonly name = 'ParleyError';
  readonly status: number;
  readonly type: string;
  readonly title: string;
  readonly detail: string;
  /** Seconds to wait before retrying (the Retry-After header); undefined when the answer has none. */
  readonly retryAfter: number | undefined;

  constructor(
    readonly problem: Problem,
    retryAfter?: number,
  ) {
    super(`${problem.status} ${problem.title}${problem.detail ? `: ${problem.detail}` : ''}`);
    this.status = problem.status;
    this.type = problem.type;
    this.title = problem.title;
    this.detail = problem.detail ?? '';
    this.retryAfter = retryAfter;
  }

  static async fromResponse(response: Response): Promise<ParleyError> {
    const text = await response.text();
    const retryAfter = parseRetryAfter(response.headers.get('retry-after'));
    const problem = Problem.safeParse(parseJson(text));
    if (problem.success) return new ParleyError(problem.data, retryAfter);
    // Not from the API itself (a proxy's 502 page, say): keep what it said as the detail.
    return new ParleyError(
      {
        type: 'about:blank',
        title: response.statusText,
        status: response.status,
        detail: text.slice(0, 500),
      },
      retryAfter,
    );
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined; // not JSON: the caller keeps the text
  }
}

/** Retry-After is delay-seconds or an HTTP date (RFC 9110 §10.2.3). */
function parseRetryAfter(value: string | null): number | undefined {
  if (value === null) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, (at - Date.now()) / 1000);
}
