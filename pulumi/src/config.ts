import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import * as pulumi from '@pulumi/pulumi';
import { z } from 'zod';

import { NAME_LIMITS, stackResourceNames, type StackResourceName } from './names.js';

/**
 * The typed stack configuration, read once from `Pulumi.<stack>.yaml` and validated as a whole:
 * a bad stack fails before any resource is planned, with every problem listed.
 *
 * Secrets (passwords, the JWT key) are not part of this schema: they are read with
 * `config.getSecret` in `readSecretOverrides` so they stay secret outputs from the first moment.
 */

export const PROJECT = 'parley';

/** The Pulumi project directory (where Pulumi.yaml is): relative paths in the config start here. */
const PROJECT_DIR = fileURLToPath(new URL('..', import.meta.url));

/**
 * AWS's bundle of every RDS certificate authority, all regions. RDS server certificates chain to
 * these private CAs, which no public trust store (Node's included) carries: a verified TLS
 * connection to RDS needs the bundle.
 */
export const RDS_CA_BUNDLE_URL = 'https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem';

/** The CA certificates of a PEM bundle file, normalised; or what is wrong with the file. */
export function readCaBundle(path: string): { pem: string } | { problem: string } {
  const file = resolve(PROJECT_DIR, path);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    return { problem: `cannot read ${file} (${code}); download it from ${RDS_CA_BUNDLE_URL}` };
  }
  const certificates = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (certificates.length === 0) return { problem: `${file} holds no PEM certificate` };
  for (const [index, pem] of certificates.entries()) {
    let certificate: X509Certificate;
    try {
      certificate = new X509Certificate(pem);
    } catch {
      return { problem: `certificate ${index + 1} in ${file} cannot be parsed` };
    }
    if (!certificate.ca) {
      return { problem: `certificate ${index + 1} in ${file} is not a CA certificate` };
    }
  }
  return { pem: `${certificates.join('\n')}\n` };
}

// The service's rule for S3_*_BUCKET (service/src/config.ts), so a name Pulumi accepts starts the service.
const SERVICE_BUCKET_RULE = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** Problems with a bucket name, by the service's rule plus the S3 naming rules it does not check. */
export function bucketNameProblems(name: string): string[] {
  const problems: string[] = [];
  if (!SERVICE_BUCKET_RULE.test(name)) {
    problems.push(
      'must be 3-63 characters of a-z, 0-9, "." and "-", starting and ending with a letter or digit',
    );
  }
  // Legal in S3 but refused here: the TLS-only bucket policy needs virtual-hosted-style HTTPS,
  // whose wildcard certificate does not cover names with dots.
  if (name.includes('.'))
    problems.push('must not contain "." (breaks TLS for virtual-hosted-style requests)');
  if (name.includes('--')) problems.push('must not contain "--"');
  if (/^(xn--|sthree-|amzn-s3-demo-)/.test(name)) problems.push('must not start with a reserved prefix');
  if (/(-s3alias|--ol-s3|--x-s3|--table-s3)$/.test(name))
    problems.push('must not end with a reserved suffix');
  return problems;
}

const bucketName = z.string().superRefine((name, ctx) => {
  for (const message of bucketNameProblems(name)) ctx.addIssue({ code: 'custom', message });
});

const dnsLabel = z
  .string()
  .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'must be a DNS label (a-z, 0-9, "-", at most 63)');

const hostname = z
  .string()
  .regex(
    /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/,
    'must be a fully qualified DNS name in lower case, e.g. chat.example.com',
  );

// The cluster's IAM OIDC provider: IRSA trusts tokens that this issuer signs, and nothing else.
const OIDC_PROVIDER_ARN = /^arn:aws[a-z-]*:iam::\d{12}:oidc-provider\/([a-z0-9.-]+(\/[A-Za-z0-9._-]+)*)$/;

/** `https://` or `http://localhost` origins only, no paths and no wildcards. */
const corsOrigin = z.string().superRefine((origin, ctx) => {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    ctx.addIssue({ code: 'custom', message: `"${origin}" is not a URL origin` });
    return;
  }
  const isLocal = url.protocol === 'http:' && ['localhost', '127.0.0.1'].includes(url.hostname);
  if (url.protocol !== 'https:' && !isLocal) {
    ctx.addIssue({ code: 'custom', message: `"${origin}" must use https (http only for localhost)` });
  }
  if (url.origin !== origin || origin.includes('*')) {
    ctx.addIssue({
      code: 'custom',
      message: `"${origin}" must be a bare origin like https://chat.example.com`,
    });
  }
});

