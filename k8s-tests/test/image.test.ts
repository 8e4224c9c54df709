/**
 * The Dockerfile, checked statically (there is no container engine here), and built for real
 * when one answers.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
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
