import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';

import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';

/** Key of the CA bundle in the ConfigMap, as the chart's `mysql.external.tls.caKey` names it. */
export const MYSQL_CA_KEY = 'ca.pem';

/**
 * The official MySQL image the chart runs (`mysql.image` in charts/parley/values.yaml; a test keeps
 * the two equal): its `mysql` client creates the users.
 */
export const MYSQL_CLIENT_IMAGE = 'mysql:8.4.6';

/** What each database user may do on the service's database. */
export const APP_PRIVILEGES = 'SELECT, INSERT, UPDATE, DELETE';
export const MIGRATION_PRIVILEGES = 'SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, DROP, INDEX, REFERENCES';

const SECRETS_DIR = '/var/run/secrets/parley';
const CA_DIR = '/etc/parley/mysql-ca';

/**
 * The Job's script (create-database-users.sh, beside this file): CREATE USER IF NOT EXISTS, ALTER
 * USER … IDENTIFIED BY … REQUIRE SSL and GRANT for both users, as the master user over verified
 * TLS, with every password read from the mounted Secret.
 */
export const CREATE_USERS_SCRIPT = readFileSync(
  new URL('./create-database-users.sh', import.meta.url),
  'utf8',
);

export interface ManagedDatabaseAccessArgs {
  namespace: pulumi.Input<string>;
  releaseName: string;
  /** PEM certificates of the CAs that sign the database's server certificate (the RDS bundle). */
  caBundle: string;
  writerHost: pulumi.Input<string>;
  port: number;
  database: string;
  adminUser: string;
  appUser: string;
  migrationUser: string;
  /** The Secret with `mysql-root-password`, `mysql-password` and `mysql-migration-password`. */
  secretName: string;
  /** The same passwords as outputs: only a keyed digest of them reaches the Job, to rerun it on rotation. */
  passwords: { admin: pulumi.Input<string>; app: pulumi.Input<string>; migration: pulumi.Input<string> };
}

const labels = {
  'app.kubernetes.io/part-of': 'parley',
  'app.kubernetes.io/managed-by': 'pulumi',
  'app.kubernetes.io/component': 'database-access',
};

/**
 * The Kubernetes side of `dataPlane: aws-managed`: how Parley's pods get into RDS. A ConfigMap with
 * the CA bundle the service (`mysql.external.tls.caConfigMap`) verifies the server with, and a Job
 * that creates the service's and the migrations' database users, which RDS does not: the release
 * (whose pre-install migrations log in as the migration user) waits for it.
 */
export class ManagedDatabaseAccess extends pulumi.ComponentResource {
  readonly caConfigMapName: string;
  readonly usersJob: k8s.batch.v1.Job;

  constructor(name: string, args: ManagedDatabaseAccessArgs, opts?: pulumi.ComponentResourceOptions) {
    super('parley:data:ManagedDatabaseAccess', name, {}, opts);
    this.caConfigMapName = `${args.releaseName}-mysql-ca`;

    const caConfigMap = new k8s.core.v1.ConfigMap(
      `${name}-mysql-ca`,
      {
        metadata: { name: this.caConfigMapName, namespace: args.namespace, labels },
        data: { [MYSQL_CA_KEY]: args.caBundle },
      },
      { parent: this },
    );

    // Changes with any of the passwords, so a rotation reruns the Job. Keyed with the master
    // password, it tells nothing about them to whoever reads the Job, so it need not stay a
    // secret output (which would hide the Job's whole spec in every preview diff).
    const credentialsDigest = pulumi.unsecret(
      pulumi
        .all([args.passwords.admin, args.passwords.app, args.passwords.migration])
        .apply(([admin, app, migration]) =>
          createHmac('sha256', admin).update(`${app}\n${migration}`).digest('hex').slice(0, 32),
        ),
    );

    const runAs = 999; // the image's mysql user
    this.usersJob = new k8s.batch.v1.Job(
      `${name}-mysql-users`,
      {
        metadata: {
          name: `${args.releaseName}-mysql-users`,
          namespace: args.namespace,
          labels,
          // A Job that failed (database not reachable yet, say) is replaced on the next `pulumi up`
          // instead of being waited for again.
          annotations: { 'pulumi.com/replaceUnready': 'true' },
        },
        spec: {
          backoffLimit: 4,
          activeDeadlineSeconds: 600,
          template: {
            metadata: { labels, annotations: { 'checksum/credentials': credentialsDigest } },
            spec: {
              restartPolicy: 'Never',
              automountServiceAccountToken: false,
              enableServiceLinks: false,
              securityContext: {
                runAsNonRoot: true,
                runAsUser: runAs,
                runAsGroup: runAs,
                fsGroup: runAs,
                seccompProfile: { type: 'RuntimeDefault' },
              },
              containers: [
                {
                  name: 'create-users',
                  image: MYSQL_CLIENT_IMAGE,
                  imagePullPolicy: 'IfNotPresent',
                  command: ['bash', '-c', CREATE_USERS_SCRIPT],
                  env: [
                    { name: 'MYSQL_HOST', value: args.writerHost },
                    { name: 'MYSQL_PORT', value: String(args.port) },
                    { name: 'MYSQL_DATABASE', value: args.database },
                    { name: 'MYSQL_ADMIN_USER', value: args.adminUser },
                    { name: 'MYSQL_CA_FILE', value: `${CA_DIR}/${MYSQL_CA_KEY}` },
                    { name: 'APP_USER', value: args.appUser },
                    { name: 'APP_PRIVILEGES', value: APP_PRIVILEGES },
                    { name: 'MIGRATION_USER', value: args.migrationUser },
                    { name: 'MIGRATION_PRIVILEGES', value: MIGRATION_PRIVILEGES },
                    { name: 'SECRETS_DIR', value: SECRETS_DIR },
                    { name: 'TMPDIR', value: '/tmp' },
                    { name: 'HOME', value: '/tmp' },
                  ],
                  resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '128Mi' } },
                  securityContext: {
                    allowPrivilegeEscalation: false,
                    readOnlyRootFilesystem: true,
                    runAsNonRoot: true,
                    capabilities: { drop: ['ALL'] },
                    seccompProfile: { type: 'RuntimeDefault' },
                  },
                  volumeMounts: [
                    { name: 'secrets', mountPath: SECRETS_DIR, readOnly: true },
                    { name: 'mysql-ca', mountPath: CA_DIR, readOnly: true },
                    { name: 'tmp', mountPath: '/tmp' },
                  ],
                },
              ],
              volumes: [
                {
                  // Only the three passwords this Job needs.
                  name: 'secrets',
                  secret: {
                    secretName: args.secretName,
                    defaultMode: 0o400,
                    items: ['mysql-root-password', 'mysql-password', 'mysql-migration-password'].map(
                      (key) => ({ key, path: key }),
                    ),
                  },
                },
                {
                  name: 'mysql-ca',
                  configMap: {
                    name: this.caConfigMapName,
                    items: [{ key: MYSQL_CA_KEY, path: MYSQL_CA_KEY }],
                  },
                },
                { name: 'tmp', emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } },
              ],
            },
          },
        },
      },
      {
        parent: this,
        dependsOn: [caConfigMap],
        // The name is fixed and a Job's template immutable: a changed Job is deleted, then created.
        deleteBeforeReplace: true,
        customTimeouts: { create: '15m', update: '15m' },
      },
    );

    this.registerOutputs({ caConfigMapName: this.caConfigMapName });
  }
}
