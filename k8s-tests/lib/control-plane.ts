/**
 * A real Kubernetes control plane with no container runtime, for the chart's live tests: etcd,
 * kube-apiserver (RBAC, Pod Security admission, service-account tokens), kube-controller-manager,
 * kube-scheduler and kwok, whose fake nodes (in three zones) take the scheduled pods through their
 * lifecycle: Running and Ready, Job pods Succeeded, PersistentVolumeClaims provisioned and bound.
 * Everything listens on free loopback ports and lives in one temp dir; `stop()` ends it all.
 *
 * The binaries are built at pinned versions by .ci/install-missing and linked into .tools/bin.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import {
  accessSync,
  closeSync,
  constants,
  openSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments, stringify } from 'yaml';
import { toolsBinDir } from '../scripts/kube-tools.js';

const run = promisify(execFile);

/** The programs .ci/install-missing links into .tools/bin for the control plane. */
export const CONTROL_PLANE_PROGRAMS = [
  'etcd',
  'kube-apiserver',
  'kube-controller-manager',
  'kube-scheduler',
  'kwok',
] as const;
type Program = (typeof CONTROL_PLANE_PROGRAMS)[number] | 'kubectl';

export const CONTROL_PLANE_INSTALL_HINT =
  'run .ci/install-missing: it builds etcd, the Kubernetes control plane and kwok with Go (minutes once, ' +
  'cached per machine) and links them into .tools/bin';

export interface FakeNode {
  name: string;
  zone: string;
}

export interface ControlPlane {
  /** A kubeconfig whose user is in system:masters, for helm and kubectl. */
  kubeconfig: string;
  /** kubectl of the same release as the API server (the one in the npm package is older). */
  kubectl: string;
  nodes: FakeNode[];
  /** The temp dir: certificates, etcd's data, kwok's configuration and every process's log. */
  dir: string;
  /** Runs kubectl against this control plane. */
  kubectlRun(args: string[], input?: string): Promise<string>;
  /** Stops every process it started (each in its own process group) and removes the temp dir. */
  stop(): Promise<void>;
}

export interface ControlPlaneOptions {
  zones?: string[];
  nodesPerZone?: number;
  /** Where the programs are linked; .tools/bin by default. */
  toolsBin?: string;
}

/** The absolute paths of the control plane's programs, or what is missing. */
export function findControlPlane(
  toolsBin = toolsBinDir,
): { found: true; programs: Record<Program, string> } | { found: false; missing: string[] } {
  const programs: Partial<Record<Program, string>> = {};
  const missing: string[] = [];
  const executable = (path: string) => {
    accessSync(path, constants.X_OK);
    // The link's target, beside which kwok's stages sit.
    return realpathSync(path);
  };
  for (const name of CONTROL_PLANE_PROGRAMS) {
    try {
      programs[name] = executable(join(toolsBin, name));
    } catch {
      missing.push(name);
    }
  }
  // The kubectl built with the API server, not whichever .tools/bin/kubectl is there: the npm
  // package's is older than kubectl's version skew allows.
  if (programs['kube-apiserver'])
    try {
      programs.kubectl = executable(join(dirname(programs['kube-apiserver']), 'kubectl'));
    } catch {
      missing.push('kubectl');
    }
  if (missing.length > 0) return { found: false, missing };
  return { found: true, programs: programs as Record<Program, string> };
}

/** A port nothing listens on now; the OS hands out ephemeral ports in turn, so a reuse is unlikely. */
async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

// setpriv (util-linux) sets PR_SET_PDEATHSIG before exec: if the test runner is SIGKILLed, the kernel
// kills the control plane too, so not even a crashed run leaks an API server.
const hasSetpriv = spawnSync('setpriv', ['--help'], { stdio: 'ignore' }).status === 0;

/** Every control plane's processes and temp dir, which the exit hook ends if nobody stopped them. */
const running = new Set<ChildProcess>();
const dirs = new Set<string>();
let exitHookInstalled = false;
const DIR_PREFIX = 'parley-control-plane-';

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // ESRCH: the group is gone already, which is what we want.
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of running) killGroup(child, 'SIGKILL');
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
}

