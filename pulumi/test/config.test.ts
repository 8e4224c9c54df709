import { generateKeyPairSync } from 'node:crypto';

import { describe, expect, it } from 'vitest';

import { configProblem, exampleStack, runParley, useStack, type StackSettings } from './harness.js';

const dev = exampleStack('dev');
const without = (settings: StackSettings, key: string): StackSettings => {
  const copy = { ...settings };
  delete copy[key];
  return copy;
};

describe('stack configuration', () => {
  it.each(['dev', 'prod'] as const)('accepts the example %s stack', async (stack) => {
    expect(await configProblem(exampleStack(stack))).toBeUndefined();
  });

  it('rejects a stack without the cluster OIDC provider, saying which key is missing', async () => {
    expect(await configProblem(without(dev, 'parley:oidcProviderArn'))).toBe(
      'invalid stack configuration:\n  - parley:oidcProviderArn: is required',
    );
  });

  it('rejects an OIDC provider that is not an IAM OIDC provider ARN', async () => {
    const message = await configProblem({
      ...dev,
      'parley:oidcProviderArn': 'https://oidc.eks.eu-west-1.amazonaws.com/id/ABC',
    });
    expect(message).toContain('parley:oidcProviderArn: must be the ARN of the cluster IAM OIDC provider');
  });

  it.each([
    ['Parley-Attachments', 'must be 3-63 characters'],
    ['ab', 'must be 3-63 characters'],
    ['parley.attachments', 'must not contain "."'],
    ['xn--parley', 'must not start with a reserved prefix'],
    ['parley-attachments-', 'must be 3-63 characters'],
  ])('rejects the bucket name %j with a clear message', async (name, reason) => {
    const message = await configProblem({ ...dev, 'parley:buckets': { attachments: name } });
    expect(message).toContain(`parley:buckets.attachments: ${reason}`);
  });

  it('rejects the same name for both buckets', async () => {
    const message = await configProblem({
      ...dev,
      'parley:buckets': { attachments: 'parley-x', backups: 'parley-x' },
    });
    expect(message).toContain('parley:buckets.backups: must differ from buckets.attachments');
  });

  it.each([0, -5])('rejects a backup retention of %i days', async (days) => {
    expect(await configProblem({ ...dev, 'parley:backupRetentionDays': days })).toBe(
      'invalid stack configuration:\n  - parley:backupRetentionDays: must be at least 1 day',
    );
  });

  it.each([
    ['*', 'is not a URL origin'],
    ['http://chat.example.com', 'must use https'],
    ['https://chat.example.com/upload', 'must be a bare origin'],
    ['https://*.example.com', 'must be a bare origin'],
  ])('rejects the CORS origin %j', async (origin, reason) => {
    expect(await configProblem({ ...dev, 'parley:corsOrigins': [origin] })).toContain(
      `parley:corsOrigins.0: "${origin}" ${reason}`,
    );
  });

  it('lists every problem at once, not just the first', async () => {
    const message = await configProblem({
      ...without(without(dev, 'parley:oidcProviderArn'), 'parley:ingress'),
      'parley:backupRetentionDays': 0,
      'parley:buckets': { backups: 'Bad_Name' },
      'parley:dataPlane': 'aws-managed',
      'parley:hostnme': 'typo.example.com',
    });
    expect(message?.split('\n')).toEqual([
      'invalid stack configuration:',
      '  - parley:hostnme: unknown key (typo?)',
      '  - parley:oidcProviderArn: is required',
      expect.stringMatching(/^ {2}- parley:buckets\.backups: must be 3-63 characters/),
      '  - parley:backupRetentionDays: must be at least 1 day',
      '  - parley:ingress: set exactly one of ingress or gateway',
      '  - parley:network: dataPlane aws-managed needs network.{vpcId, vpcCidr, subnetIds, clientSecurityGroupIds}',
      expect.stringMatching(
        /^ {2}- parley:database\.caBundleFile: dataPlane aws-managed connects to RDS over verified TLS/,
      ),
    ]);
  });

  it('requires the AWS region, since the chart needs it for S3', async () => {
    expect(await configProblem(without(dev, 'aws:region'))).toContain('aws:region: is required');
  });

  it('rejects both ingress and gateway at once', async () => {
    const message = await configProblem({ ...dev, 'parley:gateway': { parentRefs: [{ name: 'public' }] } });
    expect(message).toContain('parley:ingress: set exactly one of ingress or gateway');
  });

  it('requires the IngressClass by name: both controllers share theirs with another project', async () => {
    const ingress = { controller: 'haproxy', clusterIssuer: 'letsencrypt-staging' };
    expect(await configProblem({ ...dev, 'parley:ingress': ingress })).toContain('parley:ingress.className');
  });

  it('rejects the Secrets Manager backend without a ClusterSecretStore', async () => {
    expect(await configProblem({ ...dev, 'parley:secretsBackend': 'aws-secrets-manager' })).toContain(
      'parley:externalSecrets: secretsBackend aws-secrets-manager needs externalSecrets.clusterSecretStore',
    );
  });

  it('rejects a JWT key that is not Ed25519, without echoing it', async () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 })
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString();
    await useStack('dev', { ...dev, 'parley:jwtPrivateKey': rsa }, ['parley:jwtPrivateKey']);
    const { loadStackConfig } = await import('../src/config.js');
    let message = '';
    try {
      loadStackConfig();
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toBe(
      'invalid stack configuration:\n  - parley:jwtPrivateKey: must be an Ed25519 private key in PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----")',
    );
    expect(message).not.toContain(rsa.split('\n')[1]);
  });

  it('rejects a short or URL-breaking password, without echoing it', async () => {
    const message = await configProblem({
      ...dev,
      'parley:redisPassword': 'short',
      'parley:mysqlPassword': 'has/slash-and-long-enough',
    });
    expect(message).toContain('parley:mysqlPassword: may only contain printable ASCII');
    expect(message).toContain('parley:redisPassword: must be 16 to 128 characters long');
    expect(message).not.toContain('has/slash');
  });

  it('stops the program before any resource is created', async () => {
    await expect(runParley('dev', without(dev, 'parley:oidcProviderArn'))).rejects.toThrow(
      'parley:oidcProviderArn: is required',
    );
  });
});

