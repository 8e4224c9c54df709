/**
 * Runs the Pulumi program against `pulumi.runtime.setMocks`: no engine, no cloud, no CLI. Every
 * resource registration is recorded with the inputs exactly as the engine would receive them,
 * secrets still wrapped, so tests can assert both values and secretness.
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import * as pulumi from '@pulumi/pulumi';
import { parse as parseYaml } from 'yaml';

export const ACCOUNT = '123456789012';
export const REGION = 'eu-west-1';
export const OIDC_ISSUER = 'oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE';
export const OIDC_PROVIDER_ARN = `arn:aws:iam::${ACCOUNT}:oidc-provider/${OIDC_ISSUER}`;

// The wire format's secret wrapper (pulumi/runtime/rpc: specialSigKey / specialSecretSig).
const SIG_KEY = '4dabf18193072939515e22adb298388d';
const SECRET_SIG = '1b47061264138c4ac30d75fd1eb44270';

/** Recorded inputs are whatever the program sent: tests navigate them freely and assert on them. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Loose = any;

export interface Recorded {
  type: string;
  name: string;
  /** Inputs as sent to the engine: secrets are `{ [SIG_KEY]: SECRET_SIG, value }`. */
  raw: Record<string, unknown>;
  /** The same inputs with secret wrappers removed. */
  inputs: Record<string, Loose>;
  /** As the mock monitor named it, once registered. */
  urn?: string;
  /** URN of the parent resource (a component), or '' at the top level. */
  parentUrn: string;
  /** URNs this registration waits for: `dependsOn` and the resources its inputs came from. */
  dependencies: string[];
}

/** The parent as a resource (`only(...)` style lookup); undefined at the top level. */
export function parentOf(resources: Recorded[], resource: Recorded): Recorded | undefined {
  return resources.find((candidate) => candidate.urn !== undefined && candidate.urn === resource.parentUrn);
}

/** True when `resource` waits for `dependency` (directly, or for a component: for all its children). */
export function dependsOn(resource: Recorded, dependency: Recorded): boolean {
  return dependency.urn !== undefined && resource.dependencies.includes(dependency.urn);
}

export function isWireSecret(value: unknown): boolean {
  return (
    typeof value === 'object' && value !== null && (value as Record<string, unknown>)[SIG_KEY] === SECRET_SIG
  );
}

export function unwrapSecrets(value: unknown): unknown {
  if (isWireSecret(value)) return unwrapSecrets((value as { value: unknown }).value);
  if (Array.isArray(value)) return value.map(unwrapSecrets);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, unwrapSecrets(item)]));
  }
  return value;
}

/** True when a secret wrapper occurs anywhere inside the value. */
export function containsWireSecret(value: unknown): boolean {
  if (isWireSecret(value)) return true;
  if (Array.isArray(value)) return value.some(containsWireSecret);
  if (typeof value === 'object' && value !== null) return Object.values(value).some(containsWireSecret);
  return false;
}

function fakePassword(name: string, length: number): string {
  let text = '';
  for (let round = 0; text.length < length; round += 1) {
    text += createHash('sha256')
      .update(`${name}:${round}`)
      .digest('base64')
      .replace(/[^A-Za-z0-9]/g, '');
  }
  return text.slice(0, length);
}

/** Plausible provider outputs for the resource types the program creates. */
function providerState(
  type: string,
  name: string,
  inputs: Record<string, Loose>,
): { id: string; state: object } {
  switch (type) {
    case 'aws:s3/bucket:Bucket': {
      const bucket: string = inputs.bucket ?? `${inputs.bucketPrefix}20250101000000000000000001`;
      return { id: bucket, state: { bucket, arn: `arn:aws:s3:::${bucket}` } };
    }
    case 'aws:kms/key:Key':
      return {
        id: `key-${name}`,
        state: { keyId: `key-${name}`, arn: `arn:aws:kms:${REGION}:${ACCOUNT}:key/key-${name}` },
      };
    case 'aws:iam/role:Role':
      return { id: name, state: { name, arn: `arn:aws:iam::${ACCOUNT}:role/${name}` } };
    case 'aws:rds/instance:Instance':
      return {
        id: inputs.identifier,
        state: {
          address: `${inputs.identifier}.c0ffee.${REGION}.rds.amazonaws.com`,
          identifier: inputs.identifier,
        },
      };
    case 'aws:elasticache/replicationGroup:ReplicationGroup':
      return {
        id: inputs.replicationGroupId,
        state: {
          primaryEndpointAddress: `master.${inputs.replicationGroupId}.c0ffee.euw1.cache.amazonaws.com`,
        },
      };
    case 'aws:secretsmanager/secret:Secret': {
      const secretName: string = inputs.name ?? `${inputs.namePrefix}20250101000000000000000001`;
      return {
        id: name,
        state: {
          name: secretName,
          arn: `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${secretName}-AbCdEf`,
        },
      };
    }
    case 'random:index/randomPassword:RandomPassword':
      return { id: name, state: { result: fakePassword(name, inputs.length) } };
    case 'tls:index/privateKey:PrivateKey': {
      const { privateKey } = generateKeyPairSync('ed25519');
      return { id: name, state: { privateKeyPemPkcs8: privateKey.export({ type: 'pkcs8', format: 'pem' }) } };
    }
    case 'kubernetes:helm.sh/v3:Release':
      return { id: `${inputs.namespace}/${inputs.name}`, state: { status: { status: 'deployed' } } };
    default:
      return { id: `${name}-id`, state: {} };
  }
}

