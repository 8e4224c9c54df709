/**
 * The queries the chart ships — KEDA's trigger, the PrometheusRule's alerts and the Grafana
 * dashboard — read metrics the service really exports, and compute what they claim to on the real
 * Prometheus engine (promtool). The alerts' firing and resolving: alert-rules.test.ts.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { metricNames } from '../lib/metric-names.js';
import { find, scenarioFile, spec } from '../lib/objects.js';
import { checkRules, expectAnswer, ruleFileOf, series, testRules, type Sample } from '../lib/promtool.js';
import { renderChart, type K8sObject } from '../lib/render.js';
import { serviceSource } from '../lib/service-source.js';

let gateway: K8sObject[];
let keda: K8sObject[];
beforeAll(async () => {
  [gateway, keda] = await Promise.all([
    renderChart([scenarioFile('gateway')]),
    renderChart([scenarioFile('keda')]),
  ]);
});

interface Query {
  where: string;
  expr: string;
}

function kedaQuery(): Query {
  const triggers = spec<{ triggers: { metadata: { query: string } }[] }>(
    find(keda, 'ScaledObject', 'parley-worker'),
  ).triggers;
  return { where: 'ScaledObject parley-worker', expr: triggers[0]!.metadata.query };
}

function ruleQueries(): Query[] {
  return ruleFileOf(gateway)
    .groups.flatMap((g) => g.rules)
    .map((r) => ({ where: `alert ${r.alert}`, expr: r.expr.trim() }));
}

interface Dashboard {
  templating: { list: { name: string; query?: string | { query: string } }[] };
  panels: { title: string; targets?: { expr: string }[] }[];
}

function dashboard(): Dashboard {
  const cm = find(gateway, 'ConfigMap', 'parley-dashboard');
  return JSON.parse((cm['data'] as Record<string, string>)['parley.json']!) as Dashboard;
}

function dashboardQueries(): Query[] {
  // Grafana substitutes its variables before the query reaches Prometheus.
  const grafana = (expr: string): string => expr.replaceAll('$namespace', 'parley');
  return dashboard().panels.flatMap((p) =>
    (p.targets ?? []).map((t) => ({ where: `panel "${p.title}"`, expr: grafana(t.expr) })),
  );
}

/** The metric each `label_values(metric, label)` template variable reads. */
function templateMetrics(): Query[] {
  return dashboard().templating.list.flatMap((variable) => {
    const query = typeof variable.query === 'object' ? variable.query.query : (variable.query ?? '');
    const [, metric] = /^label_values\(\s*([^,)]+?)\s*,/.exec(query) ?? [];
    return metric ? [{ where: `variable $${variable.name}`, expr: metric }] : [];
  });
}

/** A histogram `x` is scraped as `x_bucket`, `x_count` and `x_sum`; the source names only `x`. */
const exportedName = (name: string): string[] => [name, name.replace(/_(bucket|count|sum)$/, '')];

/**
 * What Prometheus holds when `pods` worker pods each export the state they all read from the same
 * place (Redis for queues, the MySQL heartbeat row for replica lag): identical values, one series
 * per pod, for 10 minutes. `replicaLag` is what each pod reports for the lag: seconds, or NaN when it
 * cannot measure it.
 */
function scrapedFromWorkers(pods: number, replicaLag: number): { series: string; values: string }[] {
  const shared: [string, Record<string, string>, number][] = [
    ...['waiting', 'delayed', 'active', 'failed', 'prioritized'].flatMap(
      (state, i): [string, Record<string, string>, number][] => [
        ['parley_queue_jobs', { queue: 'maintenance', state }, 40 + i],
        ['parley_queue_jobs', { queue: 'backups', state }, 7 + i],
      ],
    ),
    ['parley_queue_oldest_waiting_seconds', { queue: 'maintenance' }, 900],
    ['parley_queue_oldest_waiting_seconds', { queue: 'backups' }, 12],
    ['parley_mysql_replica_lag_seconds', {}, replicaLag],
  ];
  // promtool's notation: `40x10` is 40 for 11 samples; NaN repeats only as `NaN+0x10`.
  const tenMinutesOf = (value: number) => (Number.isNaN(value) ? 'NaN+0x10' : `${value}x10`);
  return Array.from({ length: pods }, (_, i) => {
    const pod = { namespace: 'parley', pod: `parley-worker-7d9c-${i}`, instance: `10.0.0.${i}:3001` };
    return shared.map(([name, labels, value]) => ({
      series: series(name, { ...labels, ...pod }),
      values: tenMinutesOf(value),
    }));
  }).flat();
}