describe('the managed data plane network', () => {
  const prod = exampleStack('prod');
  const network = prod['parley:network'] as Record<string, unknown>;

  it('requires the VPC CIDR the NetworkPolicy limits database traffic to', async () => {
    const { vpcCidr: _omitted, ...withoutCidr } = network;
    expect(await configProblem({ ...prod, 'parley:network': withoutCidr }, 'prod')).toBe(
      'invalid stack configuration:\n  - parley:network.vpcCidr: is required',
    );
  });

  it.each(['10.20.0.0', '10.20.0.0/8', '10.20.0.0/29', '10.256.0.0/16', '0.0.0.0/0', 'fd00::/56'])(
    'rejects the VPC CIDR %j',
    async (vpcCidr) => {
      expect(await configProblem({ ...prod, 'parley:network': { ...network, vpcCidr } }, 'prod')).toBe(
        'invalid stack configuration:\n  - parley:network.vpcCidr: must be an IPv4 VPC CIDR block from /16 to /28, e.g. 10.20.0.0/16',
      );
    },
  );
});

describe('the RDS CA bundle', () => {
  const prod = exampleStack('prod');
  const database = prod['parley:database'] as Record<string, unknown>;
  const withBundle = (caBundleFile: string | undefined) => ({
    ...prod,
    'parley:database': { ...database, caBundleFile },
  });

  it('is required with the managed data plane, saying where AWS publishes it', async () => {
    expect(await configProblem(withBundle(undefined), 'prod')).toBe(
      'invalid stack configuration:\n  - parley:database.caBundleFile: dataPlane aws-managed connects to RDS over verified TLS and needs the RDS CA bundle (https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem)',
    );
  });

  it('is read relative to the Pulumi project, and must exist', async () => {
    expect(await configProblem(withBundle('rds-global-bundle.pem'), 'prod')).toMatch(
      /parley:database\.caBundleFile: cannot read \/.*\/pulumi\/rds-global-bundle\.pem \(ENOENT\); download it from https:\/\/truststore\.pki\.rds\.amazonaws\.com\/global\/global-bundle\.pem$/,
    );
  });

  it.each([
    ['Pulumi.yaml', /Pulumi\.yaml holds no PEM certificate$/],
    ['test/fixtures/not-a-ca.pem', /certificate 1 in \/.*not-a-ca\.pem is not a CA certificate$/],
  ])('rejects %s, which is not a bundle of CA certificates', async (file, reason) => {
    expect(await configProblem(withBundle(file), 'prod')).toMatch(reason);
  });
});

