/**
 * The PrometheusRule's alerts on the real Prometheus engine: the promtool unit tests kept beside
 * the chart (charts/parley/tests/rules/*.test.yaml) run on the rule file the chart renders, so they
 * test what ships, not a copy of it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { scenarioFile } from '../lib/objects.js';
import { ruleFileOf, series, testRules, type Rule, type RuleFile } from '../lib/promtool.js';
import { chartDir, renderChart, type K8sObject } from '../lib/render.js';
import { serviceSource } from '../lib/service-source.js';

const testsDir = join(chartDir, 'tests', 'rules');
const testFiles = readdirSync(testsDir)
  .filter((file) => file.endsWith('.test.yaml'))
  .sort();

let gateway: K8sObject[];
beforeAll(async () => {
  gateway = await renderChart([scenarioFile('gateway')]);
});

function alerts(ruleFile: RuleFile): Rule[] {
  return ruleFile.groups.flatMap((g) => g.rules).filter((r) => r.alert !== undefined);
}

function alert(ruleFile: RuleFile, name: string): Rule {
  const found = alerts(ruleFile).find((r) => r.alert === name);
  if (!found) throw new Error(`no alert ${name}`);
  return found;
}

interface AlertRuleTest {
  eval_time: string;
  alertname: string;
  exp_alerts?: unknown[];
}
interface TestGroup {
  name?: string;
  alert_rule_test?: AlertRuleTest[];
}

function testGroups(): { file: string; group: TestGroup }[] {
  return testFiles.flatMap((file) =>
    (parse(readFileSync(join(testsDir, file), 'utf8')) as { tests: TestGroup[] }).tests.map((group) => ({
      file,
      group,
    })),
  );
}

const UNIT_SECONDS = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86_400, w: 604_800, y: 31_536_000 };

/** A Prometheus duration (`90s`, `5m`, `1h30m`) in seconds. */
function seconds(duration: string): number {
  const parts = [...duration.matchAll(/(\d+)(ms|s|m|h|d|w|y)/g)];
  if (parts.map(([part]) => part).join('') !== duration) throw new Error(`not a duration: ${duration}`);
  return parts.reduce(
    (sum, [, count, unit]) => sum + Number(count) * UNIT_SECONDS[unit as keyof typeof UNIT_SECONDS],
    0,
  );
}

describe('the alert rules on promtool (charts/parley/tests/rules)', () => {
  it.each(testFiles)('%s passes on the rendered PrometheusRule', async (file) => {
    const run = await testRules({
      'prometheusrule.yaml': ruleFileOf(gateway),
      [file]: readFileSync(join(testsDir, file), 'utf8'),
    });
    expect(run.passed, run.output).toBe(true);
  });

  it('every alert the chart ships is seen to fire, and later in the same test to resolve', () => {
    const firesThenResolves = new Set<string>();
    for (const { group } of testGroups()) {
      const checks = [...(group.alert_rule_test ?? [])].sort(
        (a, b) => seconds(a.eval_time) - seconds(b.eval_time),
      );
      checks.forEach((check, i) => {
        const resolvedLater = checks
          .slice(i + 1)
          .some((later) => later.alertname === check.alertname && (later.exp_alerts ?? []).length === 0);
        if ((check.exp_alerts ?? []).length > 0 && resolvedLater) firesThenResolves.add(check.alertname);
      });
    }
    expect([...firesThenResolves].sort()).toEqual(
      alerts(ruleFileOf(gateway))
        .map((r) => r.alert!)
        .sort(),
    );
  });

  it('the tests name only alerts the chart ships: silence expected of a misspelt alert proves nothing', () => {
    const shipped = new Set(alerts(ruleFileOf(gateway)).map((r) => r.alert));
    const unknown = testGroups().flatMap(({ file, group }) =>
      (group.alert_rule_test ?? [])
        .filter((check) => !shipped.has(check.alertname))
        .map((check) => `${file}: "${group.name}" checks ${check.alertname}`),
    );
    expect(unknown).toEqual([]);
  });
});

