import { describe, expect, it } from 'vitest';

import { exampleStack, only, runParley } from './harness.js';

const SERVICE_ROLE_ARN = 'arn:aws:iam::123456789012:role/parley-service';

describe('the Helm release', () => {
  it('installs ../charts/parley atomically into its own namespace', async () => {
    const { resources } = await runParley('dev', exampleStack('dev'));
    const release = only(resources, 'kubernetes:helm.sh/v3:Release').inputs;
    expect(release).toMatchObject({
      name: 'parley',
      chart: '../charts/parley',
      namespace: 'parley',
      createNamespace: false,
      atomic: true,
      cleanupOnFail: true,
      waitForJobs: true,
    });
    const namespace = only(resources, 'kubernetes:core/v1:Namespace').inputs.metadata;
    expect(namespace.name).toBe('parley');
    expect(namespace.labels['pod-security.kubernetes.io/enforce']).toBe('restricted');
  });

  it('gets exactly the values of the dev stack: in-cluster data, ingress, IRSA, buckets, Secret', async () => {
    const { resources } = await runParley('dev', exampleStack('dev'));
    expect(only(resources, 'kubernetes:helm.sh/v3:Release').inputs.values).toEqual({
      config: { logLevel: 'info' },
      secrets: { existingSecret: 'parley-credentials' },
      serviceAccount: {
        create: true,
        name: 'parley',
        annotations: { 'eks.amazonaws.com/role-arn': SERVICE_ROLE_ARN },
      },
      s3: {
        region: 'eu-west-1',
        attachmentsBucket: 'parley-dev-attachments-20250101000000000000000001',
        backupsBucket: 'parley-dev-backups-20250101000000000000000001',
      },
      api: { autoscaling: { enabled: true, minReplicas: 1, maxReplicas: 3 } },
      worker: { autoscaling: { enabled: true, minReplicas: 1, maxReplicas: 2 } },
      ingress: {
        enabled: true,
        controller: 'nginx-inc',
        className: 'nginx',
        host: 'chat.dev.example.com',
        tls: { secretName: 'parley-tls', clusterIssuer: 'letsencrypt-staging' },
      },
      gateway: { enabled: false },
      minio: { enabled: false },
      networkPolicy: {
        enabled: true,
        ingressNamespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'nginx-ingress' } },
      },
      mysql: { enabled: true },
      redis: { enabled: true },
    });
  });

  it('gets exactly the values of the prod stack: managed data, Gateway API, pinned image', async () => {
    const { resources } = await runParley('prod', exampleStack('prod'));
    expect(only(resources, 'kubernetes:helm.sh/v3:Release').inputs.values).toEqual({
      image: { repository: '123456789012.dkr.ecr.eu-west-1.amazonaws.com/parley', tag: '1.0.0' },
      config: { logLevel: 'info' },
      secrets: { existingSecret: 'parley-credentials' },
      serviceAccount: {
        create: true,
        name: 'parley',
        annotations: { 'eks.amazonaws.com/role-arn': SERVICE_ROLE_ARN },
      },
      s3: {
        region: 'eu-west-1',
        attachmentsBucket: 'example-parley-prod-attachments',
        backupsBucket: 'example-parley-prod-backups',
      },
      api: { autoscaling: { enabled: true, minReplicas: 3, maxReplicas: 30 } },
      worker: { autoscaling: { enabled: true, minReplicas: 2, maxReplicas: 10 } },
      ingress: { enabled: false },
      gateway: {
        enabled: true,
        parentRefs: [{ name: 'public', namespace: 'envoy-gateway-system', sectionName: 'https' }],
        hostnames: ['chat.example.com'],
      },
      minio: { enabled: false },
      networkPolicy: {
        enabled: true,
        ingressNamespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'envoy-gateway-system' } },
        // RDS and ElastiCache only inside the VPC; S3 and STS have public addresses here.
        externalDataCidrs: ['10.20.0.0/16'],
      },
      mysql: {
        enabled: false,
        external: {
          writerHost: 'parley-prod-mysql.c0ffee.eu-west-1.rds.amazonaws.com',
          readerHost: 'parley-prod-mysql-replica.c0ffee.eu-west-1.rds.amazonaws.com',
          port: 3306,
          database: 'parley',
          user: 'parley',
          migrationUser: 'parley_migrator',
          tls: { enabled: true, caConfigMap: 'parley-mysql-ca', caKey: 'ca.pem' },
        },
      },
      redis: {
        enabled: false,
        external: { url: 'rediss://master.parley-prod-redis.c0ffee.euw1.cache.amazonaws.com:6379' },
      },
    });
  });

  it('follows a custom namespace and service account into the values and the IRSA trust', async () => {
    const { resources } = await runParley('dev', {
      ...exampleStack('dev'),
      'parley:namespace': 'chat',
      'parley:serviceAccountName': 'parley-app',
      'parley:releaseName': 'talk',
    });
    const release = only(resources, 'kubernetes:helm.sh/v3:Release').inputs;
    expect(release.namespace).toBe('chat');
    expect(release.name).toBe('talk');
    expect(release.values.serviceAccount.name).toBe('parley-app');
    expect(release.values.secrets.existingSecret).toBe('talk-credentials');
    expect(release.values.ingress.tls.secretName).toBe('talk-tls');
    expect(only(resources, 'kubernetes:core/v1:Secret').inputs.metadata.namespace).toBe('chat');
    const trust = JSON.parse(only(resources, 'aws:iam/role:Role').inputs.assumeRolePolicy as string);
    expect(Object.values(trust.Statement[0].Condition.StringEquals)).toContain(
      'system:serviceaccount:chat:parley-app',
    );
  });
});

describe('traffic into the namespace', () => {
  it.each([
    [{ controller: 'haproxy', className: 'haproxy' }, 'haproxy-controller'],
    [{ controller: 'nginx-inc', className: 'nginx', controllerNamespace: 'edge' }, 'edge'],
  ])('lets the ingress controller of %j reach the API from %s', async (ingress, namespace) => {
    const { resources } = await runParley('dev', { ...exampleStack('dev'), 'parley:ingress': ingress });
    const values = only(resources, 'kubernetes:helm.sh/v3:Release').inputs.values;
    expect(values.networkPolicy.ingressNamespaceSelector).toEqual({
      matchLabels: { 'kubernetes.io/metadata.name': namespace },
    });
  });
});

describe('egress of the pods with the managed data plane', () => {
  it('is limited to the VPC for HTTPS too when S3 and STS have endpoints inside it', async () => {
    const prod = exampleStack('prod');
    const { resources } = await runParley('prod', {
      ...prod,
      'parley:network': { ...(prod['parley:network'] as object), privateAwsEndpoints: true },
    });
    const values = only(resources, 'kubernetes:helm.sh/v3:Release').inputs.values;
    expect(values.networkPolicy.externalDataCidrs).toEqual(['10.20.0.0/16']);
    expect(values.networkPolicy.s3EgressCidrs).toEqual(['10.20.0.0/16']);
  });

  it('keeps the chart defaults with the in-cluster data plane', async () => {
    const { resources } = await runParley('dev', exampleStack('dev'));
    const values = only(resources, 'kubernetes:helm.sh/v3:Release').inputs.values;
    expect(values.networkPolicy.externalDataCidrs).toBeUndefined();
    expect(values.networkPolicy.s3EgressCidrs).toBeUndefined();
  });
});
