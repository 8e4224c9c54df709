import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SCRIPT = fileURLToPath(new URL('../../.ci/install-missing', import.meta.url));
const ALL_COMMANDS = [
  'mariadbd',
  'mariadb-install-db',
  'redis-server',
  'setpriv',
  'pgrep',
  'unzip',
  'promtool',
  'haproxy',
  'openssl',
];
/**
 * The Go programs the script builds, by the cache entry they share (name@version), with the module
 * they come from (the version is pinned in the script).
 */
const GO_TOOLS = {
  minio: { module: 'github.com/minio/minio', programs: ['minio'] },
  etcd: { module: 'go.etcd.io/etcd/server/v3', programs: ['etcd'] },
  kubernetes: {
    module: 'k8s.io/kubernetes',
    programs: ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kubectl'],
  },
  kwok: { module: 'sigs.k8s.io/kwok', programs: ['kwok'] },
};
type GoTool = keyof typeof GO_TOOLS;
const ALL_PROGRAMS = Object.values(GO_TOOLS)
  .flatMap(({ programs }) => programs)
  .sort();
const PINNED_VERSION = /^v\d+\.\d+\.\d+(-\d{14}-[0-9a-f]{12})?$/;

/** The version the script pins for a cache entry. */
function pinnedVersion(name: GoTool): string {
  return new RegExp(`"${name} \\S+ (\\S+)[ "]`).exec(readFileSync(SCRIPT, 'utf8'))![1]!;
}

