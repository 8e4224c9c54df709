/**
 * A dependency the process needs. `required` ones gate the first readiness only: see
 * `createReadiness`. The others are reported and never change the answer.
 */
export interface DependencyCheck {
  name: string;
  required: boolean;
  check: (timeoutMs: number) => Promise<unknown>;
}

export interface CheckResult {
  status: 'up' | 'down';
  required: boolean;
  ms: number;
  error?: string;
}

/**
 * starting: a required dependency has not answered yet since the process started (503).
 * ready: every check is up. degraded: something is down, and the process answers for it (200).
 * draining: the process is shutting down (503).
 */
export interface Readiness {
  status: 'starting' | 'ready' | 'degraded' | 'draining';
  checks: Record<string, CheckResult>;
}

async function runCheck(check: DependencyCheck, timeoutMs: number): Promise<CheckResult> {
  const startedAt = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      check.check(timeoutMs),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return { status: 'up', required: check.required, ms: Math.round(performance.now() - startedAt) };
  } catch (error) {
    return {
      status: 'down',
      required: check.required,
      ms: Math.round(performance.now() - startedAt),
      error: (error as Error).message || String(error),
    };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Readiness says whether this pod can serve, not whether every shared dependency is up.
 *
 * Until each required dependency has answered once since start, it cannot: a pod with a wrong
 * password or a blocked network path must not take the place of working pods in a rollout. After
 * that, an outage of MySQL or Redis is the same for every pod, and pulling them all from the
 * endpoints would only swap the app's own answers (503 problem+json with Retry-After from an open
 * circuit, replica reads, live sockets, rate limits that fall back per process) for the proxy's
 * bare 502/503 to everything. So the pod stays ready, and reports the outage as `degraded`.
 */
export function createReadiness(checks: DependencyCheck[], timeoutMs: number) {
  const answeredOnce = new Set<string>();
  return async function assess(): Promise<Readiness> {
    const results = await Promise.all(checks.map((check) => runCheck(check, timeoutMs)));
    const byName = Object.fromEntries(checks.map((check, i) => [check.name, results[i]!]));
    for (const [name, result] of Object.entries(byName)) if (result.status === 'up') answeredOnce.add(name);
    const started = checks.every((check) => !check.required || answeredOnce.has(check.name));
    const allUp = results.every((result) => result.status === 'up');
    return { status: !started ? 'starting' : allUp ? 'ready' : 'degraded', checks: byName };
  };
}
