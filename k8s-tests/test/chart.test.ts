import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { golden } from '../lib/golden.js';
import { scenarioFile, scenarios } from '../lib/objects.js';
import { chartDir, helm, parseManifests, renderChartText } from '../lib/render.js';
import { unknownFields, validateObject } from '../lib/schemas.js';

type SchemaNode = { [keyword: string]: unknown };

/** Paths of every object schema with named properties that does not forbid other properties. */
function looseObjects(node: SchemaNode, path = ''): string[] {
  const loose: string[] = [];
  const child = (value: unknown, at: string): void => {
    if (value && typeof value === 'object' && !Array.isArray(value))
      loose.push(...looseObjects(value as SchemaNode, at));
  };
  const properties = node['properties'] as Record<string, SchemaNode> | undefined;
  if (properties) {
    if (node['additionalProperties'] !== false) loose.push(path || '(root)');
    for (const [key, value] of Object.entries(properties)) child(value, path ? `${path}.${key}` : key);
  }
  const items = node['items'];
  if (Array.isArray(items)) items.forEach((item, i) => child(item, `${path}[${i}]`));
  else child(items, `${path}[]`);
  child(node['additionalProperties'], `${path}{*}`);
  child(node['not'], `${path}/not`);
  for (const combinator of ['oneOf', 'anyOf', 'allOf']) {
    const branches = node[combinator];
    if (Array.isArray(branches))
      branches.forEach((branch, i) => child(branch, `${path}/${combinator}[${i}]`));
  }
  for (const definitions of ['definitions', '$defs']) {
    for (const [key, value] of Object.entries((node[definitions] as Record<string, unknown>) ?? {}))
      child(value, `#/${definitions}/${key}`);
  }
  return loose;
}

describe('the chart', () => {
  it('has a scenario for each documented mode', () => {
    expect(scenarios).toEqual(
      expect.arrayContaining(['default', 'gateway', 'haproxy', 'external-data', 'keda', 'dev']),
    );
  });

  it('has a strict values schema: every object with named properties forbids unknown ones, at every level', () => {
    const schema = JSON.parse(readFileSync(`${chartDir}/values.schema.json`, 'utf8')) as SchemaNode;
    expect(looseObjects(schema)).toEqual([]);
    // The walk reaches list items and every branch of a combinator, not only nested properties.
    expect(
      looseObjects({
        type: 'object',
        additionalProperties: false,
        properties: {
          refs: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' } } } },
          either: {
            oneOf: [
              { type: 'string' },
              { type: 'object', properties: { a: {} } },
              { anyOf: [{ items: [{ properties: { b: {} } }] }] },
            ],
          },
        },
      }),
    ).toEqual(['refs[]', 'either/oneOf[1]', 'either/oneOf[2]/anyOf[0][0]']);
  });

  it('passes helm lint --strict with the defaults', async () => {
    const { stdout } = await helm(['lint', '--strict', chartDir]);
    expect(stdout).toContain('0 chart(s) failed');
  });

  it('packages its templates and helm test hook, and leaves its promtool rule tests (tests/) out', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'parley-package-'));
    try {
      await helm(['package', chartDir, '--destination', dir]);
      const [archive] = await readdir(dir);
      const { stdout } = await promisify(execFile)('tar', ['tzf', join(dir, archive!)]);
      const files = stdout.trim().split('\n');
      expect(files).toContain('parley/templates/prometheusrule.yaml');
      expect(files).toContain('parley/templates/tests/test-readyz.yaml');
      expect(files.filter((file) => file.startsWith('parley/tests/'))).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
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
    // A field newer than the packaged CRD schemas is checked against its upstream pattern.
    const socketPolicy = structuredClone(
      parseManifests(await renderChartText([scenarioFile('gateway')])).find(
        (obj) => obj.kind === 'BackendTrafficPolicy' && obj.metadata.name === 'parley-api-websocket',
      )!,
    );
    await validateObject(socketPolicy);
    (
      socketPolicy['spec'] as { timeout: { http: { streamIdleTimeout: string } } }
    ).timeout.http.streamIdleTimeout = '1 hour';
    await expect(validateObject(socketPolicy)).rejects.toThrow(/streamIdleTimeout/);
  });

  it('schema validation catches a misspelt field at any depth, in core objects and CRDs alike', async () => {
    const objects = [
      ...parseManifests(await renderChartText([scenarioFile('gateway')])),
      ...parseManifests(await renderChartText([scenarioFile('keda')])),
    ];
    type Loose = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    const typo = async (kind: string, name: string, misspell: (obj: Loose) => void): Promise<void> => {
      const obj = structuredClone(objects.find((o) => o.kind === kind && o.metadata.name === name)!);
      await validateObject(obj);
      misspell(obj);
      await expect(unknownFields(obj)).resolves.toHaveLength(1);
      await expect(validateObject(obj)).rejects.toThrow(/unknown field/);
    };
    await typo('Deployment', 'parley-api', (o) => {
      const pod = o['spec'].template.spec;
      pod.terminationGracePeriodSecond = pod.terminationGracePeriodSeconds;
      delete pod.terminationGracePeriodSeconds;
    });
    await typo('Deployment', 'parley-worker', (o) => {
      o['spec'].template.spec.containers[0].securityContext.readOnlyRootFileSystem = true;
    });
    await typo('StatefulSet', 'parley-redis', (o) => {
      o['spec'].template.spec.containers[0].readinessProbe.periodSecond = 5;
    });
    await typo('ScaledObject', 'parley-worker', (o) => {
      o['spec'].minReplicas = 2;
    });
    await typo('HTTPRoute', 'parley-api', (o) => {
      o['spec'].rules[0].backendRefs[0].weigth = 1;
    });
    await typo('PrometheusRule', 'parley', (o) => {
      o['spec'].groups[0].rules[0].fro = '5m';
    });
    // Free-form maps stay free: any label key is fine.
    const labelled = structuredClone(objects.find((o) => o.kind === 'Deployment')!);
    labelled.metadata.labels = { ...labelled.metadata.labels, 'example.com/anything': 'x' };
    await expect(unknownFields(labelled)).resolves.toEqual([]);
  });
});