const days = (max: number) => z.coerce.number().int().min(1, 'must be at least 1 day').max(max);
const replicas = z.coerce.number().int().min(1).max(100);
const autoscaling = z
  .object({ minReplicas: replicas.default(2), maxReplicas: replicas.default(10) })
  .strict()
  .refine((a) => a.minReplicas <= a.maxReplicas, { message: 'minReplicas must not exceed maxReplicas' });

const ingress = z
  .object({
    controller: z.enum(['nginx-inc', 'haproxy']),
    /**
     * Required: each controller's chart installs a class whose name another project uses too
     * (nginx: the retired ingress-nginx; haproxy: HAProxy Ingress), which would ignore our annotations.
     */
    className: z.string().min(1),
    clusterIssuer: z.string().min(1).optional(),
    tlsSecretName: dnsLabel.optional(),
    /** Where the controller's pods run: the chart's NetworkPolicy lets only them reach the API. */
    controllerNamespace: dnsLabel.optional(),
  })
  .strict();

const gateway = z
  .object({
    parentRefs: z
      .array(
        z
          .object({
            name: z.string().min(1),
            namespace: dnsLabel.optional(),
            sectionName: z.string().optional(),
          })
          .strict(),
      )
      .min(1),
    /** Where the Gateway's proxy pods run (Envoy Gateway: its own namespace by default). */
    proxyNamespace: dnsLabel.default('envoy-gateway-system'),
  })
  .strict();

/** An IPv4 VPC CIDR block: AWS allows /16 to /28. */
const vpcCidr = z.string().refine((cidr) => {
  const [address, bits, ...rest] = cidr.split('/');
  const octets = (address ?? '').split('.');
  return (
    rest.length === 0 &&
    octets.length === 4 &&
    octets.every((octet) => /^(0|[1-9]\d{0,2})$/.test(octet) && Number(octet) <= 255) &&
    /^\d{2}$/.test(bits ?? '') &&
    Number(bits) >= 16 &&
    Number(bits) <= 28
  );
}, 'must be an IPv4 VPC CIDR block from /16 to /28, e.g. 10.20.0.0/16');

const network = z
  .object({
    vpcId: z.string().regex(/^vpc-[0-9a-f]+$/, 'must be a VPC id (vpc-...)'),
    /** The VPC's CIDR: the pods' NetworkPolicy may reach RDS and ElastiCache only inside it. */
    vpcCidr,
    /**
     * S3 and STS are reached through interface VPC endpoints with private DNS: the pods' HTTPS
     * egress can then be limited to the VPC too. Otherwise S3 and STS have public addresses.
     */
    privateAwsEndpoints: z.boolean().default(false),
    subnetIds: z
      .array(z.string().regex(/^subnet-[0-9a-f]+$/, 'must be a subnet id (subnet-...)'))
      .min(2, 'needs at least two subnets in different availability zones'),
    clientSecurityGroupIds: z
      .array(z.string().regex(/^sg-[0-9a-f]+$/, 'must be a security group id (sg-...)'))
      .min(1, 'needs the security group of the nodes or pods that run Parley'),
  })
  .strict();