/** A machine's cache of built Go programs (XDG_CACHE_HOME), shared by the clones on it. */
function machineCache(): { dir: string; built: (name: string) => string[]; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'parley-ci-cache-'));
  const goDir = join(dir, 'parley', 'go');
  return {
    dir,
    built: (name) =>
      existsSync(goDir) ? readdirSync(goDir).filter((entry) => entry.startsWith(`${name}@`)) : [],
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Puts an already built `name` in the cache, as an earlier run on this machine would have. */
function cacheBuilt(cacheDir: string, name: GoTool): void {
  const dir = join(cacheDir, 'parley', 'go', `${name}@${pinnedVersion(name)}`);
  mkdirSync(dir, { recursive: true });
  for (const program of GO_TOOLS[name].programs) {
    writeFileSync(join(dir, program), '#!/bin/sh\necho cached\n');
    chmodSync(join(dir, program), 0o755);
  }
}

/**
 * Runs .ci/install-missing on a PATH of stand-ins: `present` commands exist, `id -u` answers `uid`,
 * and apt-get (and sudo, when `sudo` is true) only record how they were called. The script's
 * policy-rc.d is a file in the stand-ins' directory (there already when `policyRcD` is given); each
 * apt-get call also records what that policy answers an init script's start, as invoke-rc.d asks it.
 * `go` (when given: `builds` or `fails`) records its calls too (with the build environment it cares
 * about), and a build writes a binary into GOBIN or to `-o`; `go mod download -json` answers with a
 * module whose go.mod replaces two staging modules with local paths, and which ships kwok-like stage
 * files. Built Go programs go to `cache` (XDG_CACHE_HOME; a fresh one unless given; with every
 * program already built in it unless `cached` says which) and their links to the clone's tools dir.
 */
function runInstaller(options: {
  uid: number;
  sudo: boolean;
  present: string[];
  policyRcD?: string;
  go?: 'builds' | 'fails';
  cache?: string;
  cached?: GoTool[];
}) {
  const bin = mkdtempSync(join(tmpdir(), 'parley-ci-test-'));
  const calls = join(bin, 'calls.log');
  const policy = join(bin, 'policy-rc.d');
  const toolsBin = join(bin, 'clone', '.tools', 'bin');
  const ownCache = options.cache === undefined ? machineCache() : undefined;
  const cache = options.cache ?? ownCache!.dir;
  const cached = options.cached ?? (options.cache === undefined ? (Object.keys(GO_TOOLS) as GoTool[]) : []);
  for (const name of cached) cacheBuilt(cache, name);
  const script = (name: string, body: string) => {
    writeFileSync(join(bin, name), `#!/bin/bash\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  const tools = ['sort', 'env', 'sh', 'chmod', 'rm', 'mkdir', 'ln', 'mktemp', 'mv', 'dirname'];
  for (const tool of [...tools, 'awk', 'sed', 'cp', 'basename'])
    symlinkSync(`/usr/bin/${tool}`, join(bin, tool));
  for (const command of options.present) script(command, 'exit 0');
  if (options.go === 'builds') {
    const modules = join(bin, 'modules');
    script(
      'go',
      [
        `echo "go $* (CGO_ENABLED=\${CGO_ENABLED:-} GOTOOLCHAIN=\${GOTOOLCHAIN:-})" >> ${calls}`,
        'built() { printf "#!/bin/sh\\necho built\\n" > "$1" && chmod 755 "$1"; }',
        'case "$1 $2" in',
        '  "install "*) name="${!#}"; name="${name%%@*}"; name="${name##*/}"; built "$GOBIN/$name" ;;',
        '  "build "*) while [ "$1" != -o ]; do shift; done; built "$2" ;;',
        '  "mod download")',
        `    module="\${!#}"; module="\${module%@*}"; dir="${modules}/\${module//\\//_}"`,
        '    mkdir -p "$dir/kustomize/stage/pod/general"',
        '    printf "kind: Stage\\n" > "$dir/kustomize/stage/pod/general/pod-ready.yaml"',
        '    printf "module %s\\n\\nreplace (\\n\\tk8s.io/api => ./staging/src/k8s.io/api\\n\\tk8s.io/client-go v0.0.0 => ../client-go\\n\\tgithub.com/pkg/errors => github.com/pkg/errors v0.9.1\\n)\\n" "$module" > "$dir/go.mod"',
        '    printf "{\\n\\t\\"Path\\": \\"%s\\",\\n\\t\\"GoMod\\": \\"%s\\",\\n\\t\\"Dir\\": \\"%s\\"\\n}\\n" "$module" "$dir/go.mod" "$dir" ;;',
        'esac',
      ].join('\n'),
    );
  } else if (options.go === 'fails') {
    script('go', `echo "go $*" >> ${calls}\necho "go: module lookup disabled" >&2\nexit 1`);
  }
  if (options.policyRcD !== undefined) script('policy-rc.d', options.policyRcD);
  script('id', `echo ${options.uid}`);
  script(
    'apt-get',
    [
      `echo "apt-get $* (DEBIAN_FRONTEND=\${DEBIAN_FRONTEND:-})" >> ${calls}`,
      `if [ -x ${policy} ]; then ${policy} prometheus start; echo "policy-rc.d answers $?"; else echo "no policy-rc.d"; fi >> ${calls}`,
    ].join('\n'),
  );
  if (options.sudo) script('sudo', `echo "sudo $*" >> ${calls}\n[ "$1" = -n ] && shift\nexec "$@"`);
  try {
    const result = spawnSync('/bin/bash', [SCRIPT], {
      env: { PATH: bin, POLICY_RC_D: policy, XDG_CACHE_HOME: cache, PARLEY_TOOLS_BIN: toolsBin },
      encoding: 'utf8',
      timeout: 10_000,
    });
    let log: string[] = [];
    try {
      log = readFileSync(calls, 'utf8').trim().split('\n');
    } catch {
      // nothing was called
    }
    return {
      status: result.status,
      stdout: result.stdout,
      stderr: result.stderr,
      calls: log.map((line) => line.replaceAll(policy, 'POLICY_RC_D')),
      policyLeft: existsSync(policy),
      /** What each link in the clone's tools dir points to, and what running it prints. */
      links: Object.fromEntries(
        (existsSync(toolsBin) ? readdirSync(toolsBin) : []).map((name) => [
          name,
          {
            target: readlinkSync(join(toolsBin, name)),
            prints: spawnSync(join(toolsBin, name), { encoding: 'utf8' }).stdout.trim(),
          },
        ]),
      ),
    };
  } finally {
    rmSync(bin, { recursive: true, force: true });
    ownCache?.remove();
  }
}

const INSTALL_ALL =
  'install -y -qq --no-install-recommends haproxy mariadb-server openssl procps prometheus redis-server unzip util-linux';
const STANDS_IN = 'policy-rc.d answers 101';

describe('.ci/install-missing (the packages CI installs on a fresh machine)', () => {
  it('installs nothing when every command is there and the Go programs are built', () => {
    const run = runInstaller({ uid: 1000, sudo: false, present: ALL_COMMANDS, go: 'builds' });
    expect(run.status, run.stderr).toBe(0);
    expect(run.calls).toEqual([]);
    expect(Object.keys(run.links).sort()).toEqual(ALL_PROGRAMS);
  });

  it('installs procps when pgrep is the one command missing', () => {
    const run = runInstaller({
      uid: 0,
      sudo: false,
      present: ALL_COMMANDS.filter((command) => command !== 'pgrep'),
    });
    expect(run.status, run.stderr).toBe(0);
    expect(run.calls).toEqual([
      'apt-get update -qq (DEBIAN_FRONTEND=)',
      STANDS_IN,
      'apt-get install -y -qq --no-install-recommends procps (DEBIAN_FRONTEND=noninteractive)',
      STANDS_IN,
    ]);
  });

  it('installs prometheus when promtool (the PromQL engine of the chart tests) is missing', () => {
    const run = runInstaller({
      uid: 0,
      sudo: false,
      present: ALL_COMMANDS.filter((command) => command !== 'promtool'),
    });
    expect(run.status, run.stderr).toBe(0);
    expect(run.calls).toContain(
      'apt-get install -y -qq --no-install-recommends prometheus (DEBIAN_FRONTEND=noninteractive)',
    );
  });

  it('installs haproxy (the least-connections proxy of the drain tests) when it is missing', () => {
    const run = runInstaller({
      uid: 0,
      sudo: false,
      present: ALL_COMMANDS.filter((command) => command !== 'haproxy'),
    });
    expect(run.status, run.stderr).toBe(0);
    expect(run.calls).toContain(
      'apt-get install -y -qq --no-install-recommends haproxy (DEBIAN_FRONTEND=noninteractive)',
    );
  });

  it('runs apt-get itself as root, each package once', () => {
    const run = runInstaller({ uid: 0, sudo: true, present: [] });
    expect(run.status, run.stderr).toBe(0);
    expect(run.calls).toEqual([
      'apt-get update -qq (DEBIAN_FRONTEND=)',
      STANDS_IN,
      `apt-get ${INSTALL_ALL} (DEBIAN_FRONTEND=noninteractive)`,
      STANDS_IN,
    ]);
  });

  it('starts no service it installs (a Prometheus server, MariaDB, Redis): a policy-rc.d refuses them during the install and is gone after', () => {
    const run = runInstaller({ uid: 0, sudo: false, present: [] });
    expect(run.status, run.stderr).toBe(0);
    expect(run.calls.filter((line) => line.startsWith('policy-rc.d') || line.startsWith('no '))).toEqual([
      STANDS_IN,
      STANDS_IN,
    ]);
    expect(run.policyLeft).toBe(false);
  });

  it('leaves a policy-rc.d that is already there (as container images ship one) as it is', () => {
    const run = runInstaller({ uid: 0, sudo: false, present: [], policyRcD: 'exit 101' });
    expect(run.status, run.stderr).toBe(0);
    expect(run.calls).toEqual([
      'apt-get update -qq (DEBIAN_FRONTEND=)',
      STANDS_IN,
      `apt-get ${INSTALL_ALL} (DEBIAN_FRONTEND=noninteractive)`,
      STANDS_IN,
    ]);
    expect(run.policyLeft).toBe(true);
  });

  it('goes through sudo, never prompting, when it is not root', () => {
    const run = runInstaller({ uid: 1000, sudo: true, present: [] });
    expect(run.status, run.stderr).toBe(0);
    expect(run.calls).toEqual([
      `sudo -n sh -c printf "#!/bin/sh\\nexit 101\\n" >"$1" && chmod 755 "$1" sh POLICY_RC_D`,
      'sudo -n apt-get update -qq',
      'apt-get update -qq (DEBIAN_FRONTEND=)',
      STANDS_IN,
      `sudo -n env DEBIAN_FRONTEND=noninteractive apt-get ${INSTALL_ALL}`,
      `apt-get ${INSTALL_ALL} (DEBIAN_FRONTEND=noninteractive)`,
      STANDS_IN,
      'sudo -n rm -f POLICY_RC_D',
    ]);
    expect(run.policyLeft).toBe(false);
  });

  it('fails naming the packages when it is neither root nor has sudo', () => {
    const run = runInstaller({ uid: 1000, sudo: false, present: [] });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(
      'ci: haproxy mariadb-server openssl procps prometheus redis-server unzip util-linux missing, and installing them needs root or sudo',
    );
    expect(run.calls).toEqual([]);
  });
});

describe('.ci/install-missing (the Go programs it builds, cached per machine)', () => {
  const goCalls = (calls: string[]) => calls.filter((call) => call.startsWith('go '));

  it('builds MinIO at a pinned version, caches it by version and links it into the clone', () => {
    const cache = machineCache();
    try {
      const run = runInstaller({
        uid: 1000,
        sudo: false,
        present: ALL_COMMANDS,
        go: 'builds',
        cache: cache.dir,
        cached: ['etcd', 'kubernetes', 'kwok'],
      });
      expect(run.status, run.stderr).toBe(0);
      expect(run.calls).toHaveLength(1);
      const [, module, version] =
        /^go install -trimpath -ldflags=-s -w (\S+)@(\S+) \(CGO_ENABLED=0 GOTOOLCHAIN=local\)$/.exec(
          run.calls[0]!,
        ) ?? [];
      expect(module).toBe(GO_TOOLS.minio.module);
      expect(version).toMatch(PINNED_VERSION);
      expect(cache.built('minio')).toEqual([`minio@${version}`]);
      expect(run.links.minio).toEqual({
        target: join(cache.dir, 'parley', 'go', `minio@${version}`, 'minio'),
        prints: 'built',
      });
    } finally {
      cache.remove();
    }
  });

  it('builds the control plane in a scratch module: k8s.io/kubernetes at its pin, each staging module replaced by its published v0 release', () => {
    const cache = machineCache();
    try {
      const run = runInstaller({
        uid: 1000,
        sudo: false,
        present: ALL_COMMANDS,
        go: 'builds',
        cache: cache.dir,
        cached: ['minio', 'etcd', 'kwok'],
      });
      expect(run.status, run.stderr).toBe(0);
      const version = pinnedVersion('kubernetes');
      expect(version).toMatch(PINNED_VERSION);
      const staging = version.replace(/^v1\./, 'v0.');
      const env = '(CGO_ENABLED=0 GOTOOLCHAIN=local)';
      const calls = goCalls(run.calls);
      expect(calls.slice(0, 6)).toEqual([
        `go mod download -json k8s.io/kubernetes@${version} ${env}`,
        `go mod init parley.invalid/build/kubernetes ${env}`,
        `go mod edit -require=k8s.io/kubernetes@${version} ${env}`,
        // Only what the module points at local paths; a replacement by another module stays out.
        `go mod edit -replace=k8s.io/api=k8s.io/api@${staging} ${env}`,
        `go mod edit -replace=k8s.io/client-go=k8s.io/client-go@${staging} ${env}`,
        `go mod edit -tool=k8s.io/kubernetes/cmd/kube-apiserver ${env}`,
      ]);
      expect(calls).toContain(`go mod tidy ${env}`);
      const builds = calls.filter((call) => call.startsWith('go build '));
      expect(builds).toHaveLength(4);
      const dir = join(cache.dir, 'parley', 'go', `kubernetes@${version}`);
      for (const program of GO_TOOLS.kubernetes.programs) {
        // Built aside (out/) and moved into the cache whole, as a go install is.
        const build = builds.find((call) => call.includes(`/out/${program} `))!;
        expect(build).toContain(`k8s.io/kubernetes/cmd/${program} ${env}`);
        // The version the API server reports to helm and kubectl, as Kubernetes' own build stamps it.
        expect(build).toContain(`-X k8s.io/component-base/version.gitVersion=${version}`);
        expect(build).toContain(`-X k8s.io/client-go/pkg/version.gitMinor=${version.split('.')[1]}`);
        expect(run.links[program]).toEqual({ target: join(dir, program), prints: 'built' });
      }
      expect(cache.built('kubernetes')).toEqual([`kubernetes@${version}`]);
    } finally {
      cache.remove();
    }
  });

  it('builds etcd from its server module, unstamped, and kwok with the stages of its module beside it', () => {
    const cache = machineCache();
    try {
      const run = runInstaller({
        uid: 1000,
        sudo: false,
        present: ALL_COMMANDS,
        go: 'builds',
        cache: cache.dir,
        cached: ['minio', 'kubernetes'],
      });
      expect(run.status, run.stderr).toBe(0);
      const calls = goCalls(run.calls);
      const etcd = pinnedVersion('etcd');
      expect(calls).toContain(
        `go mod edit -require=go.etcd.io/etcd/server/v3@${etcd} (CGO_ENABLED=0 GOTOOLCHAIN=local)`,
      );
      // etcd requires its sibling modules at their published versions: nothing to replace.
      expect(calls.filter((call) => call.includes('-replace='))).toEqual([]);
      expect(calls.find((call) => call.includes('/etcd go.etcd.io/etcd/server/v3 '))).not.toContain(' -X ');
      const kwokDir = join(cache.dir, 'parley', 'go', `kwok@${pinnedVersion('kwok')}`);
      expect(readdirSync(join(kwokDir, 'stage', 'pod', 'general'))).toEqual(['pod-ready.yaml']);
      expect(run.links.etcd?.prints).toBe('built');
      expect(run.links.kwok).toEqual({ target: join(kwokDir, 'kwok'), prints: 'built' });
    } finally {
      cache.remove();
    }
  });

  it('reuses the builds on the same machine: a fresh clone only links them', () => {
    const cache = machineCache();
    try {
      const first = runInstaller({
        uid: 1000,
        sudo: false,
        present: ALL_COMMANDS,
        go: 'builds',
        cache: cache.dir,
      });
      expect(first.status, first.stderr).toBe(0);
      expect(goCalls(first.calls).filter((call) => / (install|build) /.test(call))).toHaveLength(7);
      const second = runInstaller({
        uid: 1000,
        sudo: false,
        present: ALL_COMMANDS,
        go: 'builds',
        cache: cache.dir,
      });
      expect(second.status, second.stderr).toBe(0);
      expect(second.calls).toEqual([]);
      expect(second.links).toEqual(first.links);
      expect(Object.keys(second.links).sort()).toEqual(ALL_PROGRAMS);
    } finally {
      cache.remove();
    }
  });

  it('rebuilds a module whose cache entry lacks one of its programs', () => {
    const cache = machineCache();
    try {
      cacheBuilt(cache.dir, 'kubernetes');
      rmSync(join(cache.dir, 'parley', 'go', `kubernetes@${pinnedVersion('kubernetes')}`, 'kubectl'));
      const run = runInstaller({
        uid: 1000,
        sudo: false,
        present: ALL_COMMANDS,
        go: 'builds',
        cache: cache.dir,
        cached: ['minio', 'etcd', 'kwok'],
      });
      expect(run.status, run.stderr).toBe(0);
      expect(goCalls(run.calls).filter((call) => call.startsWith('go build '))).toHaveLength(4);
      expect(run.links.kubectl?.prints).toBe('built');
    } finally {
      cache.remove();
    }
  });

  it('fails saying Go is needed when MinIO is not built and there is no Go', () => {
    const cache = machineCache();
    try {
      const run = runInstaller({ uid: 1000, sudo: false, present: ALL_COMMANDS, cache: cache.dir });
      expect(run.status).toBe(1);
      expect(run.stderr).toMatch(
        /ci: minio is not built, and building it \(github.com\/minio\/minio@\S+\) needs Go/,
      );
      expect(run.links).toEqual({});
    } finally {
      cache.remove();
    }
  });

  it('fails saying Go is needed when the control plane is not built and there is no Go', () => {
    const cache = machineCache();
    try {
      const run = runInstaller({
        uid: 1000,
        sudo: false,
        present: ALL_COMMANDS,
        cache: cache.dir,
        cached: ['minio', 'etcd'],
      });
      expect(run.status).toBe(1);
      expect(run.stderr).toMatch(
        /ci: kubernetes is not built, and building it \(k8s.io\/kubernetes@\S+\) needs Go/,
      );
    } finally {
      cache.remove();
    }
  });

  it('leaves nothing in the cache that looks built when a build fails', () => {
    for (const failing of ['minio', 'kubernetes'] as const) {
      const cache = machineCache();
      try {
        const run = runInstaller({
          uid: 1000,
          sudo: false,
          present: ALL_COMMANDS,
          go: 'fails',
          cache: cache.dir,
          cached: (Object.keys(GO_TOOLS) as GoTool[]).filter((name) => name !== failing),
        });
        expect(run.status).toBe(1);
        expect(run.stderr).toContain(
          failing === 'minio' ? 'ci: go install github.com/minio/minio@' : 'ci: building k8s.io/kubernetes@',
        );
        expect(cache.built(failing)).toEqual([]);
        expect(readdirSync(join(cache.dir, 'parley', 'go')).filter((entry) => entry.startsWith('.'))).toEqual(
          [],
        );
      } finally {
        cache.remove();
      }
    }
  });
});
