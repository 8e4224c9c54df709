/**
 * The benchmarks measure what ships: the image's Node release (the Dockerfile's NODE_IMAGE) running
 * the compiled service. When the Node running the bench is another release, the official binary of
 * the image's release is fetched once from the npm registry (`node-<platform>-<arch>`, the package
 * `npm install node@<version>` installs) into node_modules/.cache. `BENCH_NODE=local` skips that and
 * measures this machine’s Node instead, e.g. offline. Run as a command, it prints the binary’s path
 * (CI runs the service’s tests with it).
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse } from 'yaml';

const run = promisify(execFile);
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

/** The exact Node release the image is built on, e.g. "24.22.3". */
export function imageNodeVersion(dockerfile = readFileSync(join(repoRoot, 'Dockerfile'), 'utf8')): string {
  const version = /^ARG NODE_IMAGE=node:(\d+\.\d+\.\d+)-/m.exec(dockerfile)?.[1];
  if (!version)
    throw new Error('the Dockerfile has no `ARG NODE_IMAGE=node:<x.y.z>-…` to take the release from');
  return version;
}

/**
 * The API container's NODE_OPTIONS in the chart (`api.nodeOptions`). The pod's memory limit decides
 * V8's heap sizes where the chart does not; the bench applies what the chart sets.
 */
export function apiNodeOptions(
  values = readFileSync(join(repoRoot, 'charts', 'parley', 'values.yaml'), 'utf8'),
): string {
  const options = (parse(values) as { api?: { nodeOptions?: unknown } }).api?.nodeOptions ?? '';
  if (typeof options !== 'string') throw new Error('the chart’s api.nodeOptions is not a string');
  return options;
}

export interface Runtime {
  /** The node binary to run everything with. */
  node: string;
  version: string;
  /** How it was chosen, for the results' header. */
  origin: string;
}

const FETCHED = 'the image’s release, from the npm registry';

export async function imageRuntime(env = process.env): Promise<Runtime> {
  const local = process.version.slice(1);
  if (env.BENCH_NODE === 'local')
    return { node: process.execPath, version: local, origin: 'BENCH_NODE=local' };
  const version = imageNodeVersion();
  const dir = join(repoRoot, 'node_modules', '.cache', 'parley-bench-node', version);
  const node = join(dir, 'package', 'bin', 'node');
  if (version === local) {
    const origin = process.execPath === node ? FETCHED : 'the image’s release';
    return { node: process.execPath, version, origin };
  }

  if (!existsSync(node)) {
    const pkg = `node-${process.platform}-${process.arch}@${version}`;
    process.stderr.write(`[bench] fetching ${pkg} (the image's Node) from the npm registry…\n`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const { stdout } = await run('npm', ['pack', pkg, '--pack-destination', dir, '--silent']);
    await run('tar', ['-xzf', join(dir, stdout.trim()), '-C', dir]);
    rmSync(join(dir, stdout.trim()));
  }
  const { stdout } = await run(node, ['--version']);
  if (stdout.trim() !== `v${version}`) throw new Error(`${node} is ${stdout.trim()}, not v${version}`);
  return { node, version, origin: FETCHED };
}

/**
 * Runs the calling script again under the image's Node when this process is another release, and
 * exits with its status; returns the runtime when this process is already on it.
 */
export async function onImageRuntime(): Promise<Runtime> {
  const runtime = await imageRuntime();
  if (runtime.node === process.execPath) return runtime;
  const { status } = spawnSync(runtime.node, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
  });
  process.exit(status ?? 1);
}

// As a command (CI): prints the path of the image's node binary, fetching it first when needed.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.stdout.write(`${(await imageRuntime({ ...process.env, BENCH_NODE: undefined })).node}\n`);
}
