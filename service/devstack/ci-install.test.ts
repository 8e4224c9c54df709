import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readFileSync,
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

/**
 * Runs .ci/install-missing on a PATH of stand-ins: `present` commands exist, `id -u` answers `uid`,
 * and apt-get (and sudo, when `sudo` is true) only record how they were called. The script's
 * policy-rc.d is a file in the stand-ins' directory (there already when `policyRcD` is given); each
 * apt-get call also records what that policy answers an init script's start, as invoke-rc.d asks it.
 */
function runInstaller(options: { uid: number; sudo: boolean; present: string[]; policyRcD?: string }) {
  const bin = mkdtempSync(join(tmpdir(), 'parley-ci-test-'));
  const calls = join(bin, 'calls.log');
  const policy = join(bin, 'policy-rc.d');
  const script = (name: string, body: string) => {
    writeFileSync(join(bin, name), `#!/bin/bash\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  for (const tool of ['sort', 'env', 'sh', 'chmod', 'rm']) symlinkSync(`/usr/bin/${tool}`, join(bin, tool));
  for (const command of options.present) script(command, 'exit 0');
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
      env: { PATH: bin, POLICY_RC_D: policy },
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
    };
  } finally {
    rmSync(bin, { recursive: true, force: true });
  }
}

const INSTALL_ALL =
  'install -y -qq --no-install-recommends haproxy mariadb-server procps prometheus redis-server unzip util-linux';
const STANDS_IN = 'policy-rc.d answers 101';

describe('.ci/install-missing (the packages CI installs on a fresh machine)', () => {
  it('installs nothing when every command is there', () => {
    const run = runInstaller({ uid: 1000, sudo: false, present: ALL_COMMANDS });
    expect(run.status).toBe(0);
    expect(run.calls).toEqual([]);
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