/** Removes the temp dirs of control planes whose test runner died without stopping them (SIGKILL). */
function sweepAbandoned(): void {
  for (const entry of readdirSync(tmpdir())) {
    const owner = new RegExp(`^${DIR_PREFIX}(\\d+)-`).exec(entry)?.[1];
    if (owner === undefined) continue;
    try {
      process.kill(Number(owner), 0);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ESRCH')
        rmSync(join(tmpdir(), entry), { recursive: true, force: true });
    }
  }
}

function startProcess(
  name: string,
  command: string,
  args: string[],
  dir: string,
  env: NodeJS.ProcessEnv = {},
) {
  const logFile = join(dir, 'logs', `${name}.log`);
  const log = openSync(logFile, 'a');
  const argv = hasSetpriv ? ['--pdeathsig', 'KILL', '--', command, ...args] : args;
  // detached: a process group of its own, so stop() reaches whatever it forks, and a Ctrl-C in the
  // terminal reaches the test runner, which stops the control plane in order.
  const child = spawn(hasSetpriv ? 'setpriv' : command, argv, {
    stdio: ['ignore', log, log],
    detached: true,
    env: { ...process.env, ...env },
  });
  closeSync(log);
  running.add(child);
  // A spawn that fails (no such file) emits 'error' and no 'exit'; waitFor reports it from the log.
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', (error) => {
      writeFileSync(logFile, `spawn failed: ${error.message}\n`, { flag: 'a' });
      resolve();
    });
  }).then(() => void running.delete(child));
  const logTail = () => {
    try {
      return readFileSync(logFile, 'utf8').split('\n').slice(-20).join('\n');
    } catch {
      return '(no log)';
    }
  };
  return { name, child, exited, logTail };
}
type Started = ReturnType<typeof startProcess>;

/** Polls `probe` until it resolves; fails early, with the component's log, if it exits. */
async function waitFor(started: Started, what: string, probe: () => Promise<unknown>, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    if (started.child.exitCode !== null || started.child.signalCode !== null || !running.has(started.child))
      throw new Error(
        `${started.name} exited while waiting for ${what}; its log ends:\n${started.logTail()}`,
      );
    try {
      return await probe();
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline)
      throw new Error(
        `${what}: not after ${timeoutMs} ms (${String(last)}); ${started.name}'s log ends:\n${started.logTail()}`,
      );
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** GET over HTTPS with a bearer token, trusting only `ca`; resolves with the body of a 200. */
function httpsGet(url: string, ca: string | undefined, token?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        ca,
        // The controller-manager and scheduler serve /healthz on a certificate of their own making.
        rejectUnauthorized: ca !== undefined,
        headers: token ? { authorization: `Bearer ${token}` } : {},
        timeout: 5_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () =>
          res.statusCode === 200 ? resolve(body) : reject(new Error(`${res.statusCode}: ${body}`)),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

function httpGet(url: string): Promise<string> {
  return fetch(url, { signal: AbortSignal.timeout(5_000) }).then(async (res) => {
    const body = await res.text();
    if (!res.ok) throw new Error(`${res.status}: ${body}`);
    return body;
  });
}

/** Runs kubectl (with `input` on its stdin) and resolves with its stdout; rejects with its stderr. */
export function runKubectl(kubectl: string, kubeconfig: string, args: string[], input = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(kubectl, [`--kubeconfig=${kubeconfig}`, ...args]);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(stdout) : reject(new Error(`kubectl ${args.join(' ')} failed:\n${stderr}`)),
    );
    child.stdin.end(input);
  });
}

function kubeconfigFor(server: string, ca: string, user: string, token: string): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: 'parley',
        cluster: { server, 'certificate-authority-data': Buffer.from(ca).toString('base64') },
      },
    ],
    users: [{ name: user, user: { token } }],
    contexts: [{ name: 'parley', context: { cluster: 'parley', user, namespace: 'default' } }],
    'current-context': 'parley',
  });
}

