import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { golden } from '../lib/golden.js';
import { scenarioFile, scenarios } from '../lib/objects.js';
import { chartDir, helm, parseManifests, renderChartText } from '../lib/render.js';
import { validateObject } from '../lib/schemas.js';

describe('the chart', () => {
  it('has a scenario for each documented mode', () => {
    expect(scenarios).toEqual(
      expect.arrayContaining(['default', 'gateway', 'haproxy', 'external-data', 'keda', 'dev']),
    );
  });

  it('has a strict values schema: every object with named properties forbids unknown ones', () => {
    const schema = JSON.parse(readFileSync(`${chartDir}/values.schema.json`, 'utf8')) as Record<
      string,
      unknown
    >;
    const loose: string[] = [];
    const walk = (node: Record<string, unknown>, path: string): void => {
      const properties = node['properties'] as Record<string, Record<string, unknown>> | undefined;
      if (properties) {
        if (node['additionalProperties'] !== false) loose.push(path || '(root)');
        for (const [key, child] of Object.entries(properties)) walk(child, path ? `${path}.${key}` : key);
      }
    };
    walk(schema, '');
    expect(loose).toEqual([]);
  });

  it('passes helm lint --strict with the defaults', async () => {
    const { stdout } = await helm(['lint', '--strict', chartDir]);
    expect(stdout).toContain('0 chart(s) failed');
  });

  describe.each(scenarios)('scenario %s', (scenario) => {
    it('passes helm lint --strict', async () => {
      const { stdout } = await helm([
        'lint',
        '--strict',
        chartDir,
        '--values',
        `${chartDir}/${scenarioFile(scenario)}`,
      ]);
      expect(stdout).toContain('0 chart(s) failed');
    });

    it('renders objects that are valid against the Kubernetes and CRD schemas', async () => {
      const objects = parseManifests(await renderChartText([scenarioFile(scenario)]));
      expect(objects.length).toBeGreaterThan(10);
      for (const obj of objects) await validateObject(obj);
    });

    it('renders exactly the checked-in golden file', async () => {
      const [actual, expected] = await golden(scenario, await renderChartText([scenarioFile(scenario)]));
      expect(actual).toBe(expected);
    });
  });

  it('schema validation catches a broken object (the validator is not a no-op)', async () => {
    const objects = parseManifests(await renderChartText([scenarioFile('default')]));
    const deployment = structuredClone(objects.find((obj) => obj.kind === 'Deployment')!);
    delete (deployment['spec'] as Record<string, unknown>)['selector'];
    await expect(validateObject(deployment)).rejects.toThrow(/selector/);
    const policy = structuredClone(
      parseManifests(await renderChartText([scenarioFile('gateway')])).find(
        (obj) => obj.kind === 'BackendTrafficPolicy',
      )!,
    );
    (policy['spec'] as { loadBalancer: { type: string } }).loadBalancer.type = 'LeastConnections';
    await expect(validateObject(policy)).rejects.toThrow(/loadBalancer/);
  });
});
