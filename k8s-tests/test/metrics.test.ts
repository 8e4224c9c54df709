/**
 * The queries the chart ships — KEDA's trigger, the PrometheusRule's alerts and the Grafana
 * dashboard — read metrics the service really exports, and compute what they claim to. The alerts'
 * firing and resolving: alert-rules.test.ts.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { find, scenarioFile, spec } from '../lib/objects.js';
import { evaluate, metricNames, type Sample } from '../lib/promql.js';
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

interface Rule {
  alert: string;
  expr: string;
}

function ruleQueries(): Query[] {
  return spec<{ groups: { rules: Rule[] }[] }>(find(gateway, 'PrometheusRule', 'parley'))
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
const exportedName = (series: string): string[] => [series, series.replace(/_(bucket|count|sum)$/, '')];

/**
 * What Prometheus holds when `pods` worker pods each export the state they all read from the same
 * place (Redis for queues, the MySQL heartbeat row for replica lag): identical values, one series
 * per pod. `replicaLag` is what each pod reports for the lag: seconds, NaN when it cannot measure
 * it, or undefined for no series at all (no replica configured).
 */
function scrapedFromWorkers(pods: number, replicaLag: number | undefined = 95): Sample[] {
  const shared: Sample[] = [
    ...['waiting', 'delayed', 'active', 'failed', 'prioritized'].flatMap((state, i) => [
      { labels: { __name__: 'parley_queue_jobs', queue: 'maintenance', state }, value: 40 + i },
      { labels: { __name__: 'parley_queue_jobs', queue: 'backups', state }, value: 7 + i },
    ]),
    { labels: { __name__: 'parley_queue_oldest_waiting_seconds', queue: 'maintenance' }, value: 900 },
    { labels: { __name__: 'parley_queue_oldest_waiting_seconds', queue: 'backups' }, value: 12 },
    ...(replicaLag === undefined
      ? []
      : [{ labels: { __name__: 'parley_mysql_replica_lag_seconds' }, value: replicaLag }]),
  ];
  return Array.from({ length: pods }, (_, i) => {
    const pod = { namespace: 'parley', pod: `parley-worker-7d9c-${i}`, instance: `10.0.0.${i}:3001` };
    return shared.map((s) => ({ labels: { ...s.labels, ...pod }, value: s.value }));
  }).flat();
}

/** Metrics every worker pod exports with the same value: a query must not add them up across pods. */
const SHARED_STATE = /\b(parley_queue_\w+|parley_mysql_replica_lag_seconds)\b/;

describe('queries over state every worker pod exports alike', () => {
  it('KEDA scales on the number of waiting jobs, however many workers report it', () => {
    const { expr } = kedaQuery();
    expect(expr).toContain('namespace="parley"');
    for (const pods of [1, 2, 10]) {
      expect(evaluate(expr, scrapedFromWorkers(pods)), `${pods} worker pods`).toEqual([
        { labels: {}, value: 40 + 7 },
      ]);
    }
  });

  it('every alert and dashboard panel on queue depth, queue age or replica lag gives the same answer for 1 or 10 pods', () => {
    const queries = [kedaQuery(), ...ruleQueries(), ...dashboardQueries()].filter((q) =>
      SHARED_STATE.test(q.expr),
    );
    expect(queries.map((q) => q.where)).toEqual(
      expect.arrayContaining([
        'ScaledObject parley-worker',
        'alert ParleyQueueBacklogAge',
        'panel "Queue depth by state"',
        'panel "Oldest waiting job"',
      ]),
    );
    // Each query must answer something in one of the states (lag measured, lag unknown), and the
    // same for 1 pod as for 10 in both.
    for (const { where, expr } of queries) {
      const answers = [95, Number.NaN].map((lag) => {
        const one = evaluate(expr, scrapedFromWorkers(1, lag));
        expect(evaluate(expr, scrapedFromWorkers(10, lag)), `${where}, lag ${lag}: ${expr}`).toEqual(one);
        return one;
      });
      expect(answers.flat().length, `${where} returns something`).toBeGreaterThan(0);
    }
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
});