// kwok simulates nothing without Stage objects in its configuration; these ship in its module (copied
// beside the binary by .ci/install-missing): nodes become Ready and keep their Lease fresh, pods go
// through init containers to Running and Ready (Job pods on to Succeeded), and claims on the default
// StorageClass that stage set creates get a bound volume.
const KWOK_STAGE_DIRS = ['node/fast', 'node/heartbeat-with-lease', 'pod/general', 'volume/fast'];

function kwokStages(kwokBinary: string): { stages: unknown[]; clusterObjects: unknown[] } {
  const root = join(dirname(kwokBinary), 'stage');
  const stages: unknown[] = [];
  const clusterObjects: unknown[] = [];
  for (const stageDir of KWOK_STAGE_DIRS) {
    const files = readdirSync(join(root, stageDir)).filter(
      (file) => file.endsWith('.yaml') && file !== 'kustomization.yaml',
    );
    if (files.length === 0) throw new Error(`no kwok stages in ${join(root, stageDir)}`);
    for (const file of files.sort()) {
      for (const doc of parseAllDocuments(readFileSync(join(root, stageDir, file), 'utf8'))) {
        const object = doc.toJS() as { kind?: string } | null;
        if (!object) continue;
        (object.kind === 'Stage' ? stages : clusterObjects).push(object);
      }
    }
  }
  return { stages, clusterObjects };
}

function fakeNode(node: FakeNode): unknown {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: node.name,
      // kwok manages the nodes with this annotation (its flag below) and leaves any other alone.
      annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
      labels: {
        'kubernetes.io/hostname': node.name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        'node.kubernetes.io/instance-type': 'kwok',
        'topology.kubernetes.io/region': 'parley-test',
        'topology.kubernetes.io/zone': node.zone,
        type: 'kwok',
      },
    },
    // What the scheduler fits pods into: as much as a mid-sized cloud node.
    status: {
      allocatable: { cpu: '16', memory: '64Gi', 'ephemeral-storage': '200Gi', pods: '110' },
      capacity: { cpu: '16', memory: '64Gi', 'ephemeral-storage': '200Gi', pods: '110' },
    },
  };
}