const StackConfigSchema = z
  .object({
    environment: z.enum(['dev', 'prod']),
    awsRegion: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'must be an AWS region such as eu-west-1'),
    hostname,
    oidcProviderArn: z
      .string()
      .regex(
        OIDC_PROVIDER_ARN,
        'must be the ARN of the cluster IAM OIDC provider, e.g. arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABC',
      ),
    namespace: dnsLabel.default('parley'),
    releaseName: dnsLabel.default('parley'),
    serviceAccountName: dnsLabel.default('parley'),
    chartPath: z.string().min(1).default('../charts/parley'),
    image: z
      .object({
        repository: z.string().min(1),
        tag: z
          .string()
          .min(1)
          .refine((tag) => tag !== 'latest', 'must be an exact tag, not latest')
          .optional(),
        digest: z
          .string()
          .regex(/^sha256:[0-9a-f]{64}$/, 'must be sha256:<64 hex>')
          .optional(),
      })
      .strict()
      .optional(),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
    buckets: z
      .object({ attachments: bucketName.optional(), backups: bucketName.optional() })
      .strict()
      .default({}),
    backupRetentionDays: days(3650).default(30),
    noncurrentVersionRetentionDays: days(3650).default(30),
    abortIncompleteUploadDays: days(30).default(2),
    corsOrigins: z.array(corsOrigin).min(1, 'list at least one origin that uploads attachments'),
    ingress: ingress.optional(),
    gateway: gateway.optional(),
    api: autoscaling.default({ minReplicas: 2, maxReplicas: 10 }),
    worker: autoscaling.default({ minReplicas: 1, maxReplicas: 5 }),
    secretsBackend: z.enum(['kubernetes', 'aws-secrets-manager']).default('kubernetes'),
    externalSecrets: z
      .object({ clusterSecretStore: z.string().min(1) })
      .strict()
      .optional(),
    dataPlane: z.enum(['in-cluster', 'aws-managed']).default('in-cluster'),
    network: network.optional(),
    database: z
      .object({
        instanceClass: z
          .string()
          .regex(/^db\.[a-z0-9]+\.[a-z0-9]+$/)
          .default('db.t4g.medium'),
        allocatedStorageGb: z.coerce.number().int().min(20).max(65_536).default(50),
        backupRetentionDays: days(35).default(7),
        multiAz: z.boolean().optional(),
        deletionProtection: z.boolean().optional(),
        /** The RDS CA bundle (RDS_CA_BUNDLE_URL), a path relative to the Pulumi project. */
        caBundleFile: z.string().min(1).optional(),
      })
      .strict()
      .default({
        instanceClass: 'db.t4g.medium',
        allocatedStorageGb: 50,
        backupRetentionDays: 7,
      }),
    cache: z
      .object({
        nodeType: z
          .string()
          .regex(/^cache\.[a-z0-9]+\.[a-z0-9]+$/)
          .default('cache.t4g.small'),
        replicas: z.coerce.number().int().min(1).max(5).default(1),
      })
      .strict()
      .default({ nodeType: 'cache.t4g.small', replicas: 1 }),
  })
  .strict();

/**
 * Rules that span keys. Checked on the raw values, not as a zod refinement: zod skips refinements
 * when any field is invalid, and the operator should see every problem in one run.
 */
function crossKeyProblems(raw: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const present = (key: string) => raw[key] !== undefined;
  if (present('ingress') === present('gateway'))
    problems.push(`${PROJECT}:ingress: set exactly one of ingress or gateway`);
  if (raw.secretsBackend === 'aws-secrets-manager' && !present('externalSecrets')) {
    problems.push(
      `${PROJECT}:externalSecrets: secretsBackend aws-secrets-manager needs externalSecrets.clusterSecretStore`,
    );
  }
  if (raw.dataPlane === 'aws-managed' && !present('network')) {
    problems.push(
      `${PROJECT}:network: dataPlane aws-managed needs network.{vpcId, vpcCidr, subnetIds, clientSecurityGroupIds}`,
    );
  }
  const database = raw.database as { caBundleFile?: unknown } | undefined;
  if (raw.dataPlane === 'aws-managed' && database?.caBundleFile === undefined) {
    problems.push(
      `${PROJECT}:database.caBundleFile: dataPlane aws-managed connects to RDS over verified TLS and needs the RDS CA bundle (${RDS_CA_BUNDLE_URL})`,
    );
  }
  const buckets = raw.buckets as { attachments?: unknown; backups?: unknown } | undefined;
  if (buckets?.attachments !== undefined && buckets.attachments === buckets.backups) {
    problems.push(`${PROJECT}:buckets.backups: must differ from buckets.attachments`);
  }
  return problems;
}

// Lower-case letters, digits and single hyphens: the stack name goes into S3, RDS and ElastiCache
// names, and this is what all of them accept (RDS and ElastiCache refuse "--", none takes "_").
const STACK_NAME = /^[a-z0-9]+(-[a-z0-9]+)*$/;

