/**
 * The real Prometheus engine for the chart's rules and queries: `promtool` from Debian's
 * `prometheus` package (.ci/install-missing installs it), run on rule and test files written to a
 * temporary directory.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { find, spec } from './objects.js';
import type { K8sObject } from './render.js';

/** A rule as a PrometheusRule (and a Prometheus rule file) holds it. */
export interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
export interface RuleFile {
  groups: { name: string; rules: Rule[] }[];
}

/** A PrometheusRule's spec is a Prometheus rule file as it stands: what promtool reads. */
export function ruleFileOf(objects: K8sObject[], name = 'parley'): RuleFile {
  return spec<RuleFile>(find(objects, 'PrometheusRule', name));
}

/** One sample of a query's answer; `value` may be NaN. */
export interface Sample {
  labels: Record<string, string>;
  value: number;
}

/** A series in promtool's notation, e.g. `parley_queue_jobs{queue="backups",state="waiting"}`. */
export function series(name: string, labels: Record<string, string>): string {
  const matchers = Object.entries(labels).map(([label, value]) => `${label}=${JSON.stringify(value)}`);
  return `${name}{${matchers.join(',')}}`;
}

/**
 * promtool compares expected samples with `==`, so it can never expect NaN. An answer with NaN in it
 * is checked as two queries the engine answers with numbers: `(q) == (q)` keeps exactly the samples
 * that are numbers (NaN equals nothing), and `(q) != bool (q)` has every sample, 1 where it is NaN.
 */
export function expectAnswer(expr: string, evalTime: string, answer: Sample[]): Record<string, unknown>[] {
  const expSamples = (samples: Sample[]) =>
    samples.map((s) => ({ labels: series('', s.labels), value: s.value }));
  if (!answer.some((s) => Number.isNaN(s.value))) {
    return [{ expr, eval_time: evalTime, exp_samples: expSamples(answer) }];
  }
  return [
    {
      expr: `(${expr}) == (${expr})`,
      eval_time: evalTime,
      exp_samples: expSamples(answer.filter((s) => !Number.isNaN(s.value))),
    },
    {
      expr: `(${expr}) != bool (${expr})`,
      eval_time: evalTime,
      exp_samples: expSamples(answer.map((s) => ({ ...s, value: Number.isNaN(s.value) ? 1 : 0 }))),
    },
  ];
}

export interface PromtoolRun {
  passed: boolean;
  /** What promtool printed: on a failure, which test, what it expected and what it got. */
  output: string;
}

/** Writes `files` (name → text, or a value written as YAML) to a new directory, runs promtool there. */
async function promtool(args: string[], files: Record<string, string | object>): Promise<PromtoolRun> {
  const dir = await mkdtemp(join(tmpdir(), 'parley-promtool-'));
  try {
    for (const [name, content] of Object.entries(files)) {
      const text = typeof content === 'string' ? content : stringify(content, { lineWidth: 0 });
      await writeFile(join(dir, name), text);
    }
    // One file takes both streams: promtool names each test file on stdout and prints its failures
    // on stderr, so only a shared stream keeps a failure under the file it belongs to.
    const logPath = join(dir, 'promtool.log');
    const log = await open(logPath, 'w');
    let exitCode: number | null;
    try {
      const child = spawn('promtool', args, { cwd: dir, stdio: ['ignore', log.fd, log.fd] });
      [exitCode] = (await once(child, 'close')) as [number | null];
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new Error(
          "promtool is not on PATH: install Debian's prometheus package (apt-get install --no-install-recommends prometheus; .ci/install-missing does)",
        );
      }
      throw error;
    } finally {
      await log.close();
    }
    return { passed: exitCode === 0, output: await readFile(logPath, 'utf8') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * `promtool test rules` on the files named `*.test.yaml` among `files`, all in one directory so that
 * a test names its rule files by file name (`rule_files: [prometheusrule.yaml]`).
 */
export async function testRules(files: Record<string, string | object>): Promise<PromtoolRun> {
  const tests = Object.keys(files).filter((name) => name.endsWith('.test.yaml'));
  if (tests.length === 0) throw new Error('no *.test.yaml among the files for promtool');
  const run = await promtool(['test', 'rules', ...tests], files);
  // On a failure, only the files that failed: a screen of SUCCESS would bury the one that matters.
  const failed = run.output.split(/^(?=Unit Testing:)/m).filter((part) => !/^\s+SUCCESS\s*$/m.test(part));
  return run.passed ? run : { passed: false, output: failed.join('') };
}

/** `promtool check rules`: the file parses, and every expression in it is valid PromQL. */
export function checkRules(ruleFile: RuleFile): Promise<PromtoolRun> {
  return promtool(['check', 'rules', 'rules.yaml'], { 'rules.yaml': ruleFile });
}
