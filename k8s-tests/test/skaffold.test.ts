/**
 * skaffold.yaml, checked against skaffold's documented v2 structure (no skaffold binary here):
 * every reference it makes must resolve (Dockerfile targets, chart path, values files, synced
 * sources, the forwarded Service), and its profiles must render with the real helm.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseDockerfile } from '../lib/dockerfile.js';
import { container, find, spec, workload } from '../lib/objects.js';
import { renderChart } from '../lib/render.js';
import { repoRoot } from '../scripts/kube-tools.js';

interface Patch {
  op: 'add' | 'replace' | 'remove';
  path: string;
  value?: unknown;
}
interface Release {
  name: string;
  chartPath: string;
  namespace: string;
  valuesFiles?: string[];
  setValues?: Record<string, string>;
  setValueTemplates?: Record<string, string>;
}
interface Artifact {
  image: string;
  context?: string;
  docker: { dockerfile: string; target?: string };
  sync?: { manual: { src: string; dest: string; strip?: string }[] };
}
interface SkaffoldConfig {
  apiVersion: string;
  kind: string;
  metadata?: { name: string };
  build: { artifacts: Artifact[] };
  deploy: { helm: { releases: Release[] } };
  portForward?: {
    resourceType: string;
    resourceName: string;
    namespace?: string;
    port: number;
    localPort?: number;
  }[];
  profiles?: { name: string; activation?: { command?: string }[]; patches?: Patch[] }[];
}

const config = parse(readFileSync(join(repoRoot, 'skaffold.yaml'), 'utf8')) as SkaffoldConfig;
const dockerfile = parseDockerfile(readFileSync(join(repoRoot, 'Dockerfile'), 'utf8'));

/** RFC 6902 add/replace/remove on plain objects, as skaffold applies profile patches. */
function applyPatches(base: SkaffoldConfig, patches: Patch[]): SkaffoldConfig {
  const result = structuredClone(base);
  for (const patch of patches) {
    const keys = patch.path
      .split('/')
      .slice(1)
      .map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'));
    const last = keys.pop()!;
    let parent = result as unknown as Record<string, unknown>;
    for (const key of keys) {
      const next = parent[key];
      if (next === undefined) throw new Error(`${patch.path}: ${key} does not exist`);
      parent = next as Record<string, unknown>;
    }
    if (patch.op === 'replace' && !(last in parent)) throw new Error(`${patch.path}: nothing to replace`);
    if (patch.op === 'remove') delete parent[last];
    else parent[last] = structuredClone(patch.value);
  }
  return result;
}

function profile(name: string): SkaffoldConfig {
  const found = config.profiles?.find((p) => p.name === name);
  if (!found) throw new Error(`no profile ${name}`);
  return applyPatches(config, found.patches ?? []);
}

async function renderRelease(release: Release) {
  return renderChart(
    (release.valuesFiles ?? []).map((file) => join(repoRoot, file)),
    release.setValues ?? {},
    { releaseName: release.name, namespace: release.namespace },
  );
}

function workdirOf(stageName: string): string {
  const stage = dockerfile.stages.find((s) => s.name === stageName);
  if (!stage) throw new Error(`Dockerfile has no stage ${stageName}`);
  return stage.instructions.filter((i) => i.keyword === 'WORKDIR').at(-1)!.args;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name));
}

describe('skaffold.yaml', () => {
  it('is a skaffold v2 config with only documented top-level sections', () => {
    expect(config.apiVersion).toMatch(/^skaffold\/v4beta\d+$/);
    expect(config.kind).toBe('Config');
    const known = [
      'apiVersion',
      'kind',
      'metadata',
      'requires',
      'build',
      'test',
      'manifests',
      'deploy',
      'verify',
      'portForward',
      'profiles',
    ];
    for (const key of Object.keys(config)) expect(known).toContain(key);
  });

  it('builds the image from the Dockerfile runtime stage', () => {
    const [artifact] = config.build.artifacts;
    expect(artifact!.image).toBe('parley');
    expect(existsSync(join(repoRoot, artifact!.context ?? '.', artifact!.docker.dockerfile))).toBe(true);
    expect(artifact!.docker.target).toBe('runtime');
    expect(dockerfile.stages.map((s) => s.name)).toContain(artifact!.docker.target);
  });

  it('deploys charts/parley with helm, injecting the built image', () => {
    const [release] = config.deploy.helm.releases;
    expect(existsSync(join(repoRoot, release!.chartPath, 'Chart.yaml'))).toBe(true);
    const image = config.build.artifacts[0]!.image;
    expect(release!.setValueTemplates).toEqual({
      'image.repository': `{{.IMAGE_REPO_${image}}}`,
      'image.tag': `{{.IMAGE_TAG_${image}}}`,
    });
  });

  it('port-forwards the API Service that the chart renders', async () => {
    const [release] = config.deploy.helm.releases;
    const [forward] = config.portForward!;
    expect(forward!.resourceType).toBe('service');
    const objects = await renderRelease(release!);
    const service = find(objects, 'Service', forward!.resourceName);
    expect(spec<{ ports: { port: number }[] }>(service).ports.map((p) => p.port)).toContain(forward!.port);
    expect(forward!.namespace).toBe(release!.namespace);
  });

  it('dev profile: dev target, source sync into the running API and worker, minimal footprint', async () => {
    expect(config.profiles!.find((p) => p.name === 'dev')!.activation).toEqual([{ command: 'dev' }]);
    const dev = profile('dev');
    const artifact = dev.build.artifacts[0]!;
    expect(artifact.docker.target).toBe('dev');
    const [rule] = artifact.sync!.manual;
    expect(rule!.dest).toBe(`${workdirOf('dev')}/src`);
    const sources = filesUnder(join(repoRoot, rule!.strip!)).filter((f) => f.endsWith('.ts'));
    expect(sources.length).toBeGreaterThan(0);

    const release = dev.deploy.helm.releases[0]!;
    for (const file of release.valuesFiles!) expect(existsSync(join(repoRoot, file)), file).toBe(true);
    const objects = await renderRelease(release);
    for (const [name, entry] of [
      ['parley-api', 'main-api'],
      ['parley-worker', 'main-worker'],
    ] as const) {
      const w = workload(objects, 'Deployment', name);
      expect(spec<{ replicas: number }>(w.object).replicas).toBe(1);
      const c = w.spec.containers[0]!;
      expect(c.command).toEqual(['npx', 'tsx', 'watch', `src/${entry}.ts`]);
      expect(existsSync(join(repoRoot, 'service', 'src', `${entry}.ts`))).toBe(true);
      // Sync writes into the container: only possible with a writable root filesystem.
      expect(c.securityContext!['readOnlyRootFilesystem']).toBe(false);
    }
    expect(container(workload(objects, 'StatefulSet', 'parley-redis').spec, 'redis')).toBeDefined();
    expect(find(objects, 'Deployment', 'parley-minio')).toBeDefined();
  });

  it('prod profile: production-like replicas, autoscaling and disruption budgets', async () => {
    const release = profile('prod').deploy.helm.releases[0]!;
    const objects = await renderRelease(release);
    expect(
      spec<{ minReplicas: number }>(find(objects, 'HorizontalPodAutoscaler', 'parley-api')).minReplicas,
    ).toBe(3);
    expect(find(objects, 'PodDisruptionBudget', 'parley-api')).toBeDefined();
    expect(spec<{ replicas: number }>(find(objects, 'StatefulSet', 'parley-mysql-replica')).replicas).toBe(2);
  });
});
