import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { chartReadme, renderReadme, valueRows } from '../scripts/chart-readme.js';
import { chartDir } from '../lib/render.js';

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
});