describe('the stack name', () => {
  const prod = exampleStack('prod');

  it.each(['Prod', 'prod_eu', 'prod.eu', 'prod--eu', '-prod', 'prod-', 'pröd'])(
    'rejects %j: AWS names take lower-case letters, digits and single hyphens only',
    async (stack) => {
      expect(await configProblem(dev, stack)).toBe(
        `invalid stack configuration:\n  - stack "${stack}": must be lower-case letters, digits and single hyphens (it becomes part of AWS resource names), e.g. prod-eu`,
      );
    },
  );

  it('must fit the generated bucket names when the buckets are not named in config', async () => {
    // parley-<stack>-attachments- is at most 37 characters: S3 appends 26 to a prefix.
    expect(await configProblem(dev, 'a'.repeat(17))).toBeUndefined();
    expect(await configProblem(dev, 'a'.repeat(18))).toBe(
      `invalid stack configuration:\n  - stack "${'a'.repeat(18)}": must be at most 17 characters long, since it becomes part of the attachments bucket name prefix (parley-${'a'.repeat(18)}-attachments-, at most 37)`,
    );
    const named = { ...dev, 'parley:buckets': { attachments: 'chat-files', backups: 'chat-backups' } };
    expect(await configProblem(named, 'a'.repeat(40))).toBeUndefined();
  });

  it('must fit the ElastiCache replication group id with the managed data plane', async () => {
    // parley-<stack>-redis is at most 40 characters; prod names its buckets.
    expect(await configProblem(prod, 'p'.repeat(27))).toBeUndefined();
    expect(await configProblem(prod, 'p'.repeat(28))).toContain(
      `stack "${'p'.repeat(28)}": must be at most 27 characters long, since it becomes part of the ElastiCache replication group id`,
    );
  });

  it('is listed with the other problems', async () => {
    const message = await configProblem({ ...dev, 'parley:backupRetentionDays': 0 }, 'Dev');
    expect(message?.split('\n').slice(1)).toEqual([
      '  - parley:backupRetentionDays: must be at least 1 day',
      expect.stringMatching(/^ {2}- stack "Dev": must be lower-case/),
    ]);
  });
});

describe('an empty stack', () => {
  it('is told every required key', async () => {
    expect(await configProblem({})).toBe(
      [
        'invalid stack configuration:',
        '  - parley:environment: is required',
        '  - aws:region: is required',
        '  - parley:hostname: is required',
        '  - parley:oidcProviderArn: is required',
        '  - parley:corsOrigins: is required',
        '  - parley:ingress: set exactly one of ingress or gateway',
      ].join('\n'),
    );
  });
});

describe('the image', () => {
  it('must be pinned: no latest tag, digests in sha256 form', async () => {
    const message = await configProblem({
      ...dev,
      'parley:image': { repository: 'ghcr.io/parley-chat/parley', tag: 'latest', digest: 'md5:abc' },
    });
    expect(message).toContain('parley:image.tag: must be an exact tag, not latest');
    expect(message).toContain('parley:image.digest: must be sha256:<64 hex>');
  });
});
