/**
 * The chart on a real API server and its controllers (lib/live-cluster.ts): the cluster in KUBECONFIG
 * when it is set, otherwise the project's own control plane, whose kwok nodes run no containers but
 * take scheduled pods to Running and Ready, Job pods to Succeeded. So what these tests prove is what
 * the API server, its admission and the controllers decide — every object accepted, Pod Security,
 * scheduling and spread, hooks, rollouts and revisions — not that the containers work: the dev
 * scenario's `helm test` makes a real request, and runs only on a real cluster.
 *
 * The image comes from PARLEY_IMAGE_REPOSITORY / PARLEY_IMAGE_TAG when a real cluster cannot pull the
 * default one (kwok pulls nothing).
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { connectLiveCluster, liveTarget, type LiveCluster } from '../lib/live-cluster.js';
import { chartDir, parseManifests } from '../lib/render.js';

const target = liveTarget();
const skipped = target.kind === 'none' ? ` (skipped: ${target.reason})` : '';
const release = 'parley';
// kwok's pods are Ready within seconds, and a pod that Pod Security refuses never comes: fail then,
// not after the minutes a real cluster may need to pull images.
const waitTimeout = target.kind === 'control plane' ? '--timeout=3m' : '--timeout=10m';
const image = [
  ...(process.env['PARLEY_IMAGE_REPOSITORY']
    ? ['--set', `image.repository=${process.env['PARLEY_IMAGE_REPOSITORY']}`]
    : []),
  ...(process.env['PARLEY_IMAGE_TAG'] ? ['--set', `image.tag=${process.env['PARLEY_IMAGE_TAG']}`] : []),
];

interface Pod {
  metadata: { name: string; uid: string; labels: Record<string, string>; deletionTimestamp?: string };
  spec: { nodeName?: string; containers: { image: string }[] };
  status: { phase: string; conditions?: { type: string; status: string }[] };
}
interface Node {
  metadata: { name: string; labels: Record<string, string> };
}
interface TopologySpreadConstraint {
  maxSkew: number;
  topologyKey: string;
  labelSelector: { matchLabels: Record<string, string> };
}
interface Workload {
  kind: 'Deployment' | 'StatefulSet';
  metadata: { name: string; annotations?: Record<string, string> };
  spec: {
    replicas: number;
    selector: { matchLabels: Record<string, string> };
    template: { spec: { topologySpreadConstraints?: TopologySpreadConstraint[] } };
  };
  status: { currentRevision?: string; updateRevision?: string; readyReplicas?: number };
}
interface ReplicaSet {
  metadata: {
    name: string;
    creationTimestamp: string;
    annotations: Record<string, string>;
    ownerReferences?: { name: string }[];
  };
  status: { replicas: number };
}

const selector = (labels: Record<string, string>) =>
  Object.entries(labels)
    .map(([key, value]) => `${key}=${value}`)
    .join(',');

/** Ready and staying: a rollout's old pods may still be Ready while they terminate. */
const isReady = (pod: Pod) =>
  !pod.metadata.deletionTimestamp &&
  pod.status.phase === 'Running' &&
  pod.status.conditions?.some((condition) => condition.type === 'Ready' && condition.status === 'True');

