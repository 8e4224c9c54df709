/**
 * Renders the Parley chart with the real `helm template` (v4, from ./scripts/kube-tools.ts) and
 * parses the output. Used by this workspace's tests and by the Pulumi tests, which feed the same
 * render to their mocks.
 */
import { execFile } from 'node:child_process';
import { isAbsolute, join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { ensureKubeTools, repoRoot } from '../scripts/kube-tools.js';

const run = promisify(execFile);

export const chartDir = join(repoRoot, 'charts', 'parley');

/** A rendered Kubernetes object: only the fields every object has are typed. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [field: string]: unknown;
}

export interface RenderOptions {
  releaseName?: string;
  namespace?: string;
  /** Extra `helm template` arguments, e.g. `['--show-only', 'templates/api-hpa.yaml']`. */
  extraArgs?: string[];
}

export class HelmError extends Error {
  constructor(
    readonly args: string[],
    readonly stderr: string,
  ) {
    super(`helm ${args.join(' ')} failed:\n${stderr}`);
    this.name = 'HelmError';
  }
}

/** Keeps helm away from the user's ~/.config and ~/.cache so runs are hermetic. */
function helmEnv(): NodeJS.ProcessEnv {
  const home = join(repoRoot, '.tools', 'helm-home');
  return {
    ...process.env,
    HELM_CACHE_HOME: join(home, 'cache'),
    HELM_CONFIG_HOME: join(home, 'config'),
    HELM_DATA_HOME: join(home, 'data'),
  };
}

/** Runs helm with the given arguments; rejects with a HelmError carrying helm's stderr. */
export async function helm(args: string[]): Promise<{ stdout: string; stderr: string }> {
  const { helm: helmBin } = await ensureKubeTools();
  try {
    return await run(helmBin, args, { env: helmEnv(), maxBuffer: 64 * 1024 * 1024 });
  } catch (error) {
    const failure = error as { stderr?: string; message: string };
    throw new HelmError(args, failure.stderr || failure.message);
  }
}

function templateArgs(
  valuesFiles: string[],
  setValues: Record<string, string>,
  options: RenderOptions,
): string[] {
  const args = [
    'template',
    options.releaseName ?? 'parley',
    chartDir,
    '--namespace',
    options.namespace ?? 'parley',
  ];
  // Relative values files are taken from the chart directory, e.g. `ci/gateway-values.yaml`.
  for (const file of valuesFiles) args.push('--values', isAbsolute(file) ? file : join(chartDir, file));
  for (const [key, value] of Object.entries(setValues)) args.push('--set', `${key}=${value}`);
  return [...args, ...(options.extraArgs ?? [])];
}

/** `helm template` output as text. */
export async function renderChartText(
  valuesFiles: string[],
  setValues: Record<string, string> = {},
  options: RenderOptions = {},
): Promise<string> {
  const { stdout } = await helm(templateArgs(valuesFiles, setValues, options));
  return stdout;
}

/** Splits a multi-document YAML stream into objects, dropping empty documents. */
export function parseManifests(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`invalid YAML in render: ${doc.errors[0]!.message}`);
      return doc.toJS({ maxAliasCount: -1 }) as K8sObject | null;
    })
    .filter((obj): obj is K8sObject => obj !== null && typeof obj === 'object');
}

/** Runs real `helm template` on charts/parley and returns the parsed objects. */
export async function renderChart(
  valuesFiles: string[],
  setValues: Record<string, string> = {},
  options: RenderOptions = {},
): Promise<K8sObject[]> {
  return parseManifests(await renderChartText(valuesFiles, setValues, options));
}
