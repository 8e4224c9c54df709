/** Retries `attempt` with a short backoff until it resolves or `deadlineMs` passes. */
export async function retryUntil<T>(what: string, deadlineMs: number, attempt: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  let lastError: unknown;
  for (let delay = 25; Date.now() < deadline; delay = Math.min(delay * 2, 250)) {
    try {
      return await attempt();
    } catch (error) {
      lastError = error;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
  throw new Error(`${what} not ready after ${deadlineMs} ms: ${(lastError as Error)?.message ?? lastError}`);
}