/** Problems with the stack name, judged by the AWS names this stack's configuration derives from it. */
export function stackNameProblems(stack: string, raw: Record<string, unknown>): string[] {
  if (!STACK_NAME.test(stack)) {
    return [
      `stack "${stack}": must be lower-case letters, digits and single hyphens (it becomes part of AWS resource names), e.g. prod-eu`,
    ];
  }
  const buckets = (typeof raw.buckets === 'object' && raw.buckets) || {};
  const used: StackResourceName[] = [];
  if (!('attachments' in buckets)) used.push('attachmentsBucketPrefix');
  if (!('backups' in buckets)) used.push('backupsBucketPrefix');
  if (raw.dataPlane === 'aws-managed') {
    used.push('mysqlIdentifier', 'mysqlReplicaIdentifier', 'redisReplicationGroupId');
    if (raw.environment === 'prod') used.push('mysqlFinalSnapshotIdentifier');
  }
  const names = stackResourceNames(stack);
  const tooLong = used
    .map((key) => ({ key, excess: names[key].length - NAME_LIMITS[key].max }))
    .filter(({ excess }) => excess > 0)
    .sort((a, b) => b.excess - a.excess)[0];
  if (!tooLong) return [];
  const { max, what } = NAME_LIMITS[tooLong.key];
  return [
    `stack "${stack}": must be at most ${stack.length - tooLong.excess} characters long, since it becomes part of ${what} (${names[tooLong.key]}, at most ${max})`,
  ];
}

export type StackConfig = z.output<typeof StackConfigSchema> & {
  /** Issuer host/path of the OIDC provider, as IAM condition keys spell it. */
  oidcIssuer: string;
  stack: string;
  /** The CA certificates of `database.caBundleFile` (PEM), when it is set. */
  mysqlCaBundle?: string;
};

export class StackConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid stack configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'StackConfigError';
  }
}

// Keys whose values are YAML objects or lists; Pulumi hands them over as JSON text.
const STRUCTURED_KEYS = [
  'image',
  'buckets',
  'corsOrigins',
  'ingress',
  'gateway',
  'api',
  'worker',
  'externalSecrets',
  'network',
  'database',
  'cache',
] as const;
const SCALAR_KEYS = [
  'environment',
  'hostname',
  'oidcProviderArn',
  'namespace',
  'releaseName',
  'serviceAccountName',
  'chartPath',
  'logLevel',
  'backupRetentionDays',
  'noncurrentVersionRetentionDays',
  'abortIncompleteUploadDays',
  'secretsBackend',
  'dataPlane',
] as const;

export const SECRET_KEYS = [
  'mysqlPassword',
  'mysqlMigrationPassword',
  'mysqlRootPassword',
  'mysqlReplicationPassword',
  'redisPassword',
  'jwtPrivateKey',
] as const;
export type SecretKey = (typeof SECRET_KEYS)[number];

/**
 * The backup passphrase and, during a rotation, the previous ones (comma-separated), as the service
 * reads them (BACKUP_ENCRYPTION_KEY, BACKUP_PREVIOUS_KEYS). Optional: the passphrase is generated.
 */
export const BACKUP_SECRET_KEYS = ['backupEncryptionKey', 'backupPreviousKeys'] as const;
export type BackupSecretKey = (typeof BACKUP_SECRET_KEYS)[number];

/** What is wrong with an operator-supplied backup key, described without repeating it. */
export function backupKeyProblem(key: BackupSecretKey, value: string): string | undefined {
  const keys = key === 'backupPreviousKeys' ? value.split(',').map((k) => k.trim()) : [value];
  // The service's own rule (service/src/config.ts): a passphrase of at least 16 characters.
  if (keys.some((k) => k.length < 16)) return 'each passphrase must be at least 16 characters long';
  if (key === 'backupEncryptionKey' && value.includes(',')) return 'must not contain a comma';
  return undefined;
}

function isEd25519Pkcs8Pem(pem: string): boolean {
  if (!pem.includes('-----BEGIN PRIVATE KEY-----')) return false;
  try {
    return createPrivateKey(pem).asymmetricKeyType === 'ed25519';
  } catch {
    return false;
  }
}

