import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { chartReadme, renderReadme, valueRows } from '../scripts/chart-readme.js';
import { chartDir } from '../lib/render.js';
import { repoRoot } from '../scripts/kube-tools.js';

const readme = readFileSync(chartReadme, 'utf8');

describe('the chart README', () => {
  it('lists every value, and is regenerated from values.yaml', async () => {
    expect(readme).toBe(await renderReadme(readme));
  });

  it('describes every value', () => {
    const undocumented = valueRows()
      .filter((row) => !row.description)
      .map((row) => row.path);
    expect(undocumented).toEqual([]);
  });

  it('opens with the values contract the Pulumi program codes against, and every path in it exists', () => {
    const values = parse(readFileSync(`${chartDir}/values.yaml`, 'utf8')) as Record<string, unknown>;
    const contract = [
      'image.repository',
      'image.tag',
      'image.digest',
      'image.pullPolicy',
      'api.replicas',
      'api.resources',
      'api.autoscaling.enabled',
      'api.autoscaling.minReplicas',
      'api.autoscaling.maxReplicas',
      'api.autoscaling.targetCPUUtilizationPercentage',
      'api.autoscaling.targetMemoryUtilizationPercentage',
      'api.autoscaling.behavior',
      'api.pdb.enabled',
      'api.pdb.minAvailable',
      'api.pdb.maxUnavailable',
      'worker.replicas',
      'worker.resources',
      'worker.autoscaling.enabled',
      'worker.pdb.enabled',
      'worker.keda.enabled',
      'config.logLevel',
      'secrets.existingSecret',
      'serviceAccount.create',
      'serviceAccount.name',
      'serviceAccount.annotations',
      's3.region',
      's3.endpoint',
      's3.forcePathStyle',
      's3.attachmentsBucket',
      's3.backupsBucket',
      's3.existingSecret',
      'ingress.enabled',
      'ingress.controller',
      'ingress.className',
      'ingress.host',
      'ingress.tls.secretName',
      'ingress.tls.clusterIssuer',
      'gateway.enabled',
      'gateway.parentRefs',
      'gateway.hostnames',
      'redis.enabled',
      'redis.external.url',
      'redis.external.sentinels',
      'redis.external.masterName',
      'mysql.enabled',
      'mysql.external.writerHost',
      'mysql.external.readerHost',
      'mysql.external.port',
      'mysql.external.database',
      'mysql.external.user',
      'minio.enabled',
      'metrics.podMonitor',
      'metrics.serviceMonitor',
      'metrics.prometheusRule',
      'metrics.dashboard',
      'networkPolicy.enabled',
    ];
    for (const path of contract) {
      const value = path
        .split('.')
        .reduce<unknown>((node, key) => (node as Record<string, unknown>)?.[key], values);
      expect(value, path).not.toBeUndefined();
    }
    expect(readme.indexOf('## Values contract')).toBeLessThan(readme.indexOf('## Design choices'));
    expect(readme.slice(0, 800)).toContain('## Values contract');
  });

  it('calls the supported entry points by their projects\u2019 names, never by a look-alike', () => {
    const templates = readdirSync(join(chartDir, 'templates')).map((file) =>
      join(chartDir, 'templates', file),
    );
    const files = [
      chartReadme,
      join(chartDir, 'values.yaml'),
      join(chartDir, 'values.schema.json'),
      ...readdirSync(join(chartDir, 'ci')).map((file) => join(chartDir, 'ci', file)),
      ...templates.filter((file) => /\.(ya?ml|txt|tpl)$/.test(file)),
      join(repoRoot, 'docs', 'chart.md'),
      join(repoRoot, 'docs', 'pulumi.md'),
    ];
    const text = files.map((file) => readFileSync(file, 'utf8')).join('\n');
    // "HAProxy Ingress" is another project (haproxy-ingress.github.io) with the same default class.
    expect(text.match(/HAProxy Ingress(?!\s\(haproxy-ingress\.github\.io\))/g)).toBeNull();
    // "NGINX Ingress Controller" alone is ambiguous with the community ingress-nginx.
    expect(text.match(/(?<!F5 )NGINX Ingress Controller/g)).toBeNull();
    for (const name of [
      'HAProxy Kubernetes Ingress Controller',
      'F5 NGINX Ingress Controller',
      'Envoy Gateway',
    ])
      expect(readFileSync(join(repoRoot, 'docs', 'chart.md'), 'utf8'), name).toContain(name);
  });
});