let recorded: Recorded[] = [];

/** What the monitor's request said beyond the mock's arguments: parent and dependencies. */
interface Registration {
  parentUrn: string;
  dependencies: string[];
  record?: Recorded;
}
let registering: Registration | undefined;

interface RegisterRequest {
  getParent(): string;
  getDependenciesList(): string[];
}
type Callback = (error: unknown, response?: { getUrn(): string }) => void;
interface MonitorWithRegister {
  registerResource(request: RegisterRequest, callback: Callback): Promise<void>;
}

/**
 * The mocks' `newResource` is not told the parent or the dependencies; the monitor's request is.
 * Wrap the mock monitor's registerResource to pass them on (it calls newResource synchronously) and
 * to note the URN it assigns.
 */
function recordRegistrations(): void {
  const monitor = pulumi.runtime.getMonitor() as unknown as MonitorWithRegister;
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (request, callback) => {
    const registration: Registration = {
      parentUrn: request.getParent(),
      dependencies: request.getDependenciesList(),
    };
    registering = registration;
    return register(request, (error, response) => {
      if (registration.record && response) registration.record.urn = response.getUrn();
      callback(error, response);
    });
  };
}

const mocks: pulumi.runtime.Mocks = {
  newResource(args) {
    const inputs = unwrapSecrets(args.inputs) as Record<string, Loose>;
    const registration = registering;
    registering = undefined;
    const record: Recorded = {
      type: args.type,
      name: args.name,
      raw: args.inputs,
      inputs,
      parentUrn: registration?.parentUrn ?? '',
      dependencies: registration?.dependencies ?? [],
    };
    if (registration) registration.record = record;
    recorded.push(record);
    const { id, state } = providerState(args.type, args.name, inputs);
    // AWS auto-names resources whose name is not given; the logical name stands in for it.
    const autoName = args.type.startsWith('aws:') ? { name: args.name } : {};
    return { id, state: { ...autoName, ...inputs, ...state } };
  },
  call(args) {
    throw new Error(`unexpected provider call ${args.token}`);
  },
};

export type StackSettings = Record<string, unknown>;

/** Reads an example stack file (`Pulumi.<stack>.yaml`) as the CLI would hand it to the program. */
export function exampleStack(stack: 'dev' | 'prod'): StackSettings {
  const file = fileURLToPath(new URL(`../Pulumi.${stack}.yaml`, import.meta.url));
  const config = (parseYaml(readFileSync(file, 'utf8')) as { config: StackSettings }).config;
  const database = config['parley:database'] as { caBundleFile?: string } | undefined;
  // The operator downloads the RDS CA bundle; offline, a bundle of throwaway test CAs stands in.
  if (database?.caBundleFile) database.caBundleFile = TEST_CA_BUNDLE;
  return config;
}

/** Relative to the Pulumi project directory, as an operator would write it. */
export const TEST_CA_BUNDLE = 'test/fixtures/test-ca-bundle.pem';

/** Pulumi passes structured values as JSON text and scalars as plain strings. */
function toEngineConfig(settings: StackSettings): Record<string, string> {
  return Object.fromEntries(
    Object.entries(settings)
      .filter(([, value]) => value !== undefined)
      .map(([key, value]) => [key, typeof value === 'object' ? JSON.stringify(value) : String(value)]),
  );
}

export async function useStack(
  stack: string,
  settings: StackSettings,
  secretKeys: string[] = [],
): Promise<void> {
  recorded = [];
  await pulumi.runtime.setMocks(mocks, 'parley', stack, false);
  recordRegistrations();
  pulumi.runtime.setAllConfig(toEngineConfig(settings), secretKeys);
}

/** Waits until every registration the program started has reached the mock monitor. */
export async function settle(): Promise<Recorded[]> {
  const runtime = pulumi.runtime as unknown as { waitForRPCs?: () => Promise<void> };
  if (!runtime.waitForRPCs) throw new Error('@pulumi/pulumi no longer exports runtime.waitForRPCs');
  await runtime.waitForRPCs();
  return recorded;
}

export function resolve<T>(output: pulumi.Output<T>): Promise<T> {
  return new Promise((done) => output.apply((value) => done(value)));
}

export function only(resources: Recorded[], type: string, name?: string): Recorded {
  const matches = resources.filter((r) => r.type === type && (name === undefined || r.name === name));
  if (matches.length !== 1) {
    throw new Error(`expected one ${type}${name ? ` named ${name}` : ''}, found ${matches.length}`);
  }
  return matches[0]!;
}

export function ofType(resources: Recorded[], type: string): Recorded[] {
  return resources.filter((r) => r.type === type);
}

/**
 * Validates `settings` as the stack's configuration and runs the program on the mocks. The
 * program's modules are imported only after `setMocks`, as Pulumi requires.
 */
export async function runParley(stack: string, settings: StackSettings, secretKeys: string[] = []) {
  await useStack(stack, settings, secretKeys);
  const { loadStackConfig, readSecretOverrides } = await import('../src/config.js');
  const { deployParley } = await import('../src/program.js');
  const parley = deployParley(loadStackConfig(), readSecretOverrides());
  const resources = await settle();
  return { parley, resources };
}

/** Runs only the configuration step and returns its error message (or undefined if it passes). */
export async function configProblem(settings: StackSettings, stack = 'dev'): Promise<string | undefined> {
  await useStack(stack, settings);
  const { loadStackConfig } = await import('../src/config.js');
  try {
    loadStackConfig();
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}
