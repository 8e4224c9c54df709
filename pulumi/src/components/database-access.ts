import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';

/** Key of the CA bundle in the ConfigMap, as the chart's `mysql.external.tls.caKey` names it. */
export const MYSQL_CA_KEY = 'ca.pem';

export interface ManagedDatabaseAccessArgs {
  namespace: pulumi.Input<string>;
  releaseName: string;
  /** PEM certificates of the CAs that sign the database's server certificate (the RDS bundle). */
  caBundle: string;
}

const labels = {
  'app.kubernetes.io/part-of': 'parley',
  'app.kubernetes.io/managed-by': 'pulumi',
  'app.kubernetes.io/component': 'database-access',
};

/**
 * The Kubernetes side of `dataPlane: aws-managed`: how Parley's pods get into RDS. A ConfigMap with
 * the CA bundle the service (`mysql.external.tls.caConfigMap`) verifies the server with.
 */
export class ManagedDatabaseAccess extends pulumi.ComponentResource {
  readonly caConfigMapName: string;

  constructor(name: string, args: ManagedDatabaseAccessArgs, opts?: pulumi.ComponentResourceOptions) {
    super('parley:data:ManagedDatabaseAccess', name, {}, opts);
    this.caConfigMapName = `${args.releaseName}-mysql-ca`;

    new k8s.core.v1.ConfigMap(
      `${name}-mysql-ca`,
      {
        metadata: { name: this.caConfigMapName, namespace: args.namespace, labels },
        data: { [MYSQL_CA_KEY]: args.caBundle },
      },
      { parent: this },
    );

    this.registerOutputs({ caConfigMapName: this.caConfigMapName });
  }
}
