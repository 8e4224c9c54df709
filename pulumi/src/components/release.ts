import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';

import type { ChartValues } from '../values.js';

/**
 * The namespace Parley runs in. Created before the release so the Secret can land in it first;
 * Pod Security Admission enforces `restricted`, which the chart's hardened pods satisfy.
 */
export class ParleyNamespace extends pulumi.ComponentResource {
  readonly name: pulumi.Output<string>;

  constructor(name: string, args: { namespace: string }, opts?: pulumi.ComponentResourceOptions) {
    super('parley:release:ParleyNamespace', name, {}, opts);
    const namespace = new k8s.core.v1.Namespace(
      name,
      {
        metadata: {
          name: args.namespace,
          labels: {
            'app.kubernetes.io/part-of': 'parley',
            'app.kubernetes.io/managed-by': 'pulumi',
            'pod-security.kubernetes.io/enforce': 'restricted',
            'pod-security.kubernetes.io/warn': 'restricted',
          },
        },
      },
      { parent: this },
    );
    this.name = namespace.metadata.name;
    this.registerOutputs({ name: this.name });
  }
}

export interface ParleyReleaseArgs {
  chartPath: string;
  releaseName: string;
  namespace: pulumi.Input<string>;
  values: ChartValues;
}

/**
 * `charts/parley` installed as a real Helm release (hooks, `helm test` and `helm rollback` work):
 * atomic, so a release whose pods or migration Job do not come up is rolled back.
 */
export class ParleyRelease extends pulumi.ComponentResource {
  readonly release: k8s.helm.v3.Release;
  readonly status: pulumi.Output<string>;

  constructor(name: string, args: ParleyReleaseArgs, opts?: pulumi.ComponentResourceOptions) {
    super('parley:release:ParleyRelease', name, {}, opts);
    this.release = new k8s.helm.v3.Release(
      name,
      {
        name: args.releaseName,
        chart: args.chartPath,
        namespace: args.namespace,
        createNamespace: false,
        values: args.values,
        atomic: true,
        cleanupOnFail: true,
        waitForJobs: true,
        timeout: 600,
        maxHistory: 10,
      },
      { parent: this },
    );
    this.status = this.release.status.status;
    this.registerOutputs({ status: this.status });
  }
}
