/**
 * The Dockerfile, checked statically (there is no container engine here), and built for real
 * when one answers.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { cp, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDockerfile, resolveArgs, type Stage } from '../lib/dockerfile.js';
import { workloads } from '../lib/objects.js';
import { renderChart } from '../lib/render.js';
import { repoRoot } from '../scripts/kube-tools.js';

const run = promisify(execFile);
const dockerfile = parseDockerfile(readFileSync(join(repoRoot, 'Dockerfile'), 'utf8'));
const stage = (name: string): Stage => {
  const found = dockerfile.stages.find((s) => s.name === name);
  if (!found) throw new Error(`no stage ${name}`);
  return found;
};
const runtime = dockerfile.stages.at(-1)!;
const of = (s: Stage, keyword: string): string[] =>
  s.instructions.filter((i) => i.keyword === keyword).map((i) => i.args);

async function containerEngine(): Promise<string | undefined> {
  try {
    const { stdout } = await run('docker', ['version', '--format', '{{.Server.Version}}'], {
      timeout: 5_000,
    });
    return stdout.trim() || undefined;
  } catch {
    return undefined;
  }
}
const engine = await containerEngine();

describe('the container image (Dockerfile, static)', () => {
  it('is multi-stage and ends with the runtime stage', () => {
    expect(dockerfile.stages.map((s) => s.name)).toEqual(['build', 'dev', 'prod-deps', 'runtime']);
  });

  it('runs a current Node LTS pinned to an exact release', () => {
    const image = resolveArgs(runtime.from, dockerfile.args);
    const [, major] = /^node:(\d+)\.\d+\.\d+-[a-z]+-slim(@sha256:[a-f0-9]{64})?$/.exec(image) ?? [];
    expect(image).toMatch(/^node:/);
    expect(Number(major) % 2, `${image} is an LTS line`).toBe(0);
    expect(Number(major)).toBeGreaterThanOrEqual(22);
  });

  it('runs as a numeric non-root user and stays read-only friendly', () => {
    const [user] = of(runtime, 'USER');
    expect(user).toMatch(/^\d+:\d+$/);
    expect(Number(user!.split(':')[0])).toBeGreaterThan(0);
    // The chart's pods run with the same UID and a read-only root filesystem.
    expect(user).toBe('10001:10001');
    expect(of(runtime, 'VOLUME')).toEqual([]);
  });

  it('carries OCI labels', () => {
    const labels = of(runtime, 'LABEL').join(' ');
    for (const key of ['title', 'description', 'version', 'revision', 'source']) {
      expect(labels).toContain(`org.opencontainers.image.${key}=`);
    }
  });

  it('ships production dependencies of the service only: no dev deps, Pulumi or test tools', () => {
    const install = of(stage('prod-deps'), 'RUN').join(' ');
    expect(install).toMatch(/npm ci --omit=dev --workspace @parley\/service/);
    expect(install).not.toMatch(/--include-workspace-root/);
    const copies = of(runtime, 'COPY');
    for (const copy of copies) {
      expect(copy).not.toMatch(/pulumi|k8s-tests|loadtests/);
      const from = /--from=(\S+)/.exec(copy)?.[1];
      if (from === 'build') expect(copy).toMatch(/\/src\/service\/dist /);
      if (from) expect(['build', 'prod-deps']).toContain(from);
    }
    expect(copies.some((c) => c.includes('service/drizzle'))).toBe(true);
  });

  it('the api, worker and migrate commands the chart runs exist in the build output', async () => {
    const build = JSON.parse(readFileSync(join(repoRoot, 'service', 'tsconfig.build.json'), 'utf8')) as {
      compilerOptions: { rootDir: string; outDir: string };
    };
    expect(build.compilerOptions).toMatchObject({ rootDir: 'src', outDir: 'dist' });
    expect(of(runtime, 'WORKDIR').at(-1)).toBe('/app/service');
    const objects = await renderChart(['ci/default-values.yaml']);
    const commands = new Set(
      workloads(objects)
        .flatMap((w) =>
          w.spec.containers
            .map((c) => c.command ?? [])
            .filter((command) => command[0] === 'node' && command[1]?.startsWith('dist/')),
        )
        .map((command) => command[1]!),
    );
    expect([...commands].sort()).toEqual(['dist/db/migrate.js', 'dist/main-api.js', 'dist/main-worker.js']);
    for (const output of commands) {
      const source = join(repoRoot, 'service', output.replace(/^dist\//, 'src/').replace(/\.js$/, '.ts'));
      expect(existsSync(source), source).toBe(true);
    }
    expect(of(runtime, 'CMD')).toEqual(['["node", "dist/main-api.js"]']);
  });

  it('copies only paths that exist in the build context (a missing one fails the real build)', () => {
    const sources = dockerfile.stages.flatMap((s) =>
      of(s, 'COPY')
        .filter((args) => !args.startsWith('--from='))
        .flatMap((args) =>
          args
            .split(' ')
            .filter((word) => !word.startsWith('--'))
            .slice(0, -1),
        ),
    );
    expect(sources.length).toBeGreaterThan(5);
    expect(sources.filter((source) => !existsSync(join(repoRoot, source)))).toEqual([]);
  });

  it('keeps node_modules, git and secrets out of the build context', () => {
    const ignore = readFileSync(join(repoRoot, '.dockerignore'), 'utf8').split('\n');
    for (const entry of ['**/node_modules', '.git', '.env', '.tools']) expect(ignore).toContain(entry);
  });

  it.skipIf(!engine)(
    `builds, runs as 10001 and stays under 150 MB compressed${engine ? '' : ' (skipped: no container engine answers)'}`,
    async () => {
      await run('docker', ['build', '--target', 'runtime', '-t', 'parley:k8s-tests', repoRoot], {
        timeout: 15 * 60_000,
        maxBuffer: 64 * 1024 * 1024,
      });
      const { stdout } = await run('docker', [
        'image',
        'inspect',
        'parley:k8s-tests',
        '--format',
        '{{.Size}} {{.Config.User}}',
      ]);
      const [size, user] = stdout.trim().split(' ');
      // Registries report, and nodes pull, the compressed layers.
      const { stdout: compressed } = await run(
        'sh',
        ['-c', 'docker save parley:k8s-tests | gzip -1 | wc -c'],
        {
          timeout: 5 * 60_000,
        },
      );
      console.log(
        `image size: ${(Number(size) / 1e6).toFixed(1)} MB on disk, ${(Number(compressed) / 1e6).toFixed(1)} MB compressed`,
      );
      expect(user).toBe('10001:10001');
      expect(Number(compressed)).toBeLessThan(150e6);
    },
    20 * 60_000,
  );
});

