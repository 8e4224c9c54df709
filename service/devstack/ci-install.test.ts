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
];
/** The Go programs the script builds, with the module each comes from (the version is pinned there). */
const GO_TOOLS = { minio: 'github.com/minio/minio' };
const PINNED_VERSION = /^v\d+\.\d+\.\d+(-\d{14}-[0-9a-f]{12})?$/;

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
function cacheBuilt(cacheDir: string, name: string): string {
  const version = /"minio \S+ (\S+)"/.exec(readFileSync(SCRIPT, 'utf8'))![1]!;
  const dir = join(cacheDir, 'parley', 'go', `${name}@${version}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, name), '#!/bin/sh\necho cached\n');
  chmodSync(join(dir, name), 0o755);
  return join(dir, name);
}

/**
 * Runs .ci/install-missing on a PATH of stand-ins: `present` commands exist, `id -u` answers `uid`,
 * and apt-get (and sudo, when `sudo` is true) only record how they were called. The script's
 * policy-rc.d is a file in the stand-ins' directory (there already when `policyRcD` is given); each
 * apt-get call also records what that policy answers an init script's start, as invoke-rc.d asks it.
 * `go` (when given: `builds` or `fails`) records its calls too, and a build writes a binary into
 * GOBIN. Built Go programs go to `cache` (XDG_CACHE_HOME; a fresh one unless given) and their links
 * to the clone's tools dir, returned as `toolsBin`.
 */
function runInstaller(options: {
  uid: number;
  sudo: boolean;
  present: string[];
  policyRcD?: string;
  go?: 'builds' | 'fails';
  cache?: string;
}) {
  const bin = mkdtempSync(join(tmpdir(), 'parley-ci-test-'));
  const calls = join(bin, 'calls.log');
  const policy = join(bin, 'policy-rc.d');
  const toolsBin = join(bin, 'clone', '.tools', 'bin');
  const ownCache = options.cache === undefined ? machineCache() : undefined;
  const cache = options.cache ?? ownCache!.dir;
  if (options.cache === undefined) for (const name of Object.keys(GO_TOOLS)) cacheBuilt(cache, name);
  const script = (name: string, body: string) => {
    writeFileSync(join(bin, name), `#!/bin/bash\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  const tools = ['sort', 'env', 'sh', 'chmod', 'rm', 'mkdir', 'ln', 'mktemp', 'mv', 'dirname'];
  for (const tool of tools) symlinkSync(`/usr/bin/${tool}`, join(bin, tool));
  for (const command of options.present) script(command, 'exit 0');
  if (options.go === 'builds') {
    script(
      'go',
      [
        `echo "go $*" >> ${calls}`,
        'name="${!#}"; name="${name%%@*}"; name="${name##*/}"',
        'printf "#!/bin/sh\\necho built\\n" > "$GOBIN/$name" && chmod 755 "$GOBIN/$name"',
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
  'install -y -qq --no-install-recommends haproxy mariadb-server procps prometheus redis-server unzip util-linux';
const STANDS_IN = 'policy-rc.d answers 101';

describe('.ci/install-missing (the packages CI installs on a fresh machine)', () => {
  it('installs nothing when every command is there and the Go programs are built', () => {
    const run = runInstaller({ uid: 1000, sudo: false, present: ALL_COMMANDS, go: 'builds' });
    expect(run.status, run.stderr).toBe(0);
    expect(run.calls).toEqual([]);
    expect(Object.keys(run.links)).toEqual(Object.keys(GO_TOOLS));
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
      'ci: haproxy mariadb-server procps prometheus redis-server unzip util-linux missing, and installing them needs root or sudo',
    );
    expect(run.calls).toEqual([]);
  });
});

describe('.ci/install-missing (the Go programs it builds, cached per machine)', () => {
  it('builds MinIO at a pinned version, caches it by version and links it into the clone', () => {
    const cache = machineCache();
    try {
      const run = runInstaller({
        uid: 1000,
        sudo: false,
        present: ALL_COMMANDS,
        go: 'builds',
        cache: cache.dir,
      });
      expect(run.status, run.stderr).toBe(0);
      expect(run.calls).toHaveLength(1);
      const [, module, version] = /^go install -ldflags=-s -w (\S+)@(\S+)$/.exec(run.calls[0]!) ?? [];
      expect(module).toBe(GO_TOOLS.minio);
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

  it('reuses the build on the same machine: a fresh clone only links it', () => {
    const cache = machineCache();
    try {
      const first = runInstaller({
        uid: 1000,
        sudo: false,
        present: ALL_COMMANDS,
        go: 'builds',
        cache: cache.dir,
      });
      expect(first.calls).toHaveLength(1);
      const second = runInstaller({
        uid: 1000,
        sudo: false,
        present: ALL_COMMANDS,
        go: 'builds',
        cache: cache.dir,
      });
      expect(second.status, second.stderr).toBe(0);
      expect(second.calls).toEqual([]);
      expect(second.links.minio).toEqual(first.links.minio);
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

  it('leaves nothing in the cache that looks built when the build fails', () => {
    const cache = machineCache();
    try {
      const run = runInstaller({
        uid: 1000,
        sudo: false,
        present: ALL_COMMANDS,
        go: 'fails',
        cache: cache.dir,
      });
      expect(run.status).toBe(1);
      expect(run.stderr).toContain('ci: go install github.com/minio/minio@');
      expect(cache.built('minio')).toEqual([]);
      expect(readdirSync(join(cache.dir, 'parley', 'go'))).toEqual([]);
      expect(run.links).toEqual({});
    } finally {
      cache.remove();
    }
  });
});
