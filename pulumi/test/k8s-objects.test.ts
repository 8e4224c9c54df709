/**
 * The Kubernetes objects Pulumi creates itself (not through the chart): Namespace, Secret or
 * ExternalSecret, the CA ConfigMap and the database users Job. They get the same offline schema
 * validation as everything the chart renders (k8s-tests/lib/schemas.ts), so a typo in a field name
 * or a wrong type fails here instead of at `pulumi up`.
 */
import { describe, expect, it } from 'vitest';

import type { K8sObject } from '../../k8s-tests/lib/render.js';
import { validateObject } from '../../k8s-tests/lib/schemas.js';
import { exampleStack, runParley, type Loose, type Recorded } from './harness.js';

/** The objects as the provider would send them to the API server (the Helm release is no object). */
function kubernetesObjects(resources: Recorded[]): K8sObject[] {
  return resources
    .filter((r) => r.type.startsWith('kubernetes:') && r.type !== 'kubernetes:helm.sh/v3:Release')
    .map((r) => r.inputs as K8sObject);
}

describe.each([
  ['dev', ['Namespace', 'Secret']],
  ['prod', ['ConfigMap', 'ExternalSecret', 'Job', 'Namespace']],
] as const)('the Kubernetes objects of the %s stack', (stack, kinds) => {
  it(`are exactly: ${kinds.join(', ')}, each valid against its schema`, async () => {
    const { resources } = await runParley(stack, exampleStack(stack));
    const objects = kubernetesObjects(resources);
    expect(objects.map((o) => o.kind).sort()).toEqual([...kinds]);
    for (const object of objects) await validateObject(object);
  });
});

describe('the schema check itself', () => {
  it('rejects an ExternalSecret or a Job that the API server would refuse', async () => {
    const { resources } = await runParley('prod', exampleStack('prod'));
    const objects = kubernetesObjects(resources) as Loose[];
    const external = objects.find((o) => o.kind === 'ExternalSecret');
    await expect(
      validateObject({ ...external, spec: { ...external.spec, refreshInterval: 3600 } }),
    ).rejects.toThrow(/^ExternalSecret\/parley-credentials: .*refreshInterval/);
    const job = objects.find((o) => o.kind === 'Job');
    const { template } = job.spec;
    await expect(
      validateObject({
        ...job,
        spec: {
          ...job.spec,
          template: { ...template, spec: { ...template.spec, containers: 'create-users' } },
        },
      }),
    ).rejects.toThrow(/^Job\/parley-mysql-users: .*containers/);
  });
});