/** Starts a control plane; rejects (having stopped what it started) when any part does not come up. */
export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const lookup = findControlPlane(options.toolsBin);
  if (!lookup.found)
    throw new Error(
      `the control plane's programs are missing (${lookup.missing.join(', ')}): ${CONTROL_PLANE_INSTALL_HINT}`,
    );
  const bin = lookup.programs;
  const zones = options.zones ?? ['zone-a', 'zone-b', 'zone-c'];
  const nodesPerZone = options.nodesPerZone ?? 2;
  const nodes = zones.flatMap((zone) =>
    Array.from({ length: nodesPerZone }, (_, index) => ({ name: `kwok-${zone}-${index + 1}`, zone })),
  );

  sweepAbandoned();
  const dir = await mkdtemp(join(tmpdir(), `${DIR_PREFIX}${process.pid}-`));
  dirs.add(dir);
  const started: Started[] = [];
  installExitHook();
  const stop = async () => {
    // In reverse order of start, so no component logs a storm of errors about the one before it.
    for (const component of started.reverse()) {
      killGroup(component.child, 'SIGTERM');
      const timer = setTimeout(() => killGroup(component.child, 'SIGKILL'), 10_000);
      await component.exited;
      clearTimeout(timer);
    }
    started.length = 0;
    rmSync(dir, { recursive: true, force: true });
    dirs.delete(dir);
  };

  try {
    await Promise.all(['logs', 'pki', 'etcd', 'kwok'].map((sub) => mkdir(join(dir, sub))));
    const pki = join(dir, 'pki');
    const [etcdPort, etcdPeerPort, apiPort, controllerManagerPort, schedulerPort] = await Promise.all(
      Array.from({ length: 5 }, freePort),
    );

    // The serving certificate: self-signed for the loopback address, so the kubeconfig trusts it alone.
    await run('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
      '-subj', '/CN=parley-control-plane', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-keyout', join(pki, 'serving.key'), '-out', join(pki, 'serving.crt'),
    ]); // prettier-ignore
    const ca = readFileSync(join(pki, 'serving.crt'), 'utf8');
    // Service-account tokens are signed with this key and checked with its public half.
    const serviceAccountKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    await writeFile(
      join(pki, 'sa.key'),
      serviceAccountKey.privateKey.export({ type: 'pkcs8', format: 'pem' }),
    );
    await writeFile(join(pki, 'sa.pub'), serviceAccountKey.publicKey.export({ type: 'spki', format: 'pem' }));

    // One static token per client, with the identity a real cluster gives it: RBAC's bootstrap roles
    // grant the controller-manager and the scheduler what they need, and no more.
    const identities = {
      admin: { user: 'parley-admin', groups: 'system:masters' },
      controllerManager: { user: 'system:kube-controller-manager', groups: '' },
      scheduler: { user: 'system:kube-scheduler', groups: '' },
      // kwok acts for every fake node's kubelet, and its volume stages for a provisioner.
      kwok: { user: 'kwok', groups: 'system:masters' },
    };
    const tokens = Object.fromEntries(
      Object.keys(identities).map((client) => [client, randomBytes(24).toString('hex')]),
    ) as Record<keyof typeof identities, string>;
    await writeFile(
      join(pki, 'tokens.csv'),
      Object.entries(identities)
        .map(
          ([client, { user, groups }]) =>
            `${tokens[client as keyof typeof identities]},${user},${user},"${groups}"`,
        )
        .join('\n') + '\n',
    );
    const server = `https://127.0.0.1:${apiPort}`;
    const kubeconfigs = {} as Record<keyof typeof identities, string>;
    for (const client of Object.keys(identities) as (keyof typeof identities)[]) {
      kubeconfigs[client] = join(dir, `${client}.kubeconfig`);
      await writeFile(
        kubeconfigs[client],
        kubeconfigFor(server, ca, identities[client].user, tokens[client]),
      );
    }

    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const peerUrl = `http://127.0.0.1:${etcdPeerPort}`;
    const etcd = startProcess('etcd', bin.etcd, [
      '--name=parley', `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=${etcdUrl}`, `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`, `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=parley=${peerUrl}`,
      // A throwaway store: an fsync per write would only make every test wait on the disk.
      '--unsafe-no-fsync', '--log-level=warn',
    ], dir); // prettier-ignore
    started.push(etcd);
    await waitFor(etcd, 'etcd /health', async () => {
      if (!(await httpGet(`${etcdUrl}/health`)).includes('"health":"true"')) throw new Error('not healthy');
    });

    const apiServer = startProcess('kube-apiserver', bin['kube-apiserver'], [
      `--etcd-servers=${etcdUrl}`,
      '--bind-address=127.0.0.1', '--advertise-address=127.0.0.1', `--secure-port=${apiPort}`,
      `--cert-dir=${pki}`,
      `--tls-cert-file=${join(pki, 'serving.crt')}`, `--tls-private-key-file=${join(pki, 'serving.key')}`,
      `--token-auth-file=${join(pki, 'tokens.csv')}`,
      '--authorization-mode=Node,RBAC',
      // PodSecurity is on by default; named so that a default changing upstream cannot drop it here.
      '--enable-admission-plugins=NodeRestriction,PodSecurity',
      // As kubeadm and managed clusters have it: what refuses a privileged pod is Pod Security.
      '--allow-privileged=true',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${join(pki, 'sa.pub')}`,
      `--service-account-signing-key-file=${join(pki, 'sa.key')}`,
      // ClusterIPs are allocated from here and never routed: there is no kube-proxy.
      '--service-cluster-ip-range=10.96.0.0/16',
      // The default reconciler publishes the advertise address as the kubernetes Service's endpoint
      // and refuses a loopback one.
      '--endpoint-reconciler-type=none',
      '--profiling=false',
    ], dir); // prettier-ignore
    started.push(apiServer);
    await waitFor(apiServer, 'kube-apiserver /readyz', () => httpsGet(`${server}/readyz`, ca, tokens.admin));

    const delegated = (kubeconfig: string) => [
      `--kubeconfig=${kubeconfig}`,
      `--authentication-kubeconfig=${kubeconfig}`,
      `--authorization-kubeconfig=${kubeconfig}`,
      '--bind-address=127.0.0.1',
      // One of each: nothing to elect, and no wait for a lease at start.
      '--leader-elect=false',
    ];
    const controllerManager = startProcess('kube-controller-manager', bin['kube-controller-manager'], [
      ...delegated(kubeconfigs.controllerManager),
      `--secure-port=${controllerManagerPort}`,
      '--controllers=*',
      // Each controller acts as its own service account, as in a real cluster, so RBAC applies.
      '--use-service-account-credentials=true',
      `--service-account-private-key-file=${join(pki, 'sa.key')}`,
      `--root-ca-file=${join(pki, 'serving.crt')}`,
    ], dir); // prettier-ignore
    started.push(controllerManager);
    const scheduler = startProcess(
      'kube-scheduler',
      bin['kube-scheduler'],
      [...delegated(kubeconfigs.scheduler), `--secure-port=${schedulerPort}`],
      dir,
    );
    started.push(scheduler);

    const { stages, clusterObjects } = kwokStages(bin.kwok);
    const kwokConfig = join(dir, 'kwok', 'kwok.yaml');
    await writeFile(
      kwokConfig,
      [
        {
          apiVersion: 'config.kwok.x-k8s.io/v1alpha1',
          kind: 'KwokConfiguration',
          // kwok fills in its defaults only when it is given no KwokConfiguration at all (config.
          // GetKwokConfiguration); from a file, whatever is left out stays zero: no stage workers.
          options: {
            cidr: '10.0.0.0/16',
            podPlayStageParallelism: 4,
            nodePlayStageParallelism: 4,
            nodeLeaseParallelism: 4,
            podsOnNodeSyncParallelism: 1,
            enablePodsOnNodeSyncListPager: true,
            nodeLeaseDurationSeconds: 40,
            manageNodesWithAnnotationSelector: 'kwok.x-k8s.io/node=fake',
          },
        },
        ...stages,
      ]
        .map((doc) => stringify(doc))
        .join('---\n'),
    );
    const kwok = startProcess(
      'kwok',
      bin.kwok,
      [`--kubeconfig=${kubeconfigs.kwok}`, `--config=${kwokConfig}`],
      dir,
      // kwok also reads ~/.kwok/kwok.yaml when there is one: not the developer's.
      { HOME: join(dir, 'kwok') },
    );
    started.push(kwok);

    const kubectlRun = (args: string[], input?: string) =>
      runKubectl(bin.kubectl, kubeconfigs.admin, args, input);

    await kubectlRun(
      ['apply', '--server-side', '-f', '-'],
      [...clusterObjects, ...nodes.map(fakeNode)].map((doc) => stringify(doc)).join('---\n'),
    );
    await waitFor(kwok, 'every fake node Ready', () =>
      kubectlRun(['wait', '--for=condition=Ready', 'node', '--all', '--timeout=5s']),
    );
    await waitFor(controllerManager, 'kube-controller-manager /healthz', () =>
      httpsGet(`https://127.0.0.1:${controllerManagerPort}/healthz`, undefined),
    );
    // The service-account controller's work: namespaces get their default account, which every pod
    // needs before admission lets it in.
    await waitFor(controllerManager, 'the default ServiceAccount', () =>
      kubectlRun(['get', 'serviceaccount', 'default', '--namespace=default']),
    );
    await waitFor(scheduler, 'kube-scheduler /healthz', () =>
      httpsGet(`https://127.0.0.1:${schedulerPort}/healthz`, undefined),
    );

    return { kubeconfig: kubeconfigs.admin, kubectl: bin.kubectl, nodes, dir, kubectlRun, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