describe('ParleyMysqlReplicaLagUnknown', () => {
  it("has the lag alert's severity and a summary and description for the operator", () => {
    const rules = ruleFileOf(gateway);
    const unknown = alert(rules, 'ParleyMysqlReplicaLagUnknown');
    expect(unknown.for).toBe('5m');
    expect(unknown.labels).toEqual(alert(rules, 'ParleyMysqlReplicaLag').labels);
    expect(unknown.annotations!['summary']).toContain('unknown for 5m');
    expect(unknown.annotations!['description']).toContain('circuit_breaker_state{circuit="mysql-replica"}');
    // The log lines the description quotes are the worker's own.
    for (const line of ['replica lag cannot be measured; reporting NaN', 'replica lag measurable again']) {
      expect(unknown.annotations!['description']).toContain(line);
      expect(serviceSource()).toContain(`'${line}'`);
    }
  });

  it('waits replicaLagUnknownFor before it fires', async () => {
    const rules = ruleFileOf(
      await renderChart([scenarioFile('gateway')], {
        'metrics.prometheusRule.replicaLagUnknownFor': '15m',
      }),
    );
    const unknown = alert(rules, 'ParleyMysqlReplicaLagUnknown');
    expect(unknown.for).toBe('15m');
    expect(unknown.annotations!['summary']).toContain('unknown for 15m');
    const nanOnEveryPod = [0, 1, 2].map((i) => ({
      series: series('parley_mysql_replica_lag_seconds', { namespace: 'parley', pod: `parley-worker-${i}` }),
      values: 'NaN+0x20',
    }));
    const check = (evalTime: string, firing: boolean) => ({
      eval_time: evalTime,
      alertname: 'ParleyMysqlReplicaLagUnknown',
      exp_alerts: firing ? [{ exp_labels: unknown.labels, exp_annotations: unknown.annotations }] : [],
    });
    const run = await testRules({
      'prometheusrule.yaml': rules,
      'unknown-for.test.yaml': {
        rule_files: ['prometheusrule.yaml'],
        evaluation_interval: '1m',
        tests: [
          {
            name: 'NaN on every pod from the start, replicaLagUnknownFor 15m',
            interval: '1m',
            input_series: nanOnEveryPod,
            alert_rule_test: [check('14m', false), check('15m', true)],
          },
        ],
      },
    });
    expect(run.passed, run.output).toBe(true);
  });
});

describe('the job alerts', () => {
  it("tell the operator the worker's own commands and log line", () => {
    const rules = ruleFileOf(gateway);
    const source = serviceSource();
    const dead = alert(rules, 'ParleyJobsDeadLettered').annotations!['description']!;
    expect(dead).toContain('kubectl -n parley exec deploy/parley-worker -- jobs dead {{ $labels.queue }}');
    expect(dead).toContain('-- jobs redrive {{ $labels.queue }} <id|--all>');
    expect(source).toContain("usage: 'dead [queue] [--json]'");
    expect(source).toContain("usage: 'redrive <queue> <id | --all>'");
    // Dead letters are the failed jobs BullMQ keeps: 14 days, as the description says.
    expect(dead).toContain('kept 14 days');
    expect(source).toContain('removeOnFail: { age: 14 * 24 * 3_600 }');
    const failing = alert(rules, 'ParleyJobsFailing').annotations!['description']!;
    expect(failing).toContain('"job attempt failed; it will be retried"');
    expect(source).toContain("'job attempt failed; it will be retried'");
  });

  it('ParleyJobsFailing fires above metrics.prometheusRule.jobFailureRatio', async () => {
    const rules = ruleFileOf(
      await renderChart(
        [scenarioFile('gateway')],
        {},
        // --set would pass 0.1 as a string, which the schema refuses.
        { extraArgs: ['--set-json', 'metrics.prometheusRule.jobFailureRatio=0.1'] },
      ),
    );
    const failing = alert(rules, 'ParleyJobsFailing');
    expect(failing.expr.trim()).toMatch(/> 0\.1$/);
    expect(failing.annotations!['summary']).toContain('More than 10% of the attempts');
    const pods = (failedPerMinute: number, completedPerMinute: number) => [
      {
        series: series('parley_jobs_failed_total', {
          namespace: 'parley',
          pod: 'parley-worker-0',
          queue: 'attachments',
          name: 'verify',
        }),
        values: `0+${failedPerMinute}x40`,
      },
      {
        series: series('parley_jobs_completed_total', {
          namespace: 'parley',
          pod: 'parley-worker-0',
          queue: 'attachments',
          name: 'verify',
        }),
        values: `0+${completedPerMinute}x40`,
      },
    ];
    const check = (firing: boolean) => ({
      eval_time: '30m',
      alertname: 'ParleyJobsFailing',
      exp_alerts: firing
        ? [
            {
              exp_labels: { ...failing.labels, queue: 'attachments', name: 'verify' },
              exp_annotations: {
                summary: 'More than 10% of the attempts at attachments/verify jobs fail.',
                description: failing.annotations!['description']!.replaceAll(
                  '{{ $labels.queue }}',
                  'attachments',
                ),
              },
            },
          ]
        : [],
    });
    const run = await testRules({
      'prometheusrule.yaml': rules,
      'ratio.test.yaml': {
        rule_files: ['prometheusrule.yaml'],
        evaluation_interval: '1m',
        tests: [
          // 2 failed attempts in 10 is above 0.1; 1 in 13 is under it.
          {
            name: '2 failed per 8 completed',
            interval: '1m',
            input_series: pods(2, 8),
            alert_rule_test: [check(true)],
          },
          {
            name: '1 failed per 12 completed',
            interval: '1m',
            input_series: pods(1, 12),
            alert_rule_test: [check(false)],
          },
        ],
      },
    });
    expect(run.passed, run.output).toBe(true);
  });
});