/** Metrics every worker pod exports with the same value: a query must not add them up across pods. */
const SHARED_STATE = /\b(parley_queue_\w+|parley_mysql_replica_lag_seconds)\b/;

const POD_COUNTS = [1, 2, 10];
const LAGS = [95, Number.NaN];

/**
 * What each query over shared state answers for the state `scrapedFromWorkers` sets up, whatever the
 * number of pods: the depth or age one pod reports, never a multiple of it.
 */
const ANSWERS: Record<string, (lag: number) => Sample[]> = {
  'ScaledObject parley-worker': () => [{ labels: {}, value: 40 + 7 }],
  'alert ParleyQueueBacklogAge': () => [{ labels: { queue: 'maintenance' }, value: 900 }],
  // NaN compares false: the lag alert is quiet on it, and the unknown alert is not.
  'alert ParleyMysqlReplicaLag': (lag) => (lag > 30 ? [{ labels: {}, value: lag }] : []),
  'alert ParleyMysqlReplicaLagUnknown': (lag) => (Number.isNaN(lag) ? [{ labels: {}, value: lag }] : []),
  'panel "Queue depth by state"': () =>
    ['waiting', 'delayed', 'active', 'failed', 'prioritized'].flatMap((state, i) => [
      { labels: { queue: 'maintenance', state }, value: 40 + i },
      { labels: { queue: 'backups', state }, value: 7 + i },
    ]),
  'panel "Oldest waiting job"': () => [
    { labels: { queue: 'maintenance' }, value: 900 },
    { labels: { queue: 'backups' }, value: 12 },
  ],
  'panel "MySQL replica lag"': (lag) => [{ labels: {}, value: lag }],
};

/**
 * A promtool test file: `query` over what `pods` workers export must answer `answer`. One file per
 * case, since promtool names the failing file (not the test group) when an expression is wrong.
 */
function sharedStateTest(query: Query, pods: number, lag: number, answer: Sample[]): [string, object] {
  const name = `${query.where}, ${pods} worker pods, replica lag ${lag}`;
  const file = `${name.replace(/[^A-Za-z0-9]+/g, '-')}.test.yaml`;
  const group = {
    name,
    interval: '1m',
    input_series: scrapedFromWorkers(pods, lag),
    promql_expr_test: expectAnswer(query.expr, '5m', answer),
  };
  return [file, { tests: [group] }];
}

describe('queries over state every worker pod exports alike (promtool test rules)', () => {
  it('KEDA scales on the number of waiting jobs, however many workers report it', async () => {
    const query = kedaQuery();
    expect(query.expr).toContain('namespace="parley"');
    const files = POD_COUNTS.map((pods) => sharedStateTest(query, pods, 95, [{ labels: {}, value: 40 + 7 }]));
    const run = await testRules(Object.fromEntries(files));
    expect(run.passed, run.output).toBe(true);
  });

  it('every alert and dashboard panel on queue depth, queue age or replica lag gives the same answer for 1, 2 or 10 pods', async () => {
    const queries = [kedaQuery(), ...ruleQueries(), ...dashboardQueries()].filter((q) =>
      SHARED_STATE.test(q.expr),
    );
    // A new query over shared state needs its answer here, and none may answer nothing in every state.
    expect(queries.map((q) => q.where).sort()).toEqual(Object.keys(ANSWERS).sort());
    for (const [where, answer] of Object.entries(ANSWERS)) {
      expect(LAGS.flatMap(answer).length, `${where} returns something`).toBeGreaterThan(0);
    }
    const files = queries.flatMap((query) =>
      LAGS.flatMap((lag) =>
        POD_COUNTS.map((pods) => sharedStateTest(query, pods, lag, ANSWERS[query.where]!(lag))),
      ),
    );
    const run = await testRules(Object.fromEntries(files));
    expect(run.passed, run.output).toBe(true);
  });
});

