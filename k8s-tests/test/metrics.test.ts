/**
 * The queries the chart ships — KEDA's trigger, the PrometheusRule's alerts and the Grafana
 * dashboard — read metrics the service really exports, and compute what they claim to.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { find, scenarioFile, spec } from '../lib/objects.js';
import { evaluate, type Sample } from '../lib/promql.js';
import { renderChart, type K8sObject } from '../lib/render.js';

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
  const groups = spec<{ groups: { rules: { alert: string; expr: string }[] }[] }>(
    find(gateway, 'PrometheusRule', 'parley'),
  ).groups;
  return groups.flatMap((g) => g.rules.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr.trim() })));
}

interface Dashboard {
  templating: { list: { name: string; query?: string | { query: string } }[] };
  panels: { title: string; targets?: { expr: string }[] }[];
}

function dashboardQueries(): Query[] {
  const cm = find(gateway, 'ConfigMap', 'parley-dashboard');
  const dashboard = JSON.parse((cm['data'] as Record<string, string>)['parley.json']!) as Dashboard;
  // Grafana substitutes its variables before the query reaches Prometheus.
  const grafana = (expr: string): string => expr.replaceAll('$namespace', 'parley');
  return dashboard.panels.flatMap((p) =>
    (p.targets ?? []).map((t) => ({ where: `panel "${p.title}"`, expr: grafana(t.expr) })),
  );
}

/**
 * What Prometheus holds when `pods` worker pods each export the state they all read from the same
 * place (Redis for queues, the MySQL heartbeat row for replica lag): identical values, one series
 * per pod.
 */
function scrapedFromWorkers(pods: number): Sample[] {
  const shared: Sample[] = [
    ...['waiting', 'delayed', 'active', 'failed', 'prioritized'].flatMap((state, i) => [
      { labels: { __name__: 'parley_queue_jobs', queue: 'maintenance', state }, value: 40 + i },
      { labels: { __name__: 'parley_queue_jobs', queue: 'backups', state }, value: 7 + i },
    ]),
    { labels: { __name__: 'parley_queue_oldest_waiting_seconds', queue: 'maintenance' }, value: 900 },
    { labels: { __name__: 'parley_queue_oldest_waiting_seconds', queue: 'backups' }, value: 12 },
    { labels: { __name__: 'parley_mysql_replica_lag_seconds' }, value: 95 },
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
    for (const { where, expr } of queries) {
      const one = evaluate(expr, scrapedFromWorkers(1));
      expect(one.length, `${where} returns something`).toBeGreaterThan(0);
      expect(evaluate(expr, scrapedFromWorkers(10)), `${where}: ${expr}`).toEqual(one);
    }
  });
});