/** What is wrong with an operator-supplied secret, described without repeating it. */
export function secretOverrideProblem(key: SecretKey, value: string): string | undefined {
  if (key === 'jwtPrivateKey') {
    return isEd25519Pkcs8Pem(value)
      ? undefined
      : 'must be an Ed25519 private key in PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----")';
  }
  // The strictest consumer decides: ElastiCache AUTH tokens are 16-128 printable characters
  // without @, " or /; the same rule keeps MySQL passwords safe in connection strings.
  if (value.length < 16 || value.length > 128) return 'must be 16 to 128 characters long';
  if (!/^[\x21-\x7e]+$/.test(value) || /[@"/]/.test(value)) {
    return 'may only contain printable ASCII without spaces, "@", \'"\' or "/"';
  }
  return undefined;
}

function configKey(path: PropertyKey[]): string {
  const [head, ...rest] = path;
  if (head === 'awsRegion') return 'aws:region';
  return `${PROJECT}:${[String(head ?? ''), ...rest.map(String)].join('.')}`;
}

/** Reads and validates the stack's configuration; throws StackConfigError listing every problem. */
export function loadStackConfig(): StackConfig {
  const config = new pulumi.Config(PROJECT);
  const problems: string[] = [];
  const raw: Record<string, unknown> = { awsRegion: new pulumi.Config('aws').get('region') };

  for (const key of SCALAR_KEYS) raw[key] = config.get(key);
  for (const key of STRUCTURED_KEYS) {
    const text = config.get(key);
    if (text === undefined) continue;
    try {
      raw[key] = JSON.parse(text);
    } catch {
      problems.push(`${PROJECT}:${key}: must be a YAML object or list`);
    }
  }
  const known = new Set<string>([...SCALAR_KEYS, ...STRUCTURED_KEYS, ...SECRET_KEYS, ...BACKUP_SECRET_KEYS]);
  for (const key of Object.keys(pulumi.runtime.allConfig())) {
    const [namespace, name] = key.split(':');
    if (namespace === PROJECT && name && !known.has(name)) problems.push(`${key}: unknown key (typo?)`);
  }

  for (const key of SECRET_KEYS) {
    // The raw value, read only to validate it: it is never logged and leaves here as a secret.
    const value = pulumi.runtime.getConfig(`${PROJECT}:${key}`);
    const problem = value === undefined ? undefined : secretOverrideProblem(key, value);
    if (problem) problems.push(`${PROJECT}:${key}: ${problem}`);
  }
  for (const key of BACKUP_SECRET_KEYS) {
    const value = pulumi.runtime.getConfig(`${PROJECT}:${key}`);
    const problem = value === undefined ? undefined : backupKeyProblem(key, value);
    if (problem) problems.push(`${PROJECT}:${key}: ${problem}`);
  }

  const parsed = StackConfigSchema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      // Never echo the rejected value back: a secret may have been put under the wrong key.
      const missing = issue.input === undefined && ['invalid_type', 'invalid_value'].includes(issue.code);
      problems.push(`${configKey(issue.path)}: ${missing ? 'is required' : issue.message}`);
    }
  }
  problems.push(...crossKeyProblems(raw));
  problems.push(...stackNameProblems(pulumi.getStack(), raw));
  const caBundleFile = parsed.data?.database.caBundleFile;
  const caBundle = caBundleFile === undefined ? undefined : readCaBundle(caBundleFile);
  if (caBundle && 'problem' in caBundle)
    problems.push(`${PROJECT}:database.caBundleFile: ${caBundle.problem}`);
  if (problems.length > 0 || !parsed.success) throw new StackConfigError(problems);

  const issuer = OIDC_PROVIDER_ARN.exec(parsed.data.oidcProviderArn)![1]!;
  return {
    ...parsed.data,
    oidcIssuer: issuer,
    stack: pulumi.getStack(),
    ...(caBundle && 'pem' in caBundle ? { mysqlCaBundle: caBundle.pem } : {}),
  };
}

/** Secrets the operator set with `pulumi config set --secret`; the rest are generated. */
export function readSecretOverrides(): Partial<Record<SecretKey | BackupSecretKey, pulumi.Output<string>>> {
  const config = new pulumi.Config(PROJECT);
  const overrides: Partial<Record<SecretKey | BackupSecretKey, pulumi.Output<string>>> = {};
  for (const key of [...SECRET_KEYS, ...BACKUP_SECRET_KEYS]) {
    const value = config.getSecret(key);
    if (value !== undefined) overrides[key] = value;
  }
  return overrides;
}