describe('the job panels (promtool test rules)', () => {
  const panel = (title: string): Query => {
    const found = dashboardQueries().find((q) => q.where === `panel "${title}"`);
    if (!found) throw new Error(`no panel ${title}`);
    return found;
  };

  it('show completions, failed attempts, dead letters and p95 duration per queue', () => {
    expect(panel('Jobs completed per second').expr).toContain(
      'sum by (queue) (rate(parley_jobs_completed_total',
    );
    expect(panel('Failed job attempts per second').expr).toContain(
      'sum by (queue) (rate(parley_jobs_failed_total',
    );
    expect(panel('Job duration p95 (completed)').expr).toMatch(
      /^histogram_quantile\(0\.95, sum by \(le, queue\) \(rate\(parley_job_duration_seconds_bucket\{.*outcome="completed"\}/,
    );
  });

  // A pod's series for a job kind appears at its first dead letter, already at 1: increase() alone
  // would show nothing for it.
  it("dead letters in the last hour: every pod's, a new series' whole count and an old one's increase", async () => {
    const query = panel('Jobs dead-lettered in the last hour');
    const dead = (pod: number, queue: string, values: string) => ({
      series: series('parley_jobs_dead_total', {
        namespace: 'parley',
        pod: `parley-worker-${pod}`,
        queue,
        name: 'x',
      }),
      values,
    });
    const run = await testRules({
      'dead-panel.test.yaml': {
        tests: [
          {
            name: query.where,
            interval: '1m',
            input_series: [
              dead(0, 'attachments', '2x30 4x60'),
              dead(1, 'attachments', '_x70 1 3x20'),
              dead(0, 'backups', '1x90'),
            ],
            promql_expr_test: expectAnswer(query.expr, '90m', [
              { labels: { queue: 'attachments' }, value: 2 + 3 },
              { labels: { queue: 'backups' }, value: 0 },
            ]),
          },
        ],
      },
    });
    expect(run.passed, run.output).toBe(true);
  });
});

describe('the queries are PromQL (promtool check rules)', () => {
  it('the KEDA trigger and every dashboard query parse', async () => {
    const queries = [kedaQuery(), ...dashboardQueries()];
    const rules = queries.map(({ expr }, i) => ({ record: `parley:query:${i}`, expr }));
    const run = await checkRules({ groups: [{ name: 'parley.queries', rules }] });
    expect(run.passed, run.output).toBe(true);
    expect(run.output).toContain(`SUCCESS: ${rules.length} rules found`);
  });
});

describe('metric names', () => {
  it('every metric the KEDA trigger, the alerts and the dashboard read is one the service exports', () => {
    const queries = [kedaQuery(), ...ruleQueries(), ...dashboardQueries(), ...templateMetrics()];
    const source = serviceSource();
    const referenced = queries.flatMap(({ where, expr }) =>
      metricNames(expr).map((name) => ({ where, name })),
    );
    expect(new Set(referenced.map((r) => r.name))).toEqual(
      new Set([
        'circuit_breaker_state',
        'http_server_request_duration_seconds_bucket',
        'http_server_request_duration_seconds_count',
        'parley_jobs_completed_total',
        'parley_jobs_dead_total',
        'parley_jobs_failed_total',
        'parley_job_duration_seconds_bucket',
        'parley_mysql_replica_lag_seconds',
        'parley_queue_jobs',
        'parley_queue_oldest_waiting_seconds',
      ]),
    );
    const missing = referenced.filter(
      ({ name }) =>
        !exportedName(name).some((candidate) => new RegExp(`['"\`]${candidate}['"\`]`).test(source)),
    );
    expect(missing, 'referenced but never defined in service/src').toEqual([]);
  });

  it('the name check is not a no-op: it finds metric names in any PromQL, and not label names', () => {
    expect(
      metricNames(
        'histogram_quantile(0.99, sum by (le, route) (rate(http_server_request_duration_seconds_bucket{namespace="x",le!="+Inf"}[5m]))) > 1e-9',
      ),
    ).toEqual(['http_server_request_duration_seconds_bucket']);
    expect(metricNames('max(mysql_slave_status_seconds_behind_master{namespace="x"}) > 30')).toEqual([
      'mysql_slave_status_seconds_behind_master',
    ]);
    expect(serviceSource()).not.toMatch(/['"`]mysql_slave_status_seconds_behind_master['"`]/);
  });

  it('refuses what it cannot read rather than find fewer names', () => {
    expect(() => metricNames('sum(rate(parley_queue_jobs[5m])')).toThrow(/not PromQL/);
    expect(() => metricNames('max({__name__=~"parley_.+"})')).toThrow(/without a metric name/);
  });
});