/** Every package installed under `dir`/node_modules, nested trees included: name → directories. */
function installedPackages(dir: string, found = new Map<string, string[]>()): Map<string, string[]> {
  const modules = join(dir, 'node_modules');
  if (!existsSync(modules)) return found;
  for (const entry of readdirSync(modules)) {
    if (entry.startsWith('.')) continue;
    const names = entry.startsWith('@')
      ? readdirSync(join(modules, entry)).map((child) => `${entry}/${child}`)
      : [entry];
    for (const name of names) {
      const packageDir = join(modules, name);
      found.set(name, [...(found.get(name) ?? []), packageDir]);
      installedPackages(packageDir, found);
    }
  }
  return found;
}

/** Node's lookup: the nearest node_modules/<name> from `from` up to `root`. */
function resolvePackage(from: string, name: string, root: string): string | undefined {
  for (let dir = from; dir.startsWith(root); dir = dirname(dir)) {
    if (basename(dir) === 'node_modules') continue;
    const candidate = join(dir, 'node_modules', name, 'package.json');
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

interface Manifest {
  name?: string;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

describe('the production dependencies (the prod-deps stage, run offline)', () => {
  const prodDeps = stage('prod-deps');
  const workdir = of(prodDeps, 'WORKDIR').at(-1)!;
  let context: string;

  // Runs the stage's own COPY and RUN instructions in a temp dir, with the local npm cache standing
  // in for the build's cache mount: what the runtime stage copies is then on disk to inspect.
  beforeAll(async () => {
    context = await mkdtemp(join(tmpdir(), 'parley-prod-deps-'));
    for (const copy of of(prodDeps, 'COPY')) {
      const words = copy.split(' ').filter((word) => !word.startsWith('--'));
      const destination = join(context, words.at(-1)!.replace(new RegExp(`^${workdir}/?`), ''));
      for (const source of words.slice(0, -1)) {
        const target = words.at(-1)!.endsWith('/') ? join(destination, basename(source)) : destination;
        await mkdir(dirname(target), { recursive: true });
        await cp(join(repoRoot, source), target, { recursive: true });
      }
    }
    for (const command of of(prodDeps, 'RUN')) {
      await run('sh', ['-c', command.replace(/^(--\S+\s+)+/, '')], {
        cwd: context,
        env: { ...process.env, npm_config_prefer_offline: 'true', npm_config_update_notifier: 'false' },
        timeout: 110_000,
        maxBuffer: 16 * 1024 * 1024,
      });
    }
  }, 120_000);
  afterAll(async () => {
    if (context) await rm(context, { recursive: true, force: true });
  });

  // What the runtime stage takes from this one: /src/node_modules and /src/service.
  const shipped = (): Map<string, string[]> =>
    installedPackages(join(context, 'service'), installedPackages(context));

  it('holds no build, test or Pulumi tooling', () => {
    const names = [...shipped().keys()];
    expect(names.length).toBeGreaterThan(20);
    const tooling =
      /^(tsx|esbuild|typescript|vitest|@vitest\/.+|@esbuild\/.+|@pulumi\/.+|@grpc\/.+|drizzle-kit|testcontainers|prettier|eslint)$/;
    expect(names.filter((name) => tooling.test(name))).toEqual([]);
    // No workspace links either: the runtime stage copies the service itself.
    expect(names.filter((name) => name.startsWith('@parley/'))).toEqual([]);
  });

  it("holds every runtime dependency of the service, and each one's own dependencies", () => {
    const manifest = JSON.parse(readFileSync(join(repoRoot, 'service', 'package.json'), 'utf8')) as Manifest;
    const runtime = Object.keys(manifest.dependencies ?? {});
    expect(runtime.length).toBeGreaterThan(5);
    const serviceDir = join(context, 'service');
    expect(runtime.filter((name) => !resolvePackage(serviceDir, name, context))).toEqual([]);
    // Pruning removed nothing a shipped package needs (optional peers may be absent).
    const unresolved: string[] = [];
    for (const [name, dirs] of shipped()) {
      for (const dir of dirs) {
        const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest;
        const needed = [
          ...Object.keys(pkg.dependencies ?? {}),
          ...Object.keys(pkg.peerDependencies ?? {}).filter(
            (peer) => !pkg.peerDependenciesMeta?.[peer]?.optional,
          ),
        ];
        for (const dependency of needed) {
          if (!resolvePackage(dir, dependency, context)) unresolved.push(`${name} -> ${dependency}`);
        }
      }
    }
    expect(unresolved).toEqual([]);
  });

  it('every runtime dependency of the service loads from the pruned tree', async () => {
    const manifest = JSON.parse(readFileSync(join(repoRoot, 'service', 'package.json'), 'utf8')) as Manifest;
    const runtime = Object.keys(manifest.dependencies ?? {});
    const { stdout } = await run(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const names = ${JSON.stringify(runtime)};
         const failed = [];
         for (const name of names) await import(name).catch((e) => failed.push(name + ': ' + e.message));
         console.log(JSON.stringify(failed));`,
      ],
      { cwd: join(context, 'service'), timeout: 30_000 },
    );
    expect(JSON.parse(stdout.trim().split('\n').at(-1)!)).toEqual([]);
  });
});
