/**
 * Pulumi and the chart cannot drift apart: the values the Helm release would receive (recorded by
 * the mocks) are rendered with the real `helm template` of charts/parley, which enforces the
 * chart's strict values.schema.json, and the objects are held to what the stack promised.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { chartDir, helm, HelmError, renderChart, type K8sObject } from '../../k8s-tests/lib/render.js';
import { validateObject } from '../../k8s-tests/lib/schemas.js';
import { exampleStack, only, runParley, type Loose } from './harness.js';

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'parley-pulumi-values-'));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

async function renderStack(stack: 'dev' | 'prod') {
  const { resources } = await runParley(stack, exampleStack(stack));
  const release = only(resources, 'kubernetes:helm.sh/v3:Release').inputs;
  const file = join(scratch, `${stack}-values.json`);
  // JSON is YAML: helm reads the values exactly as the release would send them.
  await writeFile(file, JSON.stringify(release.values, null, 2));
  const objects = await renderChart([file], {}, { releaseName: release.name, namespace: release.namespace });
  return { objects, values: release.values as Loose, file };
}

const find = (objects: K8sObject[], kind: string, predicate: (o: Loose) => boolean = () => true) =>
  objects.filter((o) => o.kind === kind && predicate(o)) as Loose[];

function containerEnv(workload: Loose, container = 0): Record<string, Loose> {
  const env = workload.spec.template.spec.containers[container].env as { name: string }[];
  return Object.fromEntries(env.map((variable) => [variable.name, variable]));
}

describe.each(['dev', 'prod'] as const)('the %s stack rendered by the chart', (stack) => {
  let objects: K8sObject[];
  let values: Loose;
  let valuesFile: string;

  beforeAll(async () => {
    ({ objects, values, file: valuesFile } = await renderStack(stack));
  });

  it('passes helm lint --strict with the values (the chart schema rejects unknown keys)', async () => {
    const { stdout } = await helm(['lint', '--strict', chartDir, '--values', valuesFile]);
    expect(stdout).toContain('0 chart(s) failed');
  });

  it('renders objects that are valid against the Kubernetes and CRD schemas', async () => {
    expect(find(objects, 'Deployment').length).toBeGreaterThanOrEqual(2);
    for (const object of objects) await validateObject(object);
  });

  it('renders only pods that Pod Security "restricted" (the namespace label Pulumi sets) admits', () => {
    const podSpecs = objects.flatMap((o: Loose) =>
      o.kind === 'Pod' ? [o.spec] : o.spec?.template?.spec ? [o.spec.template.spec] : [],
    );
    expect(podSpecs.length).toBeGreaterThan(0);
    for (const pod of podSpecs) {
      expect(pod.hostNetwork ?? false).toBe(false);
      expect((pod.volumes ?? []).filter((v: Loose) => v.hostPath)).toEqual([]);
      for (const container of [...(pod.initContainers ?? []), ...pod.containers]) {
        const context = { ...pod.securityContext, ...container.securityContext };
        const where = `${container.name}`;
        expect(context.runAsNonRoot, where).toBe(true);
        expect(context.runAsUser ?? 1, where).not.toBe(0);
        expect(container.securityContext?.allowPrivilegeEscalation, where).toBe(false);
        expect(container.securityContext?.capabilities?.drop, where).toContain('ALL');
        expect(container.securityContext?.privileged ?? false, where).toBe(false);
        expect(context.seccompProfile?.type, where).toMatch(/^(RuntimeDefault|Localhost)$/);
      }
    }
  });

  it('lets only the ingress controller or gateway proxies of the stack reach the API port', () => {
    const expected = stack === 'dev' ? 'nginx-ingress' : 'envoy-gateway-system';
    const [policy] = find(objects, 'NetworkPolicy', (o) => o.metadata.name === 'parley-api');
    const sources = (policy.spec.ingress as Loose[]).flatMap((rule) => rule.from ?? []);
    expect(sources).toContainEqual({
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': expected } },
    });
  });

  it('runs the pods as the IRSA service account of the role Pulumi created', () => {
    const [account, ...others] = find(objects, 'ServiceAccount', (o) => o.metadata.name === 'parley');
    expect(others).toEqual([]);
    expect(account.metadata.annotations['eks.amazonaws.com/role-arn']).toBe(
      'arn:aws:iam::123456789012:role/parley-service',
    );
    for (const deployment of find(objects, 'Deployment', (o) => /api|worker/.test(o.metadata.name))) {
      expect(deployment.spec.template.spec.serviceAccountName).toBe('parley');
    }
  });

  it('points the service at the buckets and region Pulumi created, with no static S3 keys', () => {
    const api = find(objects, 'Deployment', (o) => o.metadata.name.endsWith('api'))[0];
    const env = containerEnv(api);
    expect(env.S3_ATTACHMENTS_BUCKET?.value).toBe(values.s3.attachmentsBucket);
    expect(env.S3_BACKUPS_BUCKET?.value).toBe(values.s3.backupsBucket);
    expect(env.S3_REGION?.value).toBe('eu-west-1');
    expect(env.S3_ENDPOINT).toBeUndefined();
    expect(env.S3_ACCESS_KEY_ID).toBeUndefined();
  });

  it('reads every credential from the Secret Pulumi manages, and renders no Secret of its own', () => {
    const rendered = JSON.stringify(objects);
    expect(rendered).toContain('"parley-credentials"');
    expect(
      find(objects, 'Secret', (o) => o.metadata.name !== 'parley-credentials').map((o) => o.metadata.name),
    ).toEqual([]);
  });

  if (stack === 'dev') {
    it('exposes the API through the least-connections Ingress for the configured host', () => {
      const [ingress] = find(objects, 'Ingress');
      expect(ingress.spec.rules.map((rule: Loose) => rule.host)).toEqual(['chat.dev.example.com']);
      expect(ingress.spec.tls).toEqual([{ hosts: ['chat.dev.example.com'], secretName: 'parley-tls' }]);
      expect(ingress.metadata.annotations['nginx.org/lb-method']).toBe('least_conn');
      expect(ingress.metadata.annotations['cert-manager.io/cluster-issuer']).toBe('letsencrypt-staging');
      expect(find(objects, 'HTTPRoute')).toEqual([]);
    });

    it('runs MySQL and Redis in the cluster', () => {
      expect(find(objects, 'StatefulSet').length).toBeGreaterThanOrEqual(2);
    });
  } else {
    it('exposes the API through the Gateway API route for the configured host', () => {
      const [route] = find(objects, 'HTTPRoute');
      expect(route.spec.hostnames).toEqual(['chat.example.com']);
      expect(route.spec.parentRefs).toEqual([
        expect.objectContaining({ name: 'public', namespace: 'envoy-gateway-system', sectionName: 'https' }),
      ]);
      expect(find(objects, 'Ingress')).toEqual([]);
    });

    it('connects to RDS and ElastiCache and runs no database in the cluster', () => {
      expect(find(objects, 'StatefulSet')).toEqual([]);
      const env = containerEnv(find(objects, 'Deployment', (o) => o.metadata.name.endsWith('api'))[0]);
      expect(env.MYSQL_HOST?.value).toBe('parley-prod-mysql.c0ffee.eu-west-1.rds.amazonaws.com');
      expect(env.MYSQL_REPLICA_HOST?.value).toBe(
        'parley-prod-mysql-replica.c0ffee.eu-west-1.rds.amazonaws.com',
      );
      expect(env.REDIS_URL?.value).toBe(
        'rediss://master.parley-prod-redis.c0ffee.euw1.cache.amazonaws.com:6379',
      );
      // The pods reach the databases only inside the VPC, not every private range.
      const [egress] = find(objects, 'NetworkPolicy', (o) => o.metadata.name === 'parley-api-egress');
      const blocks = (egress.spec.egress as Loose[])
        .filter((rule) => rule.ports.some((port: Loose) => port.port === 3306))
        .flatMap((rule) => rule.to.map((peer: Loose) => peer.ipBlock?.cidr));
      expect(blocks).toEqual(['10.20.0.0/16']);
      const [migrations] = find(objects, 'Job');
      const jobEnv = containerEnv(migrations);
      expect(jobEnv.MYSQL_HOST?.value).toBe('parley-prod-mysql.c0ffee.eu-west-1.rds.amazonaws.com');
      expect(jobEnv.MYSQL_MIGRATION_USER?.value).toBe('parley_migrator');
      // Verified TLS to RDS, with the CA bundle from the ConfigMap Pulumi writes.
      for (const workload of [
        ...find(objects, 'Deployment', (o) => /api|worker/.test(o.metadata.name)),
        migrations,
      ]) {
        const where = workload.metadata.name;
        const workloadEnv = containerEnv(workload);
        expect(workloadEnv.MYSQL_TLS?.value, where).toBe('true');
        expect(workloadEnv.MYSQL_TLS_CA_FILE?.value, where).toBe('/etc/parley/mysql-ca/ca.pem');
        expect(workload.spec.template.spec.volumes, where).toContainEqual({
          name: 'mysql-ca',
          configMap: { name: 'parley-mysql-ca', items: [{ key: 'ca.pem', path: 'ca.pem' }] },
        });
      }
    });
  }
});

describe('the drift guard itself', () => {
  it('fails when the values carry a key the chart does not know', async () => {
    const { values } = await renderStack('dev');
    const file = join(scratch, 'drifted-values.json');
    await writeFile(
      file,
      JSON.stringify({ ...values, s3: { ...values.s3, attachmentBucket: 'renamed-key' } }),
    );
    const failure = await renderChart([file]).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(HelmError);
    expect((failure as HelmError).stderr).toMatch(/attachmentBucket/);
  });
});
