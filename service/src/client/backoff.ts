export interface Backoff {
  /** The first delay's ceiling; each further attempt doubles it. */
  baseMs: number;
  /** No delay is longer. */
  maxMs: number;
}

/**
 * Exponential backoff with "equal jitter": half the delay is fixed and half random, so clients
 * that failed together spread out, yet none comes back at once to a server that just failed.
 */
export function backoffDelayMs(attempt: number, { baseMs, maxMs }: Backoff, random = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** attempt);
  return ceiling / 2 + (random() * ceiling) / 2;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
