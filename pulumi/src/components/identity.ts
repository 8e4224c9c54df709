import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';

import { irsaTrustPolicy, serviceAccessPolicy } from '../policies.js';

export interface ServiceIdentityArgs {
  stack: string;
  oidcProviderArn: string;
  oidcIssuer: string;
  namespace: string;
  serviceAccountName: string;
  attachmentsBucketArn: pulumi.Input<string>;
  backupsBucketArn: pulumi.Input<string>;
  keyArn: pulumi.Input<string>;
  /** Region of the buckets: the key may only be used through S3 there. */
  region: string;
  tags: Record<string, string>;
}

/**
 * The AWS identity of the api and worker pods: an IAM role that only their Kubernetes service
 * account can assume (IRSA), allowed exactly the S3 and KMS calls the service makes.
 */
export class ServiceIdentity extends pulumi.ComponentResource {
  readonly role: aws.iam.Role;
  readonly roleArn: pulumi.Output<string>;

  constructor(name: string, args: ServiceIdentityArgs, opts?: pulumi.ComponentResourceOptions) {
    super('parley:identity:ServiceIdentity', name, {}, opts);

    this.role = new aws.iam.Role(
      name,
      {
        description: `Parley ${args.stack}: pods of service account ${args.namespace}/${args.serviceAccountName}`,
        assumeRolePolicy: JSON.stringify(
          irsaTrustPolicy({
            oidcProviderArn: args.oidcProviderArn,
            oidcIssuer: args.oidcIssuer,
            namespace: args.namespace,
            serviceAccountName: args.serviceAccountName,
          }),
        ),
        // The SDK refreshes web-identity credentials itself; an hour bounds a leaked token.
        maxSessionDuration: 3600,
        tags: args.tags,
      },
      { parent: this },
    );

    new aws.iam.RolePolicy(
      name,
      {
        role: this.role.id,
        policy: pulumi
          .all([args.attachmentsBucketArn, args.backupsBucketArn, args.keyArn])
          .apply(([attachmentsBucketArn, backupsBucketArn, keyArn]) =>
            JSON.stringify(
              serviceAccessPolicy({ attachmentsBucketArn, backupsBucketArn, keyArn, region: args.region }),
            ),
          ),
      },
      { parent: this },
    );

    this.roleArn = this.role.arn;
    this.registerOutputs({ roleArn: this.roleArn });
  }
}