describe.skipIf(target.kind === 'none')(`live: the chart on a real control plane${skipped}`, () => {
  let cluster: LiveCluster;
  const namespaces: string[] = [];

  const kubectlJson = async <T>(args: string[]): Promise<T> =>
    JSON.parse(await cluster.kubectl([...args, '--output=json'])) as T;
  const items = async <T>(args: string[]) => (await kubectlJson<{ items: T[] }>(args)).items;

  /** A fresh namespace; `restricted`: Pod Security enforces its restricted profile there. */
  async function createNamespace(prefix: string, restricted: boolean): Promise<string> {
    const namespace = `${prefix}-${randomBytes(3).toString('hex')}`;
    await cluster.kubectl(['create', 'namespace', namespace]);
    namespaces.push(namespace);
    if (restricted)
      await cluster.kubectl([
        'label',
        'namespace',
        namespace,
        'pod-security.kubernetes.io/enforce=restricted',
        'pod-security.kubernetes.io/enforce-version=latest',
      ]);
    return namespace;
  }

  /** The Secret that `secrets.existingSecret: parley-credentials` names, made as docs/chart.md says. */
  async function createCredentials(namespace: string): Promise<void> {
    const password = () => randomBytes(24).toString('hex');
    const jwt = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    await cluster.kubectl([
      'create', 'secret', 'generic', 'parley-credentials', `--namespace=${namespace}`,
      `--from-literal=mysql-password=${password()}`,
      `--from-literal=mysql-migration-password=${password()}`,
      `--from-literal=mysql-root-password=${password()}`,
      `--from-literal=mysql-replication-password=${password()}`,
      `--from-literal=redis-password=${password()}`,
      `--from-literal=backup-encryption-key=${randomBytes(32).toString('hex')}`,
      `--from-literal=jwt-private-key=${jwt}`,
    ]); // prettier-ignore
  }

  /**
   * Runs helm; when it fails, the error also carries the namespace's warning events, which say what
   * an admission plugin refused or why a pod was not scheduled (helm says only that it timed out).
   */
  async function helmIn(namespace: string, args: string[]): Promise<string> {
    try {
      return await cluster.helm([...args, `--namespace=${namespace}`]);
    } catch (error) {
      const events = await cluster
        .kubectl([
          'get',
          'events',
          `--namespace=${namespace}`,
          '--field-selector=type=Warning',
          '--sort-by=.lastTimestamp',
        ])
        .catch((eventsError: unknown) => String(eventsError));
      throw new Error(`${(error as Error).message}\nwarning events in ${namespace}:\n${events}`);
    }
  }

  beforeAll(async () => {
    cluster = await connectLiveCluster(target);
  }, 120_000);

  afterAll(async () => {
    if (!cluster) return;
    if (cluster.kind === 'KUBECONFIG')
      for (const namespace of namespaces) {
        await cluster
          .helm(['uninstall', release, `--namespace=${namespace}`, '--wait', '--timeout=5m'])
          .catch(() => undefined);
        await cluster
          .kubectl(['delete', 'namespace', namespace, '--wait=false', '--ignore-not-found'])
          .catch(() => undefined);
      }
    await cluster.stop();
  }, 10 * 60_000);

  describe('the default scenario, in a namespace that enforces Pod Security restricted', () => {
    let namespace: string;
    const values = ['--values', `${chartDir}/ci/default-values.yaml`, ...image];
    /** The API's replicas after a scale-out by its HPA: more than its minimum and than api.replicas. */
    const scaledOut = 5;
    /** What install left running, to compare the upgrade and the rollback with. */
    const installed = {
      statefulSets: new Map<string, { currentRevision?: string; updateRevision?: string }>(),
      dataStorePods: new Map<string, string>(),
      replicaSets: new Map<string, string>(),
      apiImage: '',
    };

    const workloads = () => items<Workload>(['get', 'deployments,statefulsets', `--namespace=${namespace}`]);
    const pods = () => items<Pod>(['get', 'pods', `--namespace=${namespace}`]);
    async function podsOf(workload: Workload): Promise<Pod[]> {
      return items<Pod>([
        'get',
        'pods',
        `--namespace=${namespace}`,
        `--selector=${selector(workload.spec.selector.matchLabels)}`,
      ]);
    }
    /** The ReplicaSet a Deployment's current revision runs on. */
    async function currentReplicaSet(deployment: Workload): Promise<ReplicaSet> {
      const revision = deployment.metadata.annotations?.['deployment.kubernetes.io/revision'];
      const sets = await items<ReplicaSet>([
        'get', 'replicasets', `--namespace=${namespace}`, `--selector=${selector(deployment.spec.selector.matchLabels)}`,
      ]); // prettier-ignore
      const current = sets.find(
        (set) =>
          set.metadata.ownerReferences?.some((owner) => owner.name === deployment.metadata.name) &&
          set.metadata.annotations['deployment.kubernetes.io/revision'] === revision,
      );
      if (!current) throw new Error(`no ReplicaSet of ${deployment.metadata.name} at revision ${revision}`);
      return current;
    }
    const dataStores = async () => (await workloads()).filter((workload) => workload.kind === 'StatefulSet');

    beforeAll(async () => {
      namespace = await createNamespace('parley-live', true);
      await createCredentials(namespace);
    });

    it('refuses a pod there that the baseline profile admits and restricted does not (the control: Pod Security is on)', async () => {
      // No securityContext at all: nothing baseline forbids, four things restricted requires.
      const refused = cluster.kubectl([
        'run', 'plain', `--namespace=${namespace}`, '--image=busybox', '--restart=Never', '--dry-run=server',
      ]); // prettier-ignore
      await expect(refused).rejects.toThrow(
        /violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false .*runAsNonRoot != true.*seccompProfile/,
      );
    });

    it(
      'installs with --wait: every object accepted, every pod Ready, each workload at its replica count',
      async () => {
        await helmIn(namespace, ['install', release, chartDir, ...values, '--wait', waitTimeout]);

        const manifest = await helmIn(namespace, ['get', 'manifest', release]);
        const rendered = parseManifests(manifest);
        const live = await cluster.kubectl(
          ['get', '--filename=-', '--output=name', `--namespace=${namespace}`],
          manifest,
        );
        expect(live.trim().split('\n')).toHaveLength(rendered.length);

        const all = await workloads();
        expect(all.map((workload) => `${workload.kind}/${workload.metadata.name}`).sort()).toEqual([
          'Deployment/parley-api',
          'Deployment/parley-worker',
          'StatefulSet/parley-mysql-primary',
          'StatefulSet/parley-mysql-replica',
          'StatefulSet/parley-redis',
        ]);
        for (const workload of all) {
          const running = await podsOf(workload);
          expect(running.filter(isReady), `${workload.metadata.name}'s Ready pods`).toHaveLength(
            workload.spec.replicas,
          );
          expect(running, `${workload.metadata.name}'s pods`).toHaveLength(workload.spec.replicas);
        }
      },
      10 * 60_000,
    );

    it('spreads each workload across zones and nodes as its topology constraints and anti-affinity say', async () => {
      const nodes = await items<Node>(['get', 'nodes']);
      const zoneOf = new Map(
        nodes.map((node) => [node.metadata.name, node.metadata.labels['topology.kubernetes.io/zone']]),
      );
      const domains = (key: string) =>
        new Set(nodes.map((node) => node.metadata.labels[key]).filter(Boolean));
      expect(domains('topology.kubernetes.io/zone').size, 'zones in the cluster').toBeGreaterThanOrEqual(3);

      const spreadOver = (running: Pod[], key: string) => {
        const counts = new Map([...domains(key)].map((domain) => [domain, 0]));
        for (const pod of running) {
          const node = nodes.find((candidate) => candidate.metadata.name === pod.spec.nodeName)!;
          const domain = node.metadata.labels[key]!;
          counts.set(domain, (counts.get(domain) ?? 0) + 1);
        }
        return [...counts.values()];
      };

      let constrained = 0;
      for (const workload of await workloads()) {
        const running = await podsOf(workload);
        for (const constraint of workload.spec.template.spec.topologySpreadConstraints ?? []) {
          const counts = spreadOver(running, constraint.topologyKey);
          expect(
            Math.max(...counts) - Math.min(...counts),
            `${workload.metadata.name} over ${constraint.topologyKey}: ${counts.join(', ')}`,
          ).toBeLessThanOrEqual(constraint.maxSkew);
          constrained++;
        }
      }
      expect(constrained, 'topology spread constraints checked').toBeGreaterThanOrEqual(4);

      // Redis: one pod per node (required), and with as many zones as pods, one per zone (preferred):
      // losing a node or a zone takes one Redis, never a Sentinel quorum.
      const redis = (await workloads()).find((workload) => workload.metadata.name === 'parley-redis')!;
      const redisPods = await podsOf(redis);
      expect(new Set(redisPods.map((pod) => pod.spec.nodeName)).size).toBe(redisPods.length);
      expect(new Set(redisPods.map((pod) => zoneOf.get(pod.spec.nodeName!))).size).toBe(redisPods.length);
      // MySQL: the primary and its replicas on different nodes.
      const mysqlPods = (await pods()).filter(
        (pod) => pod.metadata.labels['app.kubernetes.io/database'] === 'mysql',
      );
      expect(mysqlPods).toHaveLength(3);
      expect(new Set(mysqlPods.map((pod) => pod.spec.nodeName)).size).toBe(mysqlPods.length);

      for (const statefulSet of await dataStores()) {
        installed.statefulSets.set(statefulSet.metadata.name, {
          currentRevision: statefulSet.status.currentRevision,
          updateRevision: statefulSet.status.updateRevision,
        });
        for (const pod of await podsOf(statefulSet))
          installed.dataStorePods.set(pod.metadata.name, pod.metadata.uid);
      }
      for (const deployment of (await workloads()).filter((workload) => workload.kind === 'Deployment'))
        installed.replicaSets.set(
          deployment.metadata.name,
          (await currentReplicaSet(deployment)).metadata.name,
        );
      const api = (await workloads()).find((workload) => workload.metadata.name === 'parley-api')!;
      installed.apiImage = (await podsOf(api))[0]!.spec.containers[0]!.image;
    });

    /** The Deployments ran a new ReplicaSet (whose pods are all Ready) since the install. */
    async function expectRolled(all: Workload[]): Promise<Pod[]> {
      const running: Pod[] = [];
      for (const deployment of all.filter((workload) => workload.kind === 'Deployment')) {
        const current = await currentReplicaSet(deployment);
        expect(current.metadata.name, `${deployment.metadata.name} rolled to a new ReplicaSet`).not.toBe(
          installed.replicaSets.get(deployment.metadata.name),
        );
        const ready = (await podsOf(deployment)).filter(isReady);
        expect(ready, `${deployment.metadata.name}'s Ready pods`).toHaveLength(deployment.spec.replicas);
        running.push(...ready);
      }
      return running;
    }

    /** MySQL and Redis: the controller revision and the very pods the install left. */
    async function expectDataStoresUntouched(all: Workload[]): Promise<void> {
      const statefulSets = all.filter((workload) => workload.kind === 'StatefulSet');
      expect(statefulSets).toHaveLength(installed.statefulSets.size);
      for (const statefulSet of statefulSets) {
        const { currentRevision, updateRevision } = statefulSet.status;
        expect(
          { currentRevision, updateRevision },
          `${statefulSet.metadata.name}'s controller revision`,
        ).toEqual(installed.statefulSets.get(statefulSet.metadata.name));
        for (const pod of await podsOf(statefulSet))
          expect(pod.metadata.uid, `${pod.metadata.name} was not recreated`).toBe(
            installed.dataStorePods.get(pod.metadata.name),
          );
      }
    }

    it(
      'upgrades the image tag and api.replicas: the API and worker roll, the API keeps the replicas its HPA set, MySQL and Redis keep their revision and pods',
      async () => {
        expect(installed.statefulSets.size, 'the install test recorded the data stores').toBe(3);
        // What the HPA does under load. api.replicas applies only with autoscaling off: an upgrade
        // that set it here would take the API back down to it in the middle of that load.
        await cluster.kubectl([
          'scale',
          'deployment/parley-api',
          `--namespace=${namespace}`,
          `--replicas=${scaledOut}`,
        ]);
        await helmIn(namespace, [
          'upgrade', release, chartDir, ...values, '--set=image.tag=0.1.1-live', '--set=api.replicas=4',
          '--wait', waitTimeout,
        ]); // prettier-ignore

        const all = await workloads();
        for (const pod of await expectRolled(all))
          expect(pod.spec.containers[0]!.image).toMatch(/:0\.1\.1-live$/);
        expect(all.find((workload) => workload.metadata.name === 'parley-api')!.spec.replicas).toBe(
          scaledOut,
        );
        await expectDataStoresUntouched(all);
      },
      10 * 60_000,
    );

    it(
      'upgrades to the next chart release: the API and worker roll, MySQL and Redis keep their revision and pods',
      async () => {
        expect(installed.statefulSets.size, 'the install test recorded the data stores').toBe(3);
        // The same chart with the next version and appVersion, as a release would publish it.
        const next = mkdtempSync(join(tmpdir(), 'parley-next-chart-'));
        try {
          cpSync(chartDir, next, { recursive: true });
          const chartYaml = join(next, 'Chart.yaml');
          const chart = parse(readFileSync(chartYaml, 'utf8')) as { version: string; appVersion: string };
          const bump = (version: string) => version.replace(/\d+$/, (patch) => String(Number(patch) + 1));
          writeFileSync(
            chartYaml,
            stringify({ ...chart, version: bump(chart.version), appVersion: bump(chart.appVersion) }),
          );
          await helmIn(namespace, ['upgrade', release, next, ...values, '--wait', waitTimeout]);
        } finally {
          rmSync(next, { recursive: true, force: true });
        }

        const all = await workloads();
        await expectRolled(all);
        await expectDataStoresUntouched(all);
      },
      10 * 60_000,
    );

    it(
      'rolls back to the installed revision: the API and worker return to their first ReplicaSet, MySQL and Redis stay',
      async () => {
        expect(installed.replicaSets.size, 'the install test recorded the Deployments').toBe(2);
        await helmIn(namespace, ['rollback', release, '1', '--wait', waitTimeout]);

        const history = JSON.parse(await helmIn(namespace, ['history', release, '--output=json'])) as {
          revision: number;
          status: string;
          description: string;
        }[];
        expect(history.at(-1)).toMatchObject({
          revision: 4,
          status: 'deployed',
          description: 'Rollback to 1',
        });

        const all = await workloads();
        for (const deployment of all.filter((workload) => workload.kind === 'Deployment')) {
          expect((await currentReplicaSet(deployment)).metadata.name).toBe(
            installed.replicaSets.get(deployment.metadata.name),
          );
          const running = (await podsOf(deployment)).filter(isReady);
          expect(running, `${deployment.metadata.name}'s Ready pods`).toHaveLength(deployment.spec.replicas);
        }
        const api = all.find((workload) => workload.metadata.name === 'parley-api')!;
        expect(api.spec.replicas).toBe(scaledOut);
        for (const pod of (await podsOf(api)).filter(isReady))
          expect(pod.spec.containers[0]!.image).toBe(installed.apiImage);
        await expectDataStoresUntouched(all);
      },
      10 * 60_000,
    );

    it(
      'migrates before the API rolls: the pre-upgrade Job completes before the new ReplicaSet exists',
      async () => {
        // Whole seconds, as the API server stamps events and objects.
        const startedAt = Math.floor(Date.now() / 1000) * 1000;
        await helmIn(namespace, [
          'upgrade', release, chartDir, ...values, '--set=image.tag=0.1.2-live', '--wait', waitTimeout,
        ]); // prettier-ignore
        // The Job itself is deleted once it succeeds (hook-succeeded); its controller's event stays.
        interface Event {
          reason: string;
          lastTimestamp?: string;
          eventTime?: string;
        }
        const completions =
          (await items<Event>([
            'get', 'events', `--namespace=${namespace}`,
            '--field-selector=involvedObject.kind=Job,involvedObject.name=parley-migrations,reason=Completed',
          ])) // prettier-ignore
            .map((event) => Date.parse(event.lastTimestamp ?? event.eventTime ?? ''))
            .filter((at) => at >= startedAt);
        expect(completions, 'the migrations Job completed during this upgrade').toHaveLength(1);
        const api = (await workloads()).find((workload) => workload.metadata.name === 'parley-api')!;
        const rolled = await currentReplicaSet(api);
        expect(rolled.metadata.name).not.toBe(installed.replicaSets.get('parley-api'));
        expect(Date.parse(rolled.metadata.creationTimestamp)).toBeGreaterThanOrEqual(completions[0]!);
      },
      10 * 60_000,
    );

    it(
      'refuses an upgrade that changes an immutable field (a StatefulSet volume size), and leaves the store as it was',
      async () => {
        const primary = async () =>
          kubectlJson<{
            spec: { volumeClaimTemplates: { spec: { resources: { requests: { storage: string } } } }[] };
          }>(['get', 'statefulset/parley-mysql-primary', `--namespace=${namespace}`, '--output=json']);
        const sizeOf = async () =>
          (await primary()).spec.volumeClaimTemplates[0]!.spec.resources.requests.storage;
        const before = await sizeOf();
        const failure = await helmIn(namespace, [
          'upgrade', release, chartDir, ...values, '--set=mysql.primary.persistence.size=40Gi',
          '--wait', waitTimeout,
        ]).then(() => '', (error: unknown) => String(error)); // prettier-ignore
        expect(failure).toMatch(
          /UPGRADE FAILED: StatefulSet\.apps "parley-mysql-primary" is invalid: spec\.volumeClaimTemplates: .*field is immutable/s,
        );
        expect(await sizeOf()).toBe(before);
        const history = JSON.parse(await helmIn(namespace, ['history', release, '--output=json'])) as {
          status: string;
        }[];
        expect(history.at(-1)!.status).toBe('failed');
        await expectDataStoresUntouched(await workloads());
      },
      10 * 60_000,
    );

    interface Budget {
      metadata: { name: string };
      spec: { selector: { matchLabels: Record<string, string> } };
      status: { disruptionsAllowed: number; currentHealthy: number; desiredHealthy: number };
    }
    const budgets = () => items<Budget>(['get', 'poddisruptionbudgets', `--namespace=${namespace}`]);
    /**
     * kwok deletes a terminating pod only when its grace period is over, as a kubelet would at worst:
     * 370 s for a worker. The evictions here shorten it, or a StatefulSet's replacement (same name)
     * and a drain would wait for it.
     */
    const gracePeriodSeconds = 5;
    /** POSTs an Eviction (policy/v1) for the pod, as `kubectl drain` does: the API server checks the PDB. */
    const evict = (pod: string) =>
      cluster.kubectl(
        ['create', '--raw', `/api/v1/namespaces/${namespace}/pods/${pod}/eviction`, '--filename=-'],
        JSON.stringify({
          apiVersion: 'policy/v1',
          kind: 'Eviction',
          metadata: { name: pod, namespace },
          deleteOptions: { gracePeriodSeconds },
        }),
      );
    async function untilAllReady(): Promise<void> {
      const deadline = Date.now() + 90_000;
      for (;;) {
        const notReady: string[] = [];
        for (const workload of await workloads()) {
          const ready = (await podsOf(workload)).filter(isReady);
          if (ready.length !== workload.spec.replicas) notReady.push(workload.metadata.name);
        }
        if (notReady.length === 0) return;
        if (Date.now() > deadline) throw new Error(`not all pods Ready after 90 s: ${notReady.join(', ')}`);
        await new Promise((resolve) => setTimeout(resolve, 1_000));
      }
    }

    it(
      'refuses (429) each eviction that would break a PodDisruptionBudget, exactly when its disruptionsAllowed is 0',
      async () => {
        await untilAllReady();
        const nodes = (await items<Node>(['get', 'nodes'])).map((node) => node.metadata.name);
        // With every node cordoned no evicted pod is replaced, so a budget spent stays spent: on kwok
        // a replacement is Ready within a second and would race the next eviction.
        for (const node of nodes) await cluster.kubectl(['cordon', node]);
        try {
          const all = await budgets();
          expect(all.map((budget) => budget.metadata.name).sort()).toEqual([
            'parley-api',
            'parley-mysql-replica',
            'parley-redis',
            'parley-worker',
          ]);
          for (const budget of all) {
            const allowedAtStart = budget.status.disruptionsAllowed;
            expect(
              allowedAtStart,
              `${budget.metadata.name} allows a disruption when all is Ready`,
            ).toBeGreaterThan(0);
            const candidates =
              (await items<Pod>([
                'get', 'pods', `--namespace=${namespace}`, `--selector=${selector(budget.spec.selector.matchLabels)}`,
              ])) // prettier-ignore
                .filter(isReady);
            let evicted = 0;
            for (const pod of candidates) {
              const current = await kubectlJson<Budget>([
                'get', 'poddisruptionbudget', budget.metadata.name, `--namespace=${namespace}`,
              ]); // prettier-ignore
              const allowed = current.status.disruptionsAllowed;
              const outcome = await evict(pod.metadata.name).then(
                () => 'evicted',
                (error: unknown) => String(error),
              );
              if (allowed > 0) {
                expect(outcome, `${pod.metadata.name} with ${budget.metadata.name} allowing ${allowed}`).toBe(
                  'evicted',
                );
                evicted++;
              } else {
                expect(outcome).toMatch(/TooManyRequests|429/);
                expect(outcome).toMatch(/would violate the pod's disruption budget/);
                break;
              }
            }
            expect(evicted, `evictions ${budget.metadata.name} let through`).toBe(allowedAtStart);
          }
        } finally {
          for (const node of nodes) await cluster.kubectl(['uncordon', node]);
        }
        await untilAllReady();
      },
      3 * 60_000,
    );

    it(
      'drains a node holding chart pods: drain retries the refused evictions until the replacements are Ready elsewhere',
      async () => {
        const running = await pods();
        const perNode = new Map<string, number>();
        for (const pod of running)
          if (pod.spec.nodeName) perNode.set(pod.spec.nodeName, (perNode.get(pod.spec.nodeName) ?? 0) + 1);
        const [node, held] = [...perNode].sort((a, b) => b[1] - a[1])[0]!;
        expect(held, `chart pods on ${node}`).toBeGreaterThan(1);
        try {
          await cluster.kubectl([
            'drain', node, '--ignore-daemonsets', '--delete-emptydir-data', `--grace-period=${gracePeriodSeconds}`,
            '--timeout=100s',
          ]); // prettier-ignore
          const left = (await pods()).filter(
            (pod) => pod.spec.nodeName === node && !pod.metadata.deletionTimestamp,
          );
          expect(
            left.map((pod) => pod.metadata.name),
            `pods left on ${node}`,
          ).toEqual([]);
        } finally {
          await cluster.kubectl(['uncordon', node]);
        }
        await untilAllReady();
      },
      3 * 60_000,
    );
  });

  describe.skipIf(target.kind !== 'KUBECONFIG')(
    `the dev scenario${target.kind === 'KUBECONFIG' ? '' : ' (skipped: helm test makes a real request, which needs the containers of a real cluster in KUBECONFIG)'}`,
    () => {
      it(
        'installs, becomes ready, passes helm test and uninstalls',
        async () => {
          const namespace = await createNamespace('parley-k8s-tests', false);
          await helmIn(namespace, [
            'install', release, chartDir, '--values', `${chartDir}/ci/dev-values.yaml`, ...image,
            '--wait', '--timeout=15m',
          ]); // prettier-ignore
          const output = await helmIn(namespace, ['test', release, '--timeout=5m', '--logs']);
          expect(output).toMatch(/Phase:\s+Succeeded/);
        },
        30 * 60_000,
      );
    },
  );
});
