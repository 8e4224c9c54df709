// Prunes an `npm ci --omit=dev --workspace <ws>` install down to that workspace's production
// dependency tree. npm installs more than the workspace needs from a shared lockfile: the other
// workspaces' runtime dependencies (Pulumi's tsx, esbuild, @pulumi/*, @grpc/grpc-js, ...) come
// along as "extraneous" packages, and `npm prune` keeps or reinstalls them. This walks the lockfile
// from the workspace along dependencies, optionalDependencies and peerDependencies, resolving each
// name as Node does (the nearest node_modules up the tree), and deletes every installed package it
// does not reach. Offline, deterministic, and independent of npm's version (lockfile v2/v3).
//
// Usage, in the directory that holds package-lock.json and node_modules:
//   node prune-prod-deps.mjs <workspace directory, e.g. service>
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import process from 'node:process';

const workspace = process.argv[2];
const packages = JSON.parse(readFileSync('package-lock.json', 'utf8')).packages ?? {};
if (!workspace || !packages[workspace]) {
  process.stderr.write(`prune-prod-deps: no workspace "${workspace}" in package-lock.json\n`);
  process.exit(2);
}

/** The lockfile location `name` resolves to from the package at `from`, following links. */
function resolve(from, name) {
  const parts = from.split('/');
  for (let i = parts.length; i >= 0; i--) {
    if (i > 0 && parts[i - 1] === 'node_modules') continue;
    const base = parts.slice(0, i).join('/');
    const location = `${base ? `${base}/` : ''}node_modules/${name}`;
    const entry = packages[location];
    if (entry && existsSync(location)) return entry.link ? entry.resolved : location;
  }
  return undefined;
}

const keep = new Set([workspace]);
const queue = [workspace];
const missing = [];
while (queue.length > 0) {
  const location = queue.shift();
  const entry = packages[location];
  const optional = new Set([
    ...Object.keys(entry.optionalDependencies ?? {}),
    ...Object.entries(entry.peerDependenciesMeta ?? {})
      .filter(([, meta]) => meta.optional)
      .map(([name]) => name),
  ]);
  // An optional peer is the host's choice, not a dependency: valibot (under Bull Board) names
  // typescript as one, and following it would ship the compiler.
  const optionalPeers = new Set(
    Object.entries(entry.peerDependenciesMeta ?? {})
      .filter(([, meta]) => meta.optional)
      .map(([name]) => name),
  );
  const names = new Set([
    ...Object.keys(entry.dependencies ?? {}),
    ...Object.keys(entry.optionalDependencies ?? {}),
    ...Object.keys(entry.peerDependencies ?? {}).filter((name) => !optionalPeers.has(name)),
  ]);
  for (const name of names) {
    const found = resolve(location, name);
    if (!found) {
      if (!optional.has(name)) missing.push(`${name} (needed by ${location})`);
      continue;
    }
    if (!keep.has(found)) {
      keep.add(found);
      queue.push(found);
    }
  }
}
if (missing.length > 0) {
  process.stderr.write(`prune-prod-deps: not installed: ${missing.join(', ')}\n`);
  process.exit(1);
}

let removed = 0;
for (const location of Object.keys(packages)) {
  if (!location.includes('node_modules/') || keep.has(location)) continue;
  // Only the root's and the workspace's trees ship; a kept package's own nested tree is judged by
  // its own entries.
  if (!location.startsWith('node_modules/') && !location.startsWith(`${workspace}/node_modules/`)) continue;
  if (!existsSync(location)) continue;
  rmSync(location, { recursive: true, force: true });
  removed++;
}
// Executables of removed packages would be dangling links; nothing at run time uses .bin.
for (const location of ['', `${workspace}/`, ...[...keep].map((l) => `${l}/`)]) {
  rmSync(`${location}node_modules/.bin`, { recursive: true, force: true });
}
// Scope folders (@grpc, @esbuild, the workspace links' @parley) left empty.
for (const modules of ['node_modules', `${workspace}/node_modules`]) {
  if (!existsSync(modules)) continue;
  for (const scope of readdirSync(modules).filter((name) => name.startsWith('@'))) {
    if (readdirSync(`${modules}/${scope}`).length === 0) rmSync(`${modules}/${scope}`, { recursive: true });
  }
}
process.stdout.write(`prune-prod-deps: kept ${keep.size - 1} packages of ${workspace}, removed ${removed}\n`);
