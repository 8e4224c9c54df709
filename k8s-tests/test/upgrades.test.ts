/**
 * What a chart upgrade restarts. Any change to a pod template rolls the workload, and a rolled MySQL
 * primary or Redis master is an outage of writes, so an upgrade that changes nothing of a data
 * store's must leave its pod template byte for byte as it was. The render here is of a copy of the
 * chart with only Chart.yaml's version and appVersion bumped, as a release of the app would.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { find, scenarioFile, spec } from '../lib/objects.js';
import { chartDir, helm, parseManifests, renderChart, type K8sObject } from '../lib/render.js';

let bumpedChart = '';

beforeAll(async () => {
  bumpedChart = join(await mkdtemp(join(tmpdir(), 'parley-chart-')), 'parley');
  await cp(chartDir, bumpedChart, { recursive: true });
  const chartYaml = await readFile(join(bumpedChart, 'Chart.yaml'), 'utf8');
  const bumped = chartYaml
    .replace(/^version: .*$/m, 'version: 9.8.7')
    .replace(/^appVersion: .*$/m, "appVersion: '9.8.7'");
  expect(bumped).not.toBe(chartYaml);
  await writeFile(join(bumpedChart, 'Chart.yaml'), bumped);
});
afterAll(async () => {
  if (bumpedChart) await rm(join(bumpedChart, '..'), { recursive: true, force: true });
});

async function renderBoth(scenario: string): Promise<{ before: K8sObject[]; after: K8sObject[] }> {
  const before = await renderChart([scenarioFile(scenario)]);
  const { stdout } = await helm([
    'template',
    'parley',
    bumpedChart,
    '--namespace',
    'parley',
    '--values',
    join(chartDir, scenarioFile(scenario)),
  ]);
  return { before, after: parseManifests(stdout) };
}

const template = (objects: K8sObject[], kind: string, name: string): unknown =>
  spec<{ template: unknown }>(find(objects, kind, name)).template;

describe('a chart upgrade that changes nothing of the data stores', () => {
  it.each([
    ['StatefulSet', 'parley-mysql-primary'],
    ['StatefulSet', 'parley-mysql-replica'],
    ['StatefulSet', 'parley-redis'],
  ])('leaves the %s %s pod template untouched (no restart)', async (kind, name) => {
    const { before, after } = await renderBoth('default');
    expect(template(after, kind, name)).toEqual(template(before, kind, name));
  });

  it('leaves the dev MinIO pod template untouched', async () => {
    const { before, after } = await renderBoth('dev');
    expect(template(after, 'Deployment', 'parley-minio')).toEqual(
      template(before, 'Deployment', 'parley-minio'),
    );
  });

  it('still rolls the API and worker, whose image follows appVersion, and relabels every object', async () => {
    const { before, after } = await renderBoth('default');
    for (const name of ['parley-api', 'parley-worker'])
      expect(template(after, 'Deployment', name)).not.toEqual(template(before, 'Deployment', name));
    // The objects themselves still say which chart and version manage them.
    const redis = find(after, 'StatefulSet', 'parley-redis');
    expect(redis.metadata.labels).toMatchObject({
      'helm.sh/chart': 'parley-9.8.7',
      'app.kubernetes.io/version': '9.8.7',
    });
  });
});
