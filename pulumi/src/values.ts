import type * as pulumi from '@pulumi/pulumi';

import { BACKUP_KEY_DATA_KEYS } from './components/backup-key.js';
import type { StackConfig } from './config.js';

/**
 * The chart values a stack hands to `charts/parley`, built only from the agreed top-level contract
 * (image, api, worker, config, secrets, backups, serviceAccount, s3, ingress, gateway, redis, mysql,
 * minio, networkPolicy); everything below those keys keeps the chart's defaults.
 */
export interface ReleaseWiring {
  awsRegion: string;
  secretName: string;
  roleArn: pulumi.Input<string>;
  attachmentsBucket: pulumi.Input<string>;
  backupsBucket: pulumi.Input<string>;
  /** The Secret holds `backup-previous-keys` (a key rotation is under way): the worker reads them. */
  backupPreviousKeys: boolean;
  /** Set with `dataPlane: aws-managed`; otherwise the chart runs MySQL and Redis in the cluster. */
  managed?: {
    writerHost: pulumi.Input<string>;
    readerHost: pulumi.Input<string>;
    port: number;
    database: string;
    user: string;
    migrationUser: string;
    redisUrl: pulumi.Input<string>;
    /** Verified TLS to MySQL: the ConfigMap and key of the CA bundle. */
    tls: { caConfigMap: string; caKey: string };
  };
}

export type ChartValues = Record<string, unknown>;

/** Default install namespaces of the F5 NGINX Ingress Controller and HAProxy Ingress charts. */
const CONTROLLER_NAMESPACES = { 'nginx-inc': 'nginx-ingress', haproxy: 'haproxy-controller' } as const;

/** The namespace whose pods (ingress controller or gateway proxies) carry traffic to the API. */
function trafficNamespace(config: StackConfig): string {
  if (config.gateway) return config.gateway.proxyNamespace;
  const ingress = config.ingress!;
  return ingress.controllerNamespace ?? CONTROLLER_NAMESPACES[ingress.controller];
}

export function chartValues(config: StackConfig, wiring: ReleaseWiring): ChartValues {
  const values: ChartValues = {
    config: { logLevel: config.logLevel },
    secrets: { existingSecret: wiring.secretName },
    // The passphrase is key backup-encryption-key of that Secret, the chart's default.
    ...(wiring.backupPreviousKeys
      ? { backups: { encryption: { previousKeysKey: BACKUP_KEY_DATA_KEYS.previous } } }
      : {}),
    serviceAccount: {
      create: true,
      name: config.serviceAccountName,
      // IRSA: EKS injects web-identity credentials for this role into every pod of the account.
      annotations: { 'eks.amazonaws.com/role-arn': wiring.roleArn },
    },
    s3: {
      region: wiring.awsRegion,
      attachmentsBucket: wiring.attachmentsBucket,
      backupsBucket: wiring.backupsBucket,
    },
    api: { autoscaling: { enabled: true, ...config.api } },
    worker: { autoscaling: { enabled: true, ...config.worker } },
    ingress: config.ingress
      ? {
          enabled: true,
          controller: config.ingress.controller,
          className: config.ingress.className,
          host: config.hostname,
          tls: {
            secretName: config.ingress.tlsSecretName ?? `${config.releaseName}-tls`,
            ...(config.ingress.clusterIssuer ? { clusterIssuer: config.ingress.clusterIssuer } : {}),
          },
        }
      : { enabled: false },
    gateway: config.gateway
      ? { enabled: true, parentRefs: config.gateway.parentRefs, hostnames: [config.hostname] }
      : { enabled: false },
    // S3 is the real thing on AWS; the in-cluster MinIO is for clusters without it.
    minio: { enabled: false },
    networkPolicy: {
      enabled: true,
      ingressNamespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': trafficNamespace(config) } },
    },
  };
  if (config.image) values.image = { ...config.image };
  if (wiring.managed && config.network) {
    // RDS and ElastiCache live in the VPC: nothing else needs the private ranges the chart allows
    // by default. HTTPS for S3 and STS stays open unless they have endpoints inside the VPC.
    const { vpcCidr, privateAwsEndpoints } = config.network;
    values.networkPolicy = {
      ...(values.networkPolicy as ChartValues),
      externalDataCidrs: [vpcCidr],
      ...(privateAwsEndpoints ? { s3EgressCidrs: [vpcCidr] } : {}),
    };
  }
  if (wiring.managed) {
    const { writerHost, readerHost, port, database, user, migrationUser, redisUrl, tls } = wiring.managed;
    values.mysql = {
      enabled: false,
      external: {
        writerHost,
        readerHost,
        port,
        database,
        user,
        migrationUser,
        // RDS refuses plaintext (require_secure_transport); the pods verify it with the bundle.
        tls: { enabled: true, ...tls },
      },
    };
    values.redis = { enabled: false, external: { url: redisUrl } };
  } else {
    values.mysql = { enabled: true };
    values.redis = { enabled: true };
  }
  return values;
}
