/** A dependency the process needs; `required: false` ones are reported but do not fail readiness. */
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

export interface Readiness {
  status: 'ready' | 'not-ready' | 'draining';
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

/** Runs every check in parallel, each within the deadline. */
export async function assessReadiness(checks: DependencyCheck[], timeoutMs: number): Promise<Readiness> {
  const results = await Promise.all(checks.map((check) => runCheck(check, timeoutMs)));
  const byName = Object.fromEntries(checks.map((check, i) => [check.name, results[i]!]));
  const requiredDown = results.some((result) => result.required && result.status === 'down');
  return { status: requiredDown ? 'not-ready' : 'ready', checks: byName };
}
