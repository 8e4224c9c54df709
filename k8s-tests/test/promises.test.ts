/**
 * The chart's promises, checked on the real `helm template` output of every scenario.
 */
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  allContainers,
  byKind,
  component,
  container,
  envOf,
  find,
  isHook,
  matches,
  scenarioFile,
  scenarios,
  spec,
  workload,
  workloads,
  type Container,
  type EnvVar,
  type Workload,
} from '../lib/objects.js';
import {
  allowed,
  dnsAllowed,
  egressAllowed,
  egressToCidr,
  isolated,
  reachableFromNamespace,
} from '../lib/network-policy.js';
import { chartDir, renderChart, renderChartText, type K8sObject } from '../lib/render.js';
import { repoRoot } from '../scripts/kube-tools.js';
import { serviceSource } from '../lib/service-source.js';
import { loadConfig } from '../../service/src/config.js';

const renders = new Map<string, K8sObject[]>();
beforeAll(async () => {
  await Promise.all(scenarios.map(async (s) => renders.set(s, await renderChart([scenarioFile(s)]))));
});
const render = (scenario: string): K8sObject[] => renders.get(scenario)!;
const annotations = (obj: K8sObject): Record<string, string> => obj.metadata.annotations ?? {};
const labelsOf = (componentName: string): Record<string, string> => ({
  'app.kubernetes.io/name': 'parley',
  'app.kubernetes.io/instance': 'parley',
  'app.kubernetes.io/component': componentName,
});
const longRunning = (w: Workload): boolean => w.object.kind !== 'Job' && w.object.kind !== 'Pod';

describe('least-connections entry, never session affinity', () => {
  it('nginx-inc: the Ingress asks F5 NGINX for least_conn and keeps WebSockets open', () => {
    const ingress = find(render('default'), 'Ingress', 'parley-api');
    expect(annotations(ingress)).toMatchObject({
      'nginx.org/lb-method': 'least_conn',
      'nginx.org/websocket-services': 'parley-api',
      'nginx.org/proxy-read-timeout': '3600s',
      'nginx.org/proxy-send-timeout': '3600s',
    });
    expect(spec<{ ingressClassName: string }>(ingress).ingressClassName).toBe('nginx');
  });

  it('haproxy: the Ingress asks HAProxy for leastconn, and nothing the controller would ignore', () => {
    const ingress = find(render('haproxy'), 'Ingress', 'parley-api');
    expect(annotations(ingress)).toMatchObject({ 'haproxy.org/load-balance': 'leastconn' });
    // timeout-tunnel is a key of the controller's ConfigMap only: as an Ingress annotation it does nothing.
    expect(annotations(ingress)['haproxy.org/timeout-tunnel']).toBeUndefined();
    expect(Object.keys(annotations(ingress)).some((key) => key.startsWith('nginx.'))).toBe(false);
  });

  it('gateway: an HTTPRoute to the API and an Envoy BackendTrafficPolicy with LeastRequest on it', () => {
    const objects = render('gateway');
    const route = find(objects, 'HTTPRoute', 'parley-api');
    const routeSpec = spec<{ rules: { backendRefs: { name: string; port: number }[] }[] }>(route);
    expect(routeSpec.rules.length).toBeGreaterThan(0);
    for (const rule of routeSpec.rules) expect(rule.backendRefs).toEqual([{ name: 'parley-api', port: 80 }]);
    const policy = find(objects, 'BackendTrafficPolicy', 'parley-api');
    const policySpec = spec<Record<string, unknown>>(policy);
    expect(policySpec['loadBalancer']).toEqual({ type: 'LeastRequest' });
    expect(policySpec['targetRefs']).toEqual([
      { group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', name: 'parley-api' },
    ]);
    expect(byKind(objects, 'Ingress')).toHaveLength(0);
  });

  it('TLS comes from cert-manager or a named secret', () => {
    const nginx = find(render('default'), 'Ingress', 'parley-api');
    expect(annotations(nginx)['cert-manager.io/cluster-issuer']).toBe('letsencrypt');
    expect(spec<{ tls: unknown }>(nginx).tls).toEqual([
      { hosts: ['chat.example.com'], secretName: 'parley-tls' },
    ]);
    const haproxy = find(render('haproxy'), 'Ingress', 'parley-api');
    expect(spec<{ tls: unknown }>(haproxy).tls).toEqual([
      { hosts: ['chat.example.org'], secretName: 'chat-example-org-tls' },
    ]);
  });

  it.each(scenarios)('%s: no Service, Ingress or route asks for session affinity', (scenario) => {
    for (const obj of render(scenario)) {
      if (obj.kind === 'Service')
        expect(spec<{ sessionAffinity?: string }>(obj).sessionAffinity ?? 'None').toBe('None');
      for (const key of Object.keys(annotations(obj))) expect(key).not.toMatch(/sticky|affinity|cookie/i);
      if (obj.kind === 'BackendTrafficPolicy') {
        const lb = spec<{ loadBalancer: Record<string, unknown> }>(obj).loadBalancer;
        expect(lb['consistentHash']).toBeUndefined();
        expect(spec<Record<string, unknown>>(obj)['sessionPersistence']).toBeUndefined();
      }
      if (obj.kind === 'HTTPRoute') expect(JSON.stringify(obj)).not.toContain('sessionPersistence');
    }
  });

  it('the API Service says sessionAffinity None explicitly', () => {
    expect(
      spec<{ sessionAffinity: string }>(find(render('default'), 'Service', 'parley-api')).sessionAffinity,
    ).toBe('None');
  });
});

describe('idle sockets through the edge', () => {
  type Rule = {
    name?: string;
    matches: { path: { type: string; value: string } }[];
    timeouts?: { request?: string };
    backendRefs: unknown[];
  };
  type TrafficPolicy = {
    targetRefs: { group: string; kind: string; name: string; sectionName?: string }[];
    loadBalancer?: unknown;
    timeout?: { http?: { connectionIdleTimeout?: string; streamIdleTimeout?: string } };
  };
  const seconds = (duration: string): number => {
    const match = /^(\d+)s$/.exec(duration);
    if (!match) throw new Error(`not a duration in seconds: ${duration}`);
    return Number(match[1]);
  };
  const heartbeatSeconds = (objects: K8sObject[]): number =>
    Number(
      envOf(container(workload(objects, 'Deployment', 'parley-api').spec, 'api')).get(
        'REALTIME_HEARTBEAT_MS',
      )!.value,
    ) / 1000;
  const socketRule = (objects: K8sObject[]): Rule => {
    const rules = spec<{ rules: Rule[] }>(find(objects, 'HTTPRoute', 'parley-api')).rules;
    const rule = rules.find((r) =>
      r.matches.some((m) => m.path.type === 'Exact' && m.path.value === '/v1/ws'),
    );
    expect(rule, 'a rule for /v1/ws').toBeDefined();
    return rule!;
  };
  /** The BackendTrafficPolicy Envoy Gateway applies to the /v1/ws rule: the one naming that rule. */
  const socketPolicy = (objects: K8sObject[]): TrafficPolicy => {
    const name = socketRule(objects).name;
    expect(name, 'the /v1/ws rule has a name a policy can target').toBeDefined();
    const policies = byKind(objects, 'BackendTrafficPolicy')
      .map((obj) => spec<TrafficPolicy>(obj))
      .filter((p) => p.targetRefs.some((ref) => ref.kind === 'HTTPRoute' && ref.sectionName === name));
    expect(policies, `one BackendTrafficPolicy on rule ${name}`).toHaveLength(1);
    return policies[0]!;
  };
  /** `timeout tunnel <n>s` of the HAProxy backend, from the Ingress's backend config snippet. */
  const tunnelTimeout = (ingress: K8sObject): number => {
    const snippet = annotations(ingress)['haproxy.org/backend-config-snippet'] ?? '';
    const match = /^timeout tunnel (\d+s)$/m.exec(snippet);
    expect(match, `timeout tunnel in ${JSON.stringify(snippet)}`).not.toBeNull();
    return seconds(match![1]!);
  };

  /** How long each edge object the scenario renders lets a socket sit idle, in seconds. */
  const idleTimeouts = (objects: K8sObject[]): Record<string, number> => {
    const found: Record<string, number> = {};
    for (const ingress of byKind(objects, 'Ingress')) {
      const nginx = annotations(ingress);
      if (nginx['nginx.org/lb-method']) {
        found['nginx read'] = seconds(nginx['nginx.org/proxy-read-timeout']!);
        found['nginx send'] = seconds(nginx['nginx.org/proxy-send-timeout']!);
      } else {
        found['haproxy timeout tunnel'] = tunnelTimeout(ingress);
      }
    }
    if (byKind(objects, 'HTTPRoute').length > 0)
      found['envoy stream idle timeout'] = seconds(socketPolicy(objects).timeout!.http!.streamIdleTimeout!);
    return found;
  };

  it.each(scenarios)('%s: every edge lets a socket idle for at least two heartbeats', (scenario) => {
    const beat = heartbeatSeconds(render(scenario));
    for (const [edge, timeout] of Object.entries(idleTimeouts(render(scenario))))
      expect(timeout, edge).toBeGreaterThanOrEqual(2 * beat);
  });

  it('the scenarios cover every edge', () => {
    const edges = new Set(scenarios.flatMap((scenario) => Object.keys(idleTimeouts(render(scenario)))));
    expect([...edges].sort()).toEqual([
      'envoy stream idle timeout',
      'haproxy timeout tunnel',
      'nginx read',
      'nginx send',
    ]);
  });

  it.each([
    ['default', 'ingress.websocketTimeoutSeconds', ['nginx read', 'nginx send']],
    ['haproxy', 'ingress.websocketTimeoutSeconds', ['haproxy timeout tunnel']],
    ['gateway', 'gateway.websocketTimeoutSeconds', ['envoy stream idle timeout']],
  ] as const)(
    '%s: a quiet socket lives exactly %s through the edge, shorter or longer than an hour',
    async (scenario, value, edges) => {
      for (const timeout of [600, 5400]) {
        const objects = await renderChart([scenarioFile(scenario)], { [value]: String(timeout) });
        expect(idleTimeouts(objects)).toEqual(Object.fromEntries(edges.map((edge) => [edge, timeout])));
      }
    },
  );

  it("haproxy: the operator's own backend snippet follows timeout tunnel", async () => {
    const objects = await renderChart([scenarioFile('haproxy')], {
      'ingress.annotations.haproxy\\.org/backend-config-snippet': 'option forwardfor',
    });
    expect(annotations(find(objects, 'Ingress', 'parley-api'))['haproxy.org/backend-config-snippet']).toBe(
      'timeout tunnel 3600s\noption forwardfor',
    );
  });

  it('gateway: /v1/ws is a named rule whose own policy bounds idle sockets; the rest keeps Envoy\u2019s defaults', () => {
    const objects = render('gateway');
    const rules = spec<{ rules: Rule[] }>(find(objects, 'HTTPRoute', 'parley-api')).rules;
    // A route timeout starts only once the whole request is in, which an open WebSocket never is:
    // it would bound nothing, so the rule sets none.
    expect(socketRule(objects).timeouts).toBeUndefined();
    expect(socketPolicy(objects)).toEqual({
      targetRefs: [
        {
          group: 'gateway.networking.k8s.io',
          kind: 'HTTPRoute',
          name: 'parley-api',
          sectionName: 'websocket',
        },
      ],
      // A rule's own policy replaces the route's: it repeats least-request balancing.
      loadBalancer: { type: 'LeastRequest' },
      timeout: { http: { connectionIdleTimeout: '3600s', streamIdleTimeout: '3600s' } },
    });
    const rest = rules.filter((r) => r !== socketRule(objects));
    expect(rest.map((r) => r.matches)).toEqual([[{ path: { type: 'PathPrefix', value: '/' } }]]);
    expect(rest[0]!.timeouts).toBeUndefined();
    // Upstream pool idleness only: HTTP requests keep Envoy's stream idle timeout.
    const policy = spec<{ timeout: unknown }>(find(objects, 'BackendTrafficPolicy', 'parley-api'));
    expect(policy.timeout).toEqual({ http: { connectionIdleTimeout: '3600s' } });
  });

  it('a heartbeat of exactly half the idle timeout renders on both edges', async () => {
    for (const [scenario, timeout] of [
      ['default', 'ingress.websocketTimeoutSeconds'],
      ['gateway', 'gateway.websocketTimeoutSeconds'],
    ] as const) {
      const objects = await renderChart([scenarioFile(scenario)], {
        'config.realtime.heartbeatMs': '90000',
        [timeout]: '180',
      });
      expect(heartbeatSeconds(objects)).toBe(90);
    }
  });
});

describe('availability: HPA, PDB, topology spread, graceful drain', () => {
  it('the API autoscales 3–10 on CPU and memory with a scale-down behaviour', () => {
    const hpa = spec<Record<string, unknown>>(
      find(render('default'), 'HorizontalPodAutoscaler', 'parley-api'),
    );
    expect(hpa).toMatchObject({
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'parley-api' },
      minReplicas: 3,
      maxReplicas: 10,
    });
    const metrics = (hpa['metrics'] as { resource: { name: string } }[]).map((m) => m.resource.name);
    expect(metrics).toEqual(['cpu', 'memory']);
    expect(hpa['behavior']).toMatchObject({ scaleDown: { stabilizationWindowSeconds: 300 } });
    expect(
      spec<Record<string, unknown>>(find(render('default'), 'Deployment', 'parley-api'))['replicas'],
    ).toBe(undefined);
  });

  it.each(scenarios)(
    '%s: every workload that can run more than one pod has a PDB and a scaler or fixed count',
    (scenario) => {
      const objects = render(scenario);
      const pdbs = byKind(objects, 'PodDisruptionBudget').map(
        (pdb) => spec<{ selector: { matchLabels: Record<string, string> } }>(pdb).selector.matchLabels,
      );
      for (const w of workloads(objects).filter(longRunning)) {
        const name = w.object.metadata.name;
        const hpa = byKind(objects, 'HorizontalPodAutoscaler').find(
          (h) => spec<{ scaleTargetRef: { name: string } }>(h).scaleTargetRef.name === name,
        );
        const scaled = byKind(objects, 'ScaledObject').find(
          (s) => spec<{ scaleTargetRef: { name: string } }>(s).scaleTargetRef.name === name,
        );
        const replicas = spec<{ replicas?: number }>(w.object).replicas;
        const multi = Boolean(hpa ?? scaled) || (replicas ?? 1) > 1;
        if (['api', 'worker'].includes(component(w)) && multi)
          expect(hpa ?? scaled, `${name} scaler`).toBeDefined();
        if (multi)
          expect(
            pdbs.some((selector) => matches(selector, w.labels)),
            `${name} PDB`,
          ).toBe(true);
      }
    },
  );

  it('API and worker spread across zones and nodes', () => {
    for (const name of ['parley-api', 'parley-worker']) {
      const { spec: pod, labels } = workload(render('default'), 'Deployment', name);
      const keys = (pod.topologySpreadConstraints ?? []).map((c) => c.topologyKey);
      expect(keys).toEqual(['topology.kubernetes.io/zone', 'kubernetes.io/hostname']);
      for (const c of pod.topologySpreadConstraints!)
        expect(matches(c.labelSelector.matchLabels, labels)).toBe(true);
    }
  });

  // main-api.ts drains HTTP (SHUTDOWN_GRACE_MS) and sockets (spread over REALTIME_DRAIN_WINDOW_MS,
  // each then given CLOSE_HANDSHAKE_MS) together: the drain is the longer of the two.
  const CLOSE_HANDSHAKE_MS = 5_000;
  const apiShutdown = (objects: K8sObject[]) => {
    const { spec: pod } = workload(objects, 'Deployment', 'parley-api');
    const api = container(pod, 'api');
    const env = envOf(api);
    const httpMs = Number(env.get('SHUTDOWN_GRACE_MS')!.value);
    const socketsMs = Number(env.get('REALTIME_DRAIN_WINDOW_MS')!.value) + CLOSE_HANDSHAKE_MS;
    return {
      pause: api.lifecycle?.preStop?.sleep?.seconds ?? 0,
      drainSeconds: Math.max(httpMs, socketsMs) / 1000,
      graceSeconds: pod.terminationGracePeriodSeconds!,
    };
  };

  it('the service still drains HTTP and sockets in parallel, with a 5 s close handshake', () => {
    const source = serviceSource();
    expect(source).toContain('const CLOSE_HANDSHAKE_MS = 5_000;');
    expect(source).toMatch(
      /Promise\.all\(\[gateway\.drain\(drainWindowMs\), api\.close\(config\.shutdownGraceMs\)\]\)/,
    );
  });

  it.each(scenarios)(
    '%s: the API grace period covers the preStop pause plus the in-app drain, sockets included',
    (scenario) => {
      const { pause, drainSeconds, graceSeconds } = apiShutdown(render(scenario));
      expect(pause).toBeGreaterThan(0);
      expect(graceSeconds).toBeGreaterThan(pause + drainSeconds);
    },
  );

  it('defaults: 10 s pause + max(25 s HTTP, 10 s window + 5 s handshake) = 35 s, 10 s inside the 45 s grace', () => {
    expect(apiShutdown(render('default'))).toEqual({ pause: 10, drainSeconds: 25, graceSeconds: 45 });
  });

  it('a drain window that fits beside the HTTP grace renders: the two run in parallel, not in turn', async () => {
    // 20 s + 5 s = the 25 s HTTP grace: their sum (50 s) would not fit in 45 s, the longer does.
    const objects = await renderChart([scenarioFile('default')], {
      'config.realtime.drainWindowMs': '20000',
    });
    expect(apiShutdown(objects)).toEqual({ pause: 10, drainSeconds: 25, graceSeconds: 45 });
  });

  it('a longer drain window renders once the grace period exceeds it, and not at the bound', async () => {
    const set = { 'config.realtime.drainWindowMs': '40000' };
    const objects = await renderChart([scenarioFile('default')], {
      ...set,
      'api.terminationGracePeriodSeconds': '56',
    });
    expect(apiShutdown(objects)).toEqual({ pause: 10, drainSeconds: 45, graceSeconds: 56 });
    await expect(
      renderChart([scenarioFile('default')], { ...set, 'api.terminationGracePeriodSeconds': '55' }),
    ).rejects.toThrow('api.terminationGracePeriodSeconds (55) must exceed');
  });

  // The job workers wait the longest job and take up to 5 s more to hand back what still runs; the
  // replication heartbeat (with a replica), S3 client, job queues, Redis, MySQL and management server
  // closes take at most 10 s each; the process exits within 1 s of the last: 5 + 6 × 10 + 1.
  const WORKER_CLOSE_MARGIN_SECONDS = 66;

  it("the margin counts every close the worker registers, each at the lifecycle's bound", () => {
    const read = (file: string): string => readFileSync(join(repoRoot, 'service', 'src', file), 'utf8');
    const workerPath = ['main-worker.ts', 'worker.ts', 'platform/dependencies.ts'].map(read).join('\n');
    const closes = new Map(
      [...workerPath.matchAll(/lifecycle\.register(?:Last)?\(\s*'([^']+)',([\s\S]*?)\);/g)].map(
        ([, name, rest]) => [name!, rest!],
      ),
    );
    expect([...closes.keys()].sort()).toEqual(
      [
        'job queues',
        'job workers',
        'management server',
        'mysql',
        'redis',
        'replication heartbeat',
        's3 client',
      ].sort(),
    );
    // Only the job workers pass a bound of their own: the grace, plus the hand-back.
    for (const [name, rest] of closes) expect(rest.includes('timeoutMs'), name).toBe(name === 'job workers');
    expect(closes.get('job workers')).toMatch(/timeoutMs: config\.worker\.shutdownGraceMs \+ 5_000,/);
    const lifecycle = read('platform/lifecycle.ts');
    expect(lifecycle).toContain('const DEFAULT_CLOSE_TIMEOUT_MS = 10_000;');
    expect(lifecycle).toContain('setTimeout(() => process.exit(code), 1_000)');
    expect(5 + (closes.size - 1) * 10 + 1).toBe(WORKER_CLOSE_MARGIN_SECONDS);
  });

  it('the worker grace period covers the longest job plus the closes after it', () => {
    const { spec: pod } = workload(render('default'), 'Deployment', 'parley-worker');
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(300 + WORKER_CLOSE_MARGIN_SECONDS);
  });

  it('a worker grace period of exactly longestJobSeconds + the margin renders', async () => {
    const objects = await renderChart([scenarioFile('default')], {
      'worker.longestJobSeconds': '100',
      'worker.terminationGracePeriodSeconds': String(100 + WORKER_CLOSE_MARGIN_SECONDS),
    });
    const { waitMs, graceSeconds } = workerWait(objects);
    expect(waitMs).toBe(100_000);
    expect(graceSeconds).toBe(100 + WORKER_CLOSE_MARGIN_SECONDS);
  });

  // worker.close() waits WORKER_SHUTDOWN_GRACE_MS for running jobs; SIGKILL must not cut it short.
  const workerWait = (objects: K8sObject[]): { waitMs: number; graceSeconds: number } => {
    const { spec: pod } = workload(objects, 'Deployment', 'parley-worker');
    const value = envOf(container(pod, 'worker')).get('WORKER_SHUTDOWN_GRACE_MS')?.value;
    expect(value, 'WORKER_SHUTDOWN_GRACE_MS').toMatch(/^[1-9][0-9]*$/);
    return { waitMs: Number(value), graceSeconds: pod.terminationGracePeriodSeconds! };
  };

  it.each(scenarios)(
    '%s: the worker waits worker.longestJobSeconds × 1000 ms, its grace period covers that plus the margin',
    (scenario) => {
      type Values = { worker?: { longestJobSeconds?: number } };
      const values = (file: string): Values => parse(readFileSync(join(chartDir, file), 'utf8')) as Values;
      const longestJobSeconds =
        values(scenarioFile(scenario)).worker?.longestJobSeconds ??
        values('values.yaml').worker!.longestJobSeconds!;
      const { waitMs, graceSeconds } = workerWait(render(scenario));
      expect(waitMs).toBe(longestJobSeconds * 1000);
      expect(graceSeconds).toBeGreaterThanOrEqual(longestJobSeconds + WORKER_CLOSE_MARGIN_SECONDS);
    },
  );

  it('WORKER_SHUTDOWN_GRACE_MS follows worker.longestJobSeconds, and only the worker gets it', async () => {
    const objects = await renderChart([scenarioFile('default')], {
      'worker.longestJobSeconds': '900',
      'worker.terminationGracePeriodSeconds': '970',
    });
    const { waitMs, graceSeconds } = workerWait(objects);
    expect(waitMs).toBe(900_000);
    expect(graceSeconds).toBeGreaterThanOrEqual(900 + WORKER_CLOSE_MARGIN_SECONDS);
    for (const w of workloads(objects).filter((w) => component(w) !== 'worker'))
      for (const c of allContainers(w.spec))
        expect(envOf(c).has('WORKER_SHUTDOWN_GRACE_MS'), `${w.object.metadata.name}/${c.name}`).toBe(false);
  });

  it('keda: the worker scales on queue depth from Prometheus, with no competing HPA', () => {
    const objects = render('keda');
    const scaled = spec<Record<string, unknown>>(find(objects, 'ScaledObject', 'parley-worker'));
    expect(scaled).toMatchObject({
      scaleTargetRef: { name: 'parley-worker' },
      minReplicaCount: 2,
      maxReplicaCount: 30,
    });
    const [trigger] = scaled['triggers'] as { type: string; metadata: Record<string, string> }[];
    expect(trigger!.type).toBe('prometheus');
    expect(trigger!.metadata['query']).toContain('parley_queue_jobs');
    expect(Number(trigger!.metadata['threshold'])).toBeGreaterThan(0);
    const hpas = byKind(objects, 'HorizontalPodAutoscaler').map((h) => h.metadata.name);
    expect(hpas).toEqual(['parley-api']);
  });
});

describe('pods: probes, resources, Pod Security "restricted"', () => {
  const restricted = (w: Workload, c: Container): void => {
    const pod = w.spec.securityContext ?? {};
    const sc = c.securityContext ?? {};
    const where = `${w.object.kind}/${w.object.metadata.name}/${c.name}`;
    expect(sc['allowPrivilegeEscalation'], where).toBe(false);
    expect(sc['privileged'] ?? false, where).toBe(false);
    expect((sc['capabilities'] as { drop?: string[] })?.drop, where).toEqual(['ALL']);
    expect((sc['capabilities'] as { add?: string[] })?.add ?? [], where).toEqual([]);
    expect(sc['runAsNonRoot'] ?? pod['runAsNonRoot'], where).toBe(true);
    expect(sc['runAsUser'] ?? pod['runAsUser'], where).not.toBe(0);
    const seccomp = (sc['seccompProfile'] ?? pod['seccompProfile']) as { type: string } | undefined;
    expect(['RuntimeDefault', 'Localhost'], where).toContain(seccomp?.type);
    expect(sc['readOnlyRootFilesystem'], where).toBe(true);
  };

  it.each(scenarios)('%s: every container is restricted, has requests and a memory limit', (scenario) => {
    for (const w of workloads(render(scenario))) {
      expect(w.spec.hostNetwork ?? false).toBe(false);
      expect(w.spec.hostPID ?? false).toBe(false);
      expect(w.spec.hostIPC ?? false).toBe(false);
      expect(w.spec.automountServiceAccountToken).toBe(false);
      for (const volume of w.spec.volumes ?? []) {
        const types = Object.keys(volume).filter((key) => key !== 'name');
        expect([
          'configMap',
          'secret',
          'emptyDir',
          'persistentVolumeClaim',
          'projected',
          'downwardAPI',
        ]).toEqual(expect.arrayContaining(types));
      }
      for (const c of allContainers(w.spec)) {
        restricted(w, c);
        expect(c.resources?.requests?.['cpu'], c.name).toBeDefined();
        expect(c.resources?.requests?.['memory'], c.name).toBeDefined();
        expect(c.resources?.limits?.['memory'], c.name).toBeDefined();
      }
    }
  });

  it.each(scenarios)('%s: every long-running container has liveness and readiness probes', (scenario) => {
    for (const w of workloads(render(scenario)).filter(longRunning)) {
      for (const c of w.spec.containers) {
        expect(c.livenessProbe, `${w.object.metadata.name}/${c.name}`).toBeDefined();
        expect(c.readinessProbe, `${w.object.metadata.name}/${c.name}`).toBeDefined();
      }
    }
  });

  it('API and worker probe /livez and /readyz on their health ports (the API: its management port)', () => {
    const objects = render('default');
    const api = container(workload(objects, 'Deployment', 'parley-api').spec, 'api');
    // The management port stays open while the API port drains, so probes see the drain honestly.
    expect(api.startupProbe!.httpGet).toEqual({ path: '/livez', port: 'management' });
    expect(api.livenessProbe!.httpGet).toEqual({ path: '/livez', port: 'management' });
    expect(api.readinessProbe!.httpGet).toEqual({ path: '/readyz', port: 'management' });
    expect(api.ports).toEqual([
      { name: 'http', containerPort: 3000, protocol: 'TCP' },
      { name: 'management', containerPort: 9464, protocol: 'TCP' },
    ]);
    expect(envOf(api).get('MANAGEMENT_PORT')!.value).toBe('9464');
    const worker = container(workload(objects, 'Deployment', 'parley-worker').spec, 'worker');
    expect(worker.livenessProbe!.httpGet).toEqual({ path: '/livez', port: 'health' });
    expect(worker.readinessProbe!.httpGet).toEqual({ path: '/readyz', port: 'health' });
    expect(worker.ports).toEqual([{ name: 'health', containerPort: 3001, protocol: 'TCP' }]);
  });
});

describe('the API process', () => {
  it('sizes V8’s young generation itself: 16 MB semi-spaces, within a tenth of its memory limit', () => {
    const api = container(workload(render('default'), 'Deployment', 'parley-api').spec, 'api');
    // Left to Node, a 512Mi limit gives 1 MB semi-spaces, which halved the cached read (docs/benchmarks.md).
    expect(envOf(api).get('NODE_OPTIONS')!.value).toBe('--max-semi-space-size=16');
    const limitMiB = Number(/^(\d+)Mi$/.exec(String(api.resources!.limits!.memory))![1]);
    // Two semi-spaces and the young large-object space: three times the semi-space, at most.
    expect(3 * 16).toBeLessThan(limitMiB / 10);
  });

  it('leaves V8’s heap to Node when nodeOptions is empty', async () => {
    const objects = await renderChart([scenarioFile('default')], { 'api.nodeOptions': '' });
    const api = container(workload(objects, 'Deployment', 'parley-api').spec, 'api');
    expect(envOf(api).has('NODE_OPTIONS')).toBe(false);
  });
});

describe('the live connection (REALTIME_*)', () => {
  type Bounds = { minimum: number; maximum: number };
  const realtimeSchema = (
    JSON.parse(readFileSync(join(chartDir, 'values.schema.json'), 'utf8')) as {
      properties: { config: { properties: { realtime: { properties: Record<string, Bounds> } } } };
    }
  ).properties.config.properties.realtime.properties;
  // config.realtime.<value> → the variable the service reads (service/src/config.ts, RealtimeSettings).
  const variables: Record<string, string> = {
    allowedOrigins: 'REALTIME_ALLOWED_ORIGINS',
    heartbeatMs: 'REALTIME_HEARTBEAT_MS',
    maxFrameBytes: 'REALTIME_MAX_FRAME_BYTES',
    maxFramesPerSecond: 'REALTIME_MAX_FRAMES_PER_SECOND',
    maxSubscriptions: 'REALTIME_MAX_SUBSCRIPTIONS',
    maxSocketsPerUser: 'REALTIME_MAX_SOCKETS_PER_USER',
    maxBufferedBytes: 'REALTIME_MAX_BUFFERED_BYTES',
    resumeMaxMessages: 'REALTIME_RESUME_MAX_MESSAGES',
    resumeMaxAgeSeconds: 'REALTIME_RESUME_MAX_AGE_SECONDS',
    drainWindowMs: 'REALTIME_DRAIN_WINDOW_MS',
    ticketTtlSeconds: 'REALTIME_TICKET_TTL_SECONDS',
  };
  const numeric = Object.keys(variables).filter((key) => key !== 'allowedOrigins');
  const apiEnv = (objects: K8sObject[]): Map<string, EnvVar> =>
    envOf(container(workload(objects, 'Deployment', 'parley-api').spec, 'api'));
  const origins = (objects: K8sObject[]): string | undefined =>
    apiEnv(objects).get('REALTIME_ALLOWED_ORIGINS')?.value;

  // What the API process would parse: the rendered plain values, and a signing key in place of the
  // Secret's files, which exist only in the pod.
  const signingKey = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' });
  const parsedByService = (env: Map<string, EnvVar>, overrides: Record<string, string> = {}) => {
    const plain = Object.fromEntries(
      [...env.values()]
        .filter((e) => e.value !== undefined && !e.name.endsWith('_FILE'))
        .map((e) => [e.name, e.value]),
    );
    return loadConfig({ ...plain, JWT_PRIVATE_KEY: signingKey.toString(), ...overrides }, 'api');
  };

  it.each(scenarios)(
    '%s: the API gets every REALTIME_* variable; the worker and migrations none',
    (scenario) => {
      const objects = render(scenario);
      const env = apiEnv(objects);
      for (const variable of Object.values(variables)) expect(env.has(variable), variable).toBe(true);
      for (const w of workloads(objects).filter((w) => component(w) !== 'api'))
        for (const c of allContainers(w.spec))
          for (const name of envOf(c).keys())
            expect(name, `${w.object.metadata.name}/${c.name}`).not.toMatch(/^REALTIME_/);
    },
  );

  it("the service's own config parser reads the rendered values as values.yaml states them", () => {
    const defaults = (
      parse(readFileSync(join(chartDir, 'values.yaml'), 'utf8')) as {
        config: { realtime: Record<string, unknown> };
      }
    ).config.realtime;
    const { realtime } = parsedByService(apiEnv(render('default')));
    for (const key of numeric) expect(realtime[key as keyof typeof realtime], key).toBe(defaults[key]);
    expect(realtime.allowedOrigins).toEqual(['https://chat.example.com']);
  });

  it("the schema's bounds are the service's: both ends render and parse, one step beyond fails both", async () => {
    for (const end of ['minimum', 'maximum'] as const) {
      const at = Object.fromEntries(numeric.map((key) => [key, realtimeSchema[key]![end]]));
      const objects = await renderChart(
        [scenarioFile('default')],
        Object.fromEntries(numeric.map((key) => [`config.realtime.${key}`, String(at[key])])),
        // The grace period must cover the longest drain window the service accepts, and the
        // Ingress's idle timeout two of its longest heartbeats.
        {
          extraArgs: [
            '--set',
            'api.terminationGracePeriodSeconds=3700',
            '--set',
            'ingress.websocketTimeoutSeconds=7200',
          ],
        },
      );
      const { realtime } = parsedByService(apiEnv(objects));
      for (const key of numeric)
        expect(realtime[key as keyof typeof realtime], `${key} ${end}`).toBe(at[key]);

      const step = end === 'minimum' ? -1 : 1;
      const beyond = Object.fromEntries(
        numeric.map((key) => [variables[key]!, String(realtimeSchema[key]![end] + step)]),
      );
      const problems = (() => {
        try {
          parsedByService(apiEnv(objects), beyond);
          return [];
        } catch (error) {
          return (error as { problems: string[] }).problems;
        }
      })();
      for (const key of numeric)
        expect(
          problems.some((p) => p.startsWith(`${variables[key]!}:`)),
          `service refuses ${key} ${end} ${step}`,
        ).toBe(true);
      const refusal = await renderChartText(
        [scenarioFile('default')],
        Object.fromEntries(numeric.map((key) => [`config.realtime.${key}`, beyond[variables[key]!]!])),
      ).then(
        () => '',
        (error: Error) => error.message,
      );
      for (const key of numeric)
        expect(refusal, `helm refuses ${key} ${end} ${step}`).toContain(`'/config/realtime/${key}'`);
    }
  });

  it('allows the origin of the public host the chart routes to, and none without a route', () => {
    expect(origins(render('default'))).toBe('https://chat.example.com');
    expect(origins(render('haproxy'))).toBe('https://chat.example.org');
    expect(origins(render('gateway'))).toBe('https://chat.example.com');
    expect(origins(render('dev'))).toBe('');
  });

  it('a Gateway: one origin per hostname, wildcards (which name no origin) left out', async () => {
    const objects = await renderChart(
      [scenarioFile('gateway')],
      {},
      {
        extraArgs: [
          '--set-json',
          'gateway.hostnames=["chat.example.com","*.example.com","talk.example.net"]',
        ],
      },
    );
    expect(origins(objects)).toBe('https://chat.example.com,https://talk.example.net');
  });

  it('an explicit list replaces the default, and [] refuses every browser even behind an Ingress', async () => {
    const listed = await renderChart(
      [scenarioFile('default')],
      {},
      {
        extraArgs: [
          '--set-json',
          'config.realtime.allowedOrigins=["https://app.example.com","http://localhost:5173"]',
        ],
      },
    );
    expect(origins(listed)).toBe('https://app.example.com,http://localhost:5173');
    expect(parsedByService(apiEnv(listed)).realtime.allowedOrigins).toEqual([
      'https://app.example.com',
      'http://localhost:5173',
    ]);
    const none = await renderChart(
      [scenarioFile('default')],
      {},
      {
        extraArgs: ['--set-json', 'config.realtime.allowedOrigins=[]'],
      },
    );
    expect(origins(none)).toBe('');
    expect(parsedByService(apiEnv(none)).realtime.allowedOrigins).toEqual([]);
  });
});

describe('images', () => {
  const pinned = /^[^@\s]+(@sha256:[a-f0-9]{64}|:(?!latest$)[A-Za-z0-9_][A-Za-z0-9_.-]*\d[A-Za-z0-9_.-]*)$/;

  it.each(scenarios)('%s: every image is digest-pinned or an exact, non-latest tag', (scenario) => {
    for (const w of workloads(render(scenario))) {
      for (const c of allContainers(w.spec))
        expect(c.image, `${w.object.metadata.name}/${c.name}`).toMatch(pinned);
    }
  });

  it('uses the official redis and mysql 8.4 images, never Bitnami', () => {
    const images = workloads(render('default')).flatMap((w) => allContainers(w.spec).map((c) => c.image));
    expect(images.filter((i) => i.startsWith('redis:'))).not.toHaveLength(0);
    expect(images.filter((i) => /^mysql:8\.4\.\d+$/.test(i))).not.toHaveLength(0);
    expect(images.join(' ')).not.toMatch(/bitnami/);
  });

  it('a digest, when given, replaces the tag', async () => {
    const digest = `sha256:${'ab'.repeat(32)}`;
    const objects = await renderChart([scenarioFile('dev')], {
      'image.digest': digest,
      'redis.image.digest': digest,
      'mysql.image.digest': digest,
      'minio.image.digest': digest,
    });
    const images = new Set(workloads(objects).flatMap((w) => allContainers(w.spec).map((c) => c.image)));
    expect([...images].sort()).toEqual([
      `ghcr.io/parley-chat/parley@${digest}`,
      `minio/minio@${digest}`,
      `mysql@${digest}`,
      `redis@${digest}`,
    ]);
  });
});

describe('configuration and credentials', () => {
  const requiredEnv = [
    'NODE_ENV',
    'LOG_LEVEL',
    'INSTANCE_ID',
    'HOST',
    'PORT',
    'WORKER_HEALTH_PORT',
    'BODY_LIMIT_BYTES',
    'SHUTDOWN_GRACE_MS',
    'READINESS_TIMEOUT_MS',
    'MYSQL_HOST',
    'MYSQL_PORT',
    'MYSQL_DATABASE',
    'MYSQL_USER',
    'MYSQL_PASSWORD_FILE',
    'MYSQL_POOL_SIZE',
    'S3_REGION',
    'S3_FORCE_PATH_STYLE',
    'S3_ATTACHMENTS_BUCKET',
    'S3_BACKUPS_BUCKET',
    'JWT_PRIVATE_KEY_FILE',
    'MANAGEMENT_PORT',
    'JWT_ISSUER',
    'ACCESS_TOKEN_TTL_SECONDS',
    'REFRESH_TOKEN_TTL_SECONDS',
    'RATE_LIMIT_AUTH',
    'RATE_LIMIT_API',
    'RATE_LIMIT_UPLOAD',
    'TRUSTED_PROXY_HOPS',
  ];
  // The service's secret variables (config.ts): each may only arrive as a file from a Secret.
  const secretVariables = [
    'MYSQL_PASSWORD',
    'MYSQL_MIGRATION_PASSWORD',
    'REDIS_PASSWORD',
    'REDIS_SENTINEL_PASSWORD',
    'S3_SECRET_ACCESS_KEY',
    'JWT_PRIVATE_KEY',
  ];

  it.each(scenarios)(
    '%s: API and worker get the service contract, INSTANCE_ID from the pod name',
    (scenario) => {
      for (const name of ['parley-api', 'parley-worker']) {
        const c = workload(render(scenario), 'Deployment', name).spec.containers[0]!;
        const env = envOf(c);
        for (const variable of requiredEnv) expect(env.has(variable), `${name} ${variable}`).toBe(true);
        expect(env.get('INSTANCE_ID')!.valueFrom).toEqual({ fieldRef: { fieldPath: 'metadata.name' } });
        expect(env.has('REDIS_URL') !== env.has('REDIS_SENTINELS'), 'exactly one Redis mode').toBe(true);
      }
    },
  );

  it.each(scenarios)(
    '%s: no credential in plain text: secrets are files from a read-only Secret volume',
    (scenario) => {
      for (const w of workloads(render(scenario))) {
        for (const c of allContainers(w.spec)) {
          for (const e of c.env ?? []) {
            if (/PASSWORD|SECRET|PRIVATE_KEY|ENCRYPTION_KEY/.test(e.name) && !e.name.endsWith('_FILE')) {
              expect(e.value, `${c.name} ${e.name}`).toBeUndefined();
              expect(e.valueFrom?.secretKeyRef, `${c.name} ${e.name}`).toBeDefined();
            }
            if (secretVariables.includes(e.name.replace(/_FILE$/, ''))) {
              expect(e.name, 'a secret comes as a file').toMatch(/_FILE$/);
              const mount = (c.volumeMounts ?? []).find((m) => e.value!.startsWith(`${m.mountPath}/`));
              expect(mount, `${c.name} ${e.name} is mounted`).toBeDefined();
              expect(mount!.readOnly).toBe(true);
              const volume = (w.spec.volumes ?? []).find((v) => v['name'] === mount!.name);
              expect(volume?.['secret'], `${c.name} ${e.name} comes from a Secret`).toBeDefined();
            }
          }
        }
      }
      for (const cm of byKind(render(scenario), 'ConfigMap')) {
        expect(JSON.stringify(cm['data'])).not.toMatch(
          /BEGIN (EC |ED25519 )?PRIVATE KEY|password\s*[:=]\s*\w/i,
        );
      }
    },
  );

  it.each(scenarios)('%s: only the worker is handed the backup key, as a file', (scenario) => {
    for (const w of workloads(render(scenario))) {
      for (const c of allContainers(w.spec)) {
        const env = envOf(c);
        if (w.object.metadata.name === 'parley-worker') {
          expect(env.get('BACKUP_ENCRYPTION_KEY_FILE')?.value).toBe(
            '/var/run/secrets/parley-backup/encryption-key',
          );
          expect(c.volumeMounts).toContainEqual({
            name: 'backup-key',
            mountPath: '/var/run/secrets/parley-backup',
            readOnly: true,
          });
        } else {
          for (const name of env.keys())
            expect(name, `${w.object.metadata.name}/${c.name}`).not.toMatch(/^BACKUP_/);
          expect((w.spec.volumes ?? []).map((v) => v['name'])).not.toContain('backup-key');
        }
      }
    }
  });

  it('with secrets.existingSecret the chart renders no Secret of its own', () => {
    for (const scenario of ['default', 'gateway', 'haproxy', 'external-data', 'keda']) {
      expect(byKind(render(scenario), 'Secret').map((s) => s.metadata.name)).toEqual([]);
      const volumes = workload(render(scenario), 'Deployment', 'parley-api').spec.volumes!;
      expect(volumes.find((v) => v['name'] === 'secrets')!['secret']).toMatchObject({
        secretName: 'parley-credentials',
      });
    }
  });

  it('a generated Secret is kept across upgrades and uninstall and holds every key', () => {
    const secret = find(render('dev'), 'Secret', 'parley');
    expect(annotations(secret)['helm.sh/resource-policy']).toBe('keep');
    expect(Object.keys(secret['data'] as object).sort()).toEqual([
      'backup-encryption-key',
      'jwt-private-key',
      'mysql-migration-password',
      'mysql-password',
      'mysql-replication-password',
      'mysql-root-password',
      'redis-password',
    ]);
    const pem = Buffer.from(
      (secret['data'] as Record<string, string>)['jwt-private-key']!,
      'base64',
    ).toString();
    expect(pem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
  });

  it('a generated backup passphrase is long and random, and the worker reads it from that Secret', () => {
    const objects = render('dev');
    const secret = find(objects, 'Secret', 'parley');
    const passphrase = Buffer.from(
      (secret['data'] as Record<string, string>)['backup-encryption-key']!,
      'base64',
    ).toString();
    expect(passphrase).toMatch(/^[A-Za-z0-9]{48}$/);
    const volume = workload(objects, 'Deployment', 'parley-worker').spec.volumes!.find(
      (v) => v['name'] === 'backup-key',
    );
    expect(volume!['secret']).toMatchObject({
      secretName: 'parley',
      items: [{ key: 'backup-encryption-key', path: 'encryption-key' }],
    });
  });

  it('the migrations Job is a hook with its own credentials, before upgrades and after the in-cluster DB exists', () => {
    const inCluster = find(render('default'), 'Job', 'parley-migrations');
    expect(annotations(inCluster)['helm.sh/hook']).toBe('post-install,pre-upgrade');
    const external = find(render('external-data'), 'Job', 'parley-migrations');
    expect(annotations(external)['helm.sh/hook']).toBe('pre-install,pre-upgrade');
    const job = workload(render('external-data'), 'Job', 'parley-migrations');
    // A pre-install hook runs before the release's own ServiceAccount exists.
    expect(job.spec.serviceAccountName).toBe('default');
    const migrate = job.spec.containers[0]!;
    expect(migrate.command).toEqual(['node', 'dist/db/migrate.js']);
    const env = envOf(migrate);
    expect(env.get('MYSQL_MIGRATION_USER')!.value).toBe('parley_migrator');
    expect(env.get('MYSQL_MIGRATION_PASSWORD_FILE')!.value).toBe(
      '/var/run/secrets/parley/mysql-migration-password',
    );
    // It reads only NODE_ENV, LOG_LEVEL, INSTANCE_ID and MYSQL_*, and sees only the two DB passwords.
    for (const name of env.keys()) expect(name).toMatch(/^(NODE_ENV|LOG_LEVEL|INSTANCE_ID|MYSQL_\w+)$/);
    const jobSecret = job.spec.volumes!.find((v) => v['name'] === 'secrets')!['secret'] as {
      items: { key: string }[];
    };
    expect(jobSecret.items.map((i) => i.key)).toEqual(['mysql-password', 'mysql-migration-password']);
    const api = workload(render('default'), 'Deployment', 'parley-api');
    const items = (
      api.spec.volumes!.find((v) => v['name'] === 'secrets')!['secret'] as { items: { key: string }[] }
    ).items.map((i) => i.key);
    expect(items).not.toContain('mysql-migration-password');
    expect(items).not.toContain('mysql-root-password');
  });

  it('trusts one proxy hop behind an Ingress or Gateway, none without', () => {
    const hops = (scenario: string): string | undefined =>
      envOf(workload(render(scenario), 'Deployment', 'parley-api').spec.containers[0]!).get(
        'TRUSTED_PROXY_HOPS',
      )!.value;
    expect(hops('default')).toBe('1');
    expect(hops('gateway')).toBe('1');
    expect(hops('dev')).toBe('0');
  });

  it('S3: IRSA through the ServiceAccount annotation, no static keys', () => {
    const objects = render('external-data');
    const sa = find(objects, 'ServiceAccount', 'parley');
    expect(annotations(sa)['eks.amazonaws.com/role-arn']).toBe(
      'arn:aws:iam::123456789012:role/parley-service',
    );
    const env = envOf(workload(objects, 'Deployment', 'parley-api').spec.containers[0]!);
    expect(env.has('S3_ACCESS_KEY_ID')).toBe(false);
    expect(env.get('S3_ATTACHMENTS_BUCKET')!.value).toBe('parley-prod-attachments');
    expect(env.get('S3_REGION')!.value).toBe('eu-west-1');
  });

  it('S3: static keys from s3.existingSecret, the secret key as a file', async () => {
    const objects = await renderChart([scenarioFile('default')], { 's3.existingSecret': 'parley-s3' });
    const env = envOf(workload(objects, 'Deployment', 'parley-api').spec.containers[0]!);
    expect(env.get('S3_ACCESS_KEY_ID')!.valueFrom).toEqual({
      secretKeyRef: { name: 'parley-s3', key: 'access-key-id' },
    });
    expect(env.get('S3_SECRET_ACCESS_KEY_FILE')!.value).toBe('/var/run/secrets/parley-s3/secret-access-key');
  });

  it('dev: MinIO in the cluster, path-style S3, one replica of everything', () => {
    const objects = render('dev');
    const env = envOf(workload(objects, 'Deployment', 'parley-api').spec.containers[0]!);
    expect(env.get('S3_ENDPOINT')!.value).toBe('http://parley-minio:9000');
    expect(env.get('S3_FORCE_PATH_STYLE')!.value).toBe('true');
    for (const name of ['parley-api', 'parley-worker']) {
      expect(spec<{ replicas: number }>(find(objects, 'Deployment', name)).replicas).toBe(1);
    }
    expect(byKind(objects, 'HorizontalPodAutoscaler')).toHaveLength(0);
    expect(
      byKind(objects, 'StatefulSet')
        .map((s) => s.metadata.name)
        .sort(),
    ).toEqual(['parley-mysql-primary', 'parley-redis']);
  });
});

describe('Redis with Sentinel', () => {
  it('one StatefulSet of redis + sentinel with anti-affinity, auth from the Secret, a PDB', () => {
    const objects = render('default');
    const redis = workload(objects, 'StatefulSet', 'parley-redis');
    expect(redis.spec.containers.map((c) => c.name)).toEqual(['redis', 'sentinel']);
    expect(spec<{ replicas: number }>(redis.object).replicas).toBe(3);
    const anti = JSON.stringify(redis.spec.affinity);
    expect(anti).toContain('requiredDuringSchedulingIgnoredDuringExecution');
    expect(anti).toContain('kubernetes.io/hostname');
    const secretVolume = redis.spec.volumes!.find((v) => v['name'] === 'secrets')!['secret'];
    expect(secretVolume).toMatchObject({
      secretName: 'parley-credentials',
      items: [{ key: 'redis-password' }],
    });
    const pdb = find(objects, 'PodDisruptionBudget', 'parley-redis');
    expect(spec<{ maxUnavailable: number }>(pdb).maxUnavailable).toBe(1);
  });

  it('configures noeviction, AOF and password auth for redis and sentinel', () => {
    const script = (find(render('default'), 'ConfigMap', 'parley-redis')['data'] as Record<string, string>)[
      'start.sh'
    ]!;
    expect(script).toMatch(/^maxmemory-policy noeviction$/m);
    expect(script).toMatch(/^appendonly yes$/m);
    expect(script).toMatch(/^requirepass \$\{PASSWORD\}$/m);
    expect(script).toMatch(/^sentinel auth-pass \$\{MASTER_NAME\} \$\{PASSWORD\}$/m);
    expect(script).toMatch(/sentinel get-master-addr-by-name/);
  });

  it('hands the master role over before the pod stops, its Sentinel kept up meanwhile', () => {
    const objects = render('default');
    const pod = workload(objects, 'StatefulSet', 'parley-redis').spec;
    const redis = container(pod, 'redis');
    const sentinel = container(pod, 'sentinel');
    expect(redis.lifecycle?.preStop?.exec?.command).toEqual(['sh', '/scripts/prestop.sh']);
    // SIGTERM reaches both containers at once: the redis hook may still need this Sentinel.
    expect(sentinel.lifecycle?.preStop?.exec?.command).toEqual(['sh', '/scripts/sentinel-prestop.sh']);
    expect(sentinel.volumeMounts).toContainEqual({ name: 'scripts', mountPath: '/scripts', readOnly: true });
    const scripts = find(objects, 'ConfigMap', 'parley-redis')['data'] as Record<string, string>;
    expect(scripts['prestop.sh']).toMatch(/sentinel failover "\$MASTER_NAME"/);
    expect(scripts['sentinel-prestop.sh']).toMatch(/role/);
    // The peers' Sentinels, by the names the hook builds.
    expect(envOf(redis).get('STATEFULSET')!.value).toBe('parley-redis');
    expect(envOf(redis).get('HEADLESS')!.value).toBe('parley-redis-headless');
    expect(envOf(redis).get('REPLICAS')!.value).toBe('3');
    // Each hook ends within FAILOVER_WAIT_SECONDS (the redis one within a few bounded calls more);
    // then a master's SIGTERM may wait shutdown-timeout (10 s) for its replicas.
    for (const c of [redis, sentinel]) {
      const wait = Number(envOf(c).get('FAILOVER_WAIT_SECONDS')!.value);
      expect(wait).toBe(20);
      expect(pod.terminationGracePeriodSeconds, c.name).toBeGreaterThanOrEqual(wait + 10 + 6);
    }
  });

  it.each([
    [1, 1],
    [3, 2],
    [5, 3],
    [5, 4],
  ])('renders %i Sentinels with a quorum of %i', async (replicas, quorum) => {
    const objects = await renderChart([scenarioFile('default')], {
      'redis.replicas': String(replicas),
      'redis.sentinel.quorum': String(quorum),
    });
    expect(spec<{ replicas: number }>(find(objects, 'StatefulSet', 'parley-redis')).replicas).toBe(replicas);
  });

  // Under noeviction a full Redis refuses writes with a clear error; past the container limit it
  // would be OOMKilled instead. A quarter of the limit is left for forks, buffers and fragmentation.
  it.each([
    [{}, String(384 * 2 ** 20)],
    [{ 'redis.resources.limits.memory': '2Gi' }, String(1.5 * 2 ** 30)],
    [{ 'redis.resources.limits.memory': '1.5Gi' }, String(1.125 * 2 ** 30)],
    [{ 'redis.resources.limits.memory': '1G' }, '750000000'],
    [{ 'redis.resources.limits.memory': '800Ki' }, String(600 * 1024)],
    [{ 'redis.resources.limits.memory': '1000000' }, '750000'],
    [{ 'redis.maxmemory': '300mb' }, '300mb'],
    [{ 'redis.maxmemory': '104857600' }, '104857600'],
  ])('gives Redis a maxmemory under its container memory limit: %o', async (values, maxmemory) => {
    const objects = await renderChart([scenarioFile('default')], values);
    const init = workload(objects, 'StatefulSet', 'parley-redis').spec.initContainers!;
    expect(envOf(container({ containers: init }, 'config')).get('MAXMEMORY')!.value).toBe(maxmemory);
  });

  it('the app finds the master through every Sentinel', () => {
    const env = envOf(workload(render('default'), 'Deployment', 'parley-api').spec.containers[0]!);
    expect(env.get('REDIS_SENTINELS')!.value).toBe(
      [0, 1, 2].map((i) => `parley-redis-${i}.parley-redis-headless.parley.svc:26379`).join(','),
    );
    expect(env.get('REDIS_SENTINEL_MASTER')!.value).toBe('mymaster');
  });

  it('external: a URL (ElastiCache) or external Sentinels, and no in-cluster Redis', () => {
    const url = envOf(workload(render('external-data'), 'Deployment', 'parley-api').spec.containers[0]!);
    expect(url.get('REDIS_URL')!.value).toBe('rediss://parley.abc123.euw1.cache.amazonaws.com:6379');
    const sentinels = envOf(workload(render('keda'), 'Deployment', 'parley-api').spec.containers[0]!);
    expect(sentinels.get('REDIS_SENTINELS')!.value).toContain('redis-sentinel-0.redis.data.svc:26379');
    expect(sentinels.get('REDIS_SENTINEL_MASTER')!.value).toBe('parley');
    for (const scenario of ['external-data', 'keda']) {
      expect(byKind(render(scenario), 'StatefulSet')).toHaveLength(0);
    }
  });
});

describe('MySQL 8.4 primary + read replicas', () => {
  it('primary and replica StatefulSets on persistent volumes, GTID replication', () => {
    const objects = render('default');
    const primary = find(objects, 'StatefulSet', 'parley-mysql-primary');
    const replica = find(objects, 'StatefulSet', 'parley-mysql-replica');
    expect(spec<{ replicas: number }>(primary).replicas).toBe(1);
    expect(spec<{ replicas: number }>(replica).replicas).toBe(2);
    for (const sts of [primary, replica]) {
      expect(spec<{ volumeClaimTemplates: unknown[] }>(sts).volumeClaimTemplates).toHaveLength(1);
    }
    const data = find(objects, 'ConfigMap', 'parley-mysql')['data'] as Record<string, string>;
    expect(data['common.cnf']).toMatch(/^gtid_mode=ON$/m);
    expect(data['common.cnf']).toMatch(/^enforce_gtid_consistency=ON$/m);
    expect(data['primary-init.sh']).toMatch(/GRANT SELECT, INSERT, UPDATE, DELETE ON/);
    // Only the primary initialises its data directory through the image's entrypoint; replicas
    // arrive seeded (below).
    const initScripts = (role: string): (string | undefined)[] =>
      container(workload(objects, 'StatefulSet', `parley-mysql-${role}`).spec, 'mysql')
        .volumeMounts!.filter((m) => m.mountPath.startsWith('/docker-entrypoint-initdb.d/'))
        .map((m) => m.subPath);
    expect(initScripts('primary')).toEqual(['primary-init.sh']);
    expect(initScripts('replica')).toEqual([]);
  });

  it('the primary and the replicas load the clone plugin, so an empty replica can be cloned from the primary', () => {
    const data = find(render('default'), 'ConfigMap', 'parley-mysql')['data'] as Record<string, string>;
    expect(data['common.cnf']).toMatch(/^plugin-load-add=mysql_clone\.so$/m);
    for (const role of ['primary', 'replica']) {
      const volumes = workload(render('default'), 'StatefulSet', `parley-mysql-${role}`).spec.volumes!;
      const config = volumes.find((v) => v['name'] === 'config') as {
        configMap: { items: { key: string }[] };
      };
      expect(config.configMap.items.map((i) => i.key)).toContain('common.cnf');
    }
  });

  it("a replica seeds an empty data directory by CLONE in an init container, with the main container's image, config, volumes and limits", () => {
    const objects = render('default');
    const pod = workload(objects, 'StatefulSet', 'parley-mysql-replica').spec;
    expect(pod.initContainers!.map((c) => c.name)).toEqual(['config', 'seed']);
    const seed = container(pod, 'seed');
    const mysql = container(pod, 'mysql');
    expect(seed.image).toBe(mysql.image);
    expect(seed.command).toEqual(['sh', '/config/replica-seed.sh']);
    expect(envOf(seed).get('PARLEY_PRIMARY_HOST')!.value).toBe('parley-mysql');
    expect(seed.securityContext).toEqual(mysql.securityContext);
    expect(seed.securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
    });
    // mysqld runs there with the pool sized for the main container: the same memory.
    expect(seed.resources).toEqual(mysql.resources);
    const mountsOf = (c: Container) =>
      Object.fromEntries(
        c.volumeMounts!.map((m) => [m.mountPath, { name: m.name, readOnly: m.readOnly ?? false }]),
      );
    expect(mountsOf(seed)).toEqual({
      '/var/lib/mysql': { name: 'data', readOnly: false },
      '/etc/mysql/conf.d': { name: 'conf-d', readOnly: true },
      '/tmp': { name: 'tmp', readOnly: false },
      '/var/lib/mysql-files': { name: 'mysql-files', readOnly: false },
      '/config': { name: 'config', readOnly: true },
      '/var/run/secrets/parley': { name: 'secrets', readOnly: true },
    });
    const volumes = pod.volumes!;
    const config = volumes.find((v) => v['name'] === 'config') as { configMap: { items: { key: string }[] } };
    expect(config.configMap.items.map((i) => i.key)).toContain('replica-seed.sh');
    const secrets = volumes.find((v) => v['name'] === 'secrets') as { secret: { items: { key: string }[] } };
    expect(secrets.secret.items.map((i) => i.key).sort()).toEqual([
      'mysql-replication-password',
      'mysql-root-password',
    ]);
    const data = find(objects, 'ConfigMap', 'parley-mysql')['data'] as Record<string, string>;
    expect(data['replica-init.sh']).toBeUndefined();
  });

  it('a writer Service on the primary and a reader Service on the replicas', () => {
    const objects = render('default');
    const writer = spec<{ selector: Record<string, string> }>(
      find(objects, 'Service', 'parley-mysql'),
    ).selector;
    const reader = spec<{ selector: Record<string, string> }>(
      find(objects, 'Service', 'parley-mysql-read'),
    ).selector;
    expect(writer['app.kubernetes.io/component']).toBe('mysql-primary');
    expect(reader['app.kubernetes.io/component']).toBe('mysql-replica');
    const env = envOf(workload(objects, 'Deployment', 'parley-api').spec.containers[0]!);
    expect(env.get('MYSQL_HOST')!.value).toBe('parley-mysql');
    expect(env.get('MYSQL_REPLICA_HOST')!.value).toBe('parley-mysql-read');
    expect(
      spec<{ maxUnavailable: number }>(find(objects, 'PodDisruptionBudget', 'parley-mysql-replica'))
        .maxUnavailable,
    ).toBe(1);
  });

  describe('the InnoDB buffer pool is sized from the container memory limit', () => {
    const mysqlCnf = (objects: K8sObject[], role: 'primary' | 'replica'): string =>
      (find(objects, 'ConfigMap', 'parley-mysql')['data'] as Record<string, string>)[`${role}.cnf`]!;
    const pool = (cnf: string): { size: number; instances: number } => ({
      size: Number(/^innodb_buffer_pool_size=(\d+)$/m.exec(cnf)?.[1]),
      instances: Number(/^innodb_buffer_pool_instances=(\d+)$/m.exec(cnf)?.[1]),
    });
    const GiB = 1024 ** 3;
    const MiB = 1024 ** 2;

    it('half of the 2Gi limit for the primary and the replicas by default, in the file each role loads', () => {
      const objects = render('default');
      expect(pool(mysqlCnf(objects, 'primary'))).toEqual({ size: GiB, instances: 1 });
      expect(pool(mysqlCnf(objects, 'replica'))).toEqual({ size: GiB, instances: 1 });
      for (const role of ['primary', 'replica'] as const) {
        const volumes = workload(objects, 'StatefulSet', `parley-mysql-${role}`).spec.volumes!;
        const config = volumes.find((v) => v['name'] === 'config') as {
          configMap: { items: { key: string }[] };
        };
        expect(config.configMap.items.map((i) => i.key)).toContain(`${role}.cnf`);
      }
    });

    it('half of a 1Gi limit in the dev scenario', () => {
      expect(pool(mysqlCnf(render('dev'), 'primary'))).toEqual({ size: 512 * MiB, instances: 1 });
    });

    // InnoDB rounds the pool up to whole chunks (128 MiB) times instances, past the limit if the
    // chart did not round down itself; one instance per GiB, at most 8.
    it.each([
      ['3000M', 11 * 128 * MiB, 1],
      ['1.5Gi', 6 * 128 * MiB, 1],
      ['5Gi', 2.5 * GiB, 2],
      ['8Gi', 4 * GiB, 4],
      ['64Gi', 32 * GiB, 8],
      ['2147483648', GiB, 1],
    ])('a %s limit gives a pool of %d bytes in %d instances', async (limit, size, instances) => {
      const objects = await renderChart([scenarioFile('default')], {
        'mysql.primary.resources.limits.memory': limit,
        'mysql.replicas.resources.limits.memory': limit,
      });
      expect(pool(mysqlCnf(objects, 'primary'))).toEqual({ size, instances });
      expect(pool(mysqlCnf(objects, 'replica'))).toEqual({ size, instances });
    });

    it('an explicit innodbBufferPoolSize wins over the limit, per role', async () => {
      const objects = await renderChart([scenarioFile('default')], {
        'mysql.primary.innodbBufferPoolSize': '1536Mi',
        'mysql.replicas.innodbBufferPoolSize': '3Gi',
      });
      expect(pool(mysqlCnf(objects, 'primary'))).toEqual({ size: 1536 * MiB, instances: 1 });
      expect(pool(mysqlCnf(objects, 'replica'))).toEqual({ size: 3 * GiB, instances: 3 });
    });
  });

  it('external: writer and reader endpoints over verified TLS, no in-cluster MySQL', () => {
    for (const [kind, name] of [
      ['Deployment', 'parley-api'],
      ['Deployment', 'parley-worker'],
      ['Job', 'parley-migrations'],
    ] as const) {
      const w = workload(render('external-data'), kind, name);
      const c = w.spec.containers[0]!;
      const env = envOf(c);
      expect(env.get('MYSQL_HOST')!.value).toBe('parley.cluster-abc123.eu-west-1.rds.amazonaws.com');
      expect(env.get('MYSQL_REPLICA_HOST')!.value).toBe(
        'parley.cluster-ro-abc123.eu-west-1.rds.amazonaws.com',
      );
      expect(env.get('MYSQL_TLS')!.value).toBe('true');
      expect(env.get('MYSQL_TLS_CA_FILE')!.value).toBe('/etc/parley/mysql-ca/global-bundle.pem');
      expect(c.volumeMounts).toContainEqual({
        name: 'mysql-ca',
        mountPath: '/etc/parley/mysql-ca',
        readOnly: true,
      });
      expect(w.spec.volumes).toContainEqual({
        name: 'mysql-ca',
        configMap: {
          name: 'rds-ca-bundle',
          items: [{ key: 'global-bundle.pem', path: 'global-bundle.pem' }],
        },
      });
    }
    expect(byKind(render('external-data'), 'StatefulSet')).toHaveLength(0);
  });
});

describe('NetworkPolicies', () => {
  it.each(scenarios)(
    '%s: every pod of the release is default-deny in both directions and may resolve DNS',
    (scenario) => {
      const objects = render(scenario);
      for (const w of workloads(objects)) {
        expect(isolated(objects, w.labels), w.object.metadata.name).toBe(true);
        expect(dnsAllowed(objects, w.labels), w.object.metadata.name).toBe(true);
      }
    },
  );

  it('allows exactly the named paths inside the release', () => {
    const objects = render('default');
    const can = (from: string, to: string, port: number): boolean =>
      allowed(objects, labelsOf(from), labelsOf(to), port);
    for (const app of ['api', 'worker']) {
      expect(can(app, 'redis', 6379)).toBe(true);
      expect(can(app, 'redis', 26379)).toBe(true);
      expect(can(app, 'mysql-primary', 3306)).toBe(true);
      expect(can(app, 'mysql-replica', 3306)).toBe(true);
    }
    expect(can('migrations', 'mysql-primary', 3306)).toBe(true);
    expect(can('mysql-replica', 'mysql-primary', 3306)).toBe(true);
    expect(can('redis', 'redis', 26379)).toBe(true);
    expect(can('test', 'api', 9464)).toBe(true);
    expect(can('test', 'api', 3000)).toBe(false);
    expect(can('migrations', 'redis', 6379)).toBe(false);
    // And nothing else.
    expect(can('worker', 'api', 3000)).toBe(false);
    expect(can('redis', 'mysql-primary', 3306)).toBe(false);
    expect(can('mysql-primary', 'redis', 6379)).toBe(false);
    expect(can('api', 'mysql-primary', 22)).toBe(false);
    expect(can('test', 'redis', 6379)).toBe(false);
  });

  it('lets the app reach S3 over 443, and the in-chart MySQL and Redis by pod selector, not by address', () => {
    const objects = render('default');
    for (const app of ['api', 'worker'])
      expect(egressToCidr(objects, labelsOf(app), 443)).toEqual(['0.0.0.0/0']);
    expect(egressToCidr(objects, labelsOf('migrations'), 443)).toEqual([]);
    // Cilium never matches a pod's address against an ipBlock: in-cluster stores need a selector.
    for (const app of ['api', 'worker', 'migrations']) {
      expect(egressToCidr(objects, labelsOf(app), 3306), app).toEqual([]);
      expect(allowed(objects, labelsOf(app), labelsOf('mysql-primary'), 3306), app).toBe(true);
    }
    for (const app of ['api', 'worker']) {
      expect(egressToCidr(objects, labelsOf(app), 6379), app).toEqual([]);
      expect(allowed(objects, labelsOf(app), labelsOf('redis'), 6379), app).toBe(true);
    }
  });

  describe("an Ingress controller in its project's usual namespace reaches the API with no NetworkPolicy setting", () => {
    const controllerPod = { 'app.kubernetes.io/name': 'ingress-controller' };
    const withIngress = (controller: string, set: Record<string, string> = {}): Promise<K8sObject[]> =>
      renderChart([], {
        'ingress.enabled': 'true',
        'ingress.controller': controller,
        'ingress.className': controller === 'haproxy' ? 'haproxy' : 'nginx',
        ...set,
      });

    it.each([
      ['nginx-inc', 'nginx-ingress'],
      ['haproxy', 'haproxy-controller'],
    ])('%s: from namespace %s, on the API port only', async (controller, namespace) => {
      const objects = await withIngress(controller);
      expect(reachableFromNamespace(objects, namespace, labelsOf('api'), 3000, controllerPod)).toBe(true);
      expect(reachableFromNamespace(objects, namespace, labelsOf('api'), 9464, controllerPod)).toBe(false);
      for (const elsewhere of ['ingress', 'default', 'envoy-gateway-system'])
        expect(reachableFromNamespace(objects, elsewhere, labelsOf('api'), 3000), elsewhere).toBe(false);
    });

    it('networkPolicy.ingressNamespaceSelector names the namespace instead when the controller runs elsewhere', async () => {
      const objects = await withIngress('nginx-inc', {
        'networkPolicy.ingressNamespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name': 'edge',
      });
      expect(reachableFromNamespace(objects, 'edge', labelsOf('api'), 3000)).toBe(true);
      expect(reachableFromNamespace(objects, 'nginx-ingress', labelsOf('api'), 3000)).toBe(false);
    });

    it('without an Ingress or Gateway route, no other namespace reaches the API port', async () => {
      const objects = await renderChart([]);
      for (const namespace of ['nginx-ingress', 'haproxy-controller', 'envoy-gateway-system', 'default'])
        expect(reachableFromNamespace(objects, namespace, labelsOf('api'), 3000), namespace).toBe(false);
    });
  });

  describe('DNS goes where the cluster resolves names', () => {
    const renderDns = (dns: unknown): Promise<K8sObject[]> =>
      renderChart([], {}, { extraArgs: ['--set-json', `networkPolicy.dns=${JSON.stringify(dns)}`] });
    const coreDns = { namespace: 'kube-system', pod: { 'k8s-app': 'kube-dns' } };

    it('by default, the kube-dns / CoreDNS pods on port 53, and no other address', async () => {
      const objects = await renderChart([]);
      for (const app of ['api', 'worker', 'migrations']) {
        expect(egressAllowed(objects, labelsOf(app), coreDns, 53, 'UDP'), app).toBe(true);
        expect(egressAllowed(objects, labelsOf(app), coreDns, 53, 'TCP'), app).toBe(true);
        expect(egressAllowed(objects, labelsOf(app), { ip: '169.254.20.10' }, 53, 'UDP'), app).toBe(false);
      }
    });

    it('NodeLocal DNSCache: its link-local address, when networkPolicy.dns.peers names it', async () => {
      const objects = await renderDns({
        peers: [
          { ipBlock: { cidr: '169.254.20.10/32' } },
          { namespaceSelector: {}, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } },
        ],
      });
      for (const w of workloads(objects)) {
        expect(
          egressAllowed(objects, w.labels, { ip: '169.254.20.10' }, 53, 'UDP'),
          w.object.metadata.name,
        ).toBe(true);
        expect(egressAllowed(objects, w.labels, coreDns, 53, 'UDP'), w.object.metadata.name).toBe(true);
      }
      expect(egressAllowed(objects, labelsOf('api'), { ip: '169.254.20.11' }, 53, 'UDP')).toBe(false);
    });

    it("OpenShift: the DNS operator's pods in openshift-dns on port 5353, with networkPolicy.dns", async () => {
      const objects = await renderDns({
        peers: [
          {
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'openshift-dns' } },
            podSelector: { matchLabels: { 'dns.operator.openshift.io/daemonset-dns': 'default' } },
          },
        ],
        ports: [
          { protocol: 'UDP', port: 5353 },
          { protocol: 'TCP', port: 5353 },
        ],
      });
      const openshiftDns = {
        namespace: 'openshift-dns',
        pod: { 'dns.operator.openshift.io/daemonset-dns': 'default' },
      };
      for (const w of workloads(objects))
        expect(egressAllowed(objects, w.labels, openshiftDns, 5353, 'UDP'), w.object.metadata.name).toBe(
          true,
        );
      expect(egressAllowed(objects, labelsOf('api'), coreDns, 53, 'UDP')).toBe(false);
    });
  });

  it('gateway: the namespace of the Gateway proxies may reach the API', () => {
    for (const scenario of ['gateway', 'external-data']) {
      const objects = render(scenario);
      const route = spec<{ parentRefs: { namespace: string }[] }>(find(objects, 'HTTPRoute', 'parley-api'));
      for (const ref of route.parentRefs) {
        expect(reachableFromNamespace(objects, ref.namespace, labelsOf('api'), 3000), scenario).toBe(true);
      }
    }
  });

  describe('gateway mode lets the Gateway proxies in with no NetworkPolicy setting of its own', () => {
    // The Envoy proxy pods of a Gateway; the policy must not depend on their labels.
    const envoy = { 'app.kubernetes.io/name': 'envoy', 'gateway.envoyproxy.io/owning-gateway-name': 'eg' };
    const reach = async (
      set: Record<string, string>,
      namespace: string,
      port = 3000,
      parentRefs?: { name: string; namespace?: string }[],
    ): Promise<boolean> =>
      reachableFromNamespace(
        await renderChart(
          [],
          { 'gateway.enabled': 'true', ...set },
          parentRefs ? { extraArgs: ['--set-json', `gateway.parentRefs=${JSON.stringify(parentRefs)}`] } : {},
        ),
        namespace,
        labelsOf('api'),
        port,
        envoy,
      );

    it("Envoy Gateway's proxies (in its controller namespace by default) reach the API port", async () => {
      expect(await reach({}, 'envoy-gateway-system')).toBe(true);
      // The metrics port stays Prometheus's; unrelated namespaces stay out.
      expect(await reach({}, 'envoy-gateway-system', 9464)).toBe(false);
      expect(await reach({}, 'default')).toBe(false);
    });

    it("a Gateway in another namespace (Envoy's GatewayNamespace mode runs proxies there) is let in too", async () => {
      const refs = [{ name: 'public', namespace: 'edge' }];
      expect(await reach({}, 'edge', 3000, refs)).toBe(true);
      expect(await reach({}, 'envoy-gateway-system', 3000, refs)).toBe(true);
    });

    it("a parentRef without a namespace means the route's own namespace", async () => {
      expect(await reach({}, 'parley', 3000, [{ name: 'eg' }])).toBe(true);
    });

    it('gateway.proxyNamespace names where the proxies run when it is elsewhere', async () => {
      expect(await reach({ 'gateway.proxyNamespace': 'gateway-proxies' }, 'gateway-proxies')).toBe(true);
      expect(await reach({ 'gateway.proxyNamespace': 'gateway-proxies' }, 'default')).toBe(false);
    });

    it('without a Gateway route, the Envoy namespace has no way in', async () => {
      const objects = await renderChart([scenarioFile('default')]);
      expect(reachableFromNamespace(objects, 'envoy-gateway-system', labelsOf('api'), 3000, envoy)).toBe(
        false,
      );
      expect(reachableFromNamespace(objects, 'nginx-ingress', labelsOf('api'), 3000)).toBe(true);
    });
  });

  it('external data: egress to the database and cache CIDRs on their ports', () => {
    const objects = render('external-data');
    expect(egressToCidr(objects, labelsOf('api'), 3306)).toEqual(['10.20.0.0/16']);
    expect(egressToCidr(objects, labelsOf('api'), 6379)).toEqual(['10.20.0.0/16']);
  });

  it('external MySQL and Redis that run in the cluster are reached by selector (networkPolicy.externalDataPeers)', async () => {
    // keda: a MOCO MySQL and Redis Sentinels in namespace "data".
    const data = { namespace: 'data', pod: { 'app.kubernetes.io/name': 'mysql' } };
    const peers = [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'data' } } }];
    const objects = await renderChart(
      [scenarioFile('keda')],
      {},
      {
        extraArgs: ['--set-json', `networkPolicy.externalDataPeers=${JSON.stringify(peers)}`],
      },
    );
    for (const app of ['api', 'worker']) {
      for (const port of [3306, 6379, 26379])
        expect(egressAllowed(objects, labelsOf(app), data, port), `${app} ${port}`).toBe(true);
    }
    expect(egressAllowed(objects, labelsOf('migrations'), data, 3306)).toBe(true);
    expect(egressAllowed(objects, labelsOf('migrations'), data, 6379)).toBe(false);
    expect(egressAllowed(objects, labelsOf('api'), { namespace: 'other', pod: data.pod }, 3306)).toBe(false);
  });

  it('migrations, with the in-chart MySQL and an external Redis, reach no external address on any port', async () => {
    const objects = await renderChart([], {
      'redis.enabled': 'false',
      'redis.external.url': 'redis://cache.example.internal:6379',
    });
    for (const port of [3306, 6379, 22])
      expect(egressAllowed(objects, labelsOf('migrations'), { ip: '10.1.2.3' }, port), String(port)).toBe(
        false,
      );
    expect(allowed(objects, labelsOf('migrations'), labelsOf('mysql-primary'), 3306)).toBe(true);
    expect(egressAllowed(objects, labelsOf('api'), { ip: '10.1.2.3' }, 6379)).toBe(true);
  });

  it('an empty list of external data CIDRs and peers opens those ports to nothing, not to everything', async () => {
    const objects = await renderChart(
      [scenarioFile('external-data')],
      {},
      {
        extraArgs: [
          '--set-json',
          'networkPolicy.externalDataCidrs=[]',
          '--set-json',
          'networkPolicy.s3EgressCidrs=[]',
        ],
      },
    );
    for (const port of [3306, 6379, 443])
      expect(egressAllowed(objects, labelsOf('api'), { ip: '203.0.113.9' }, port), String(port)).toBe(false);
  });
});

describe('encrypted backups (BACKUP_*)', () => {
  const workerOf = (objects: K8sObject[]) => workload(objects, 'Deployment', 'parley-worker').spec;
  const keyVolume = (objects: K8sObject[]) =>
    workerOf(objects).volumes!.find((v) => v['name'] === 'backup-key')?.['secret'];

  it('with secrets.existingSecret the passphrase is a key of that Secret', () => {
    expect(keyVolume(render('default'))).toMatchObject({
      secretName: 'parley-credentials',
      items: [{ key: 'backup-encryption-key', path: 'encryption-key' }],
    });
  });

  it('a Secret of its own, with previous keys for a rotation; the generated Secret then has no passphrase', async () => {
    const objects = await renderChart([scenarioFile('dev')], {
      'backups.encryption.existingSecret': 'parley-backup-keys',
      'backups.encryption.key': 'current',
      'backups.encryption.previousKeysKey': 'previous',
    });
    expect(keyVolume(objects)).toMatchObject({
      secretName: 'parley-backup-keys',
      items: [
        { key: 'current', path: 'encryption-key' },
        { key: 'previous', path: 'previous-keys' },
      ],
    });
    const env = envOf(container(workerOf(objects), 'worker'));
    expect(env.get('BACKUP_PREVIOUS_KEYS_FILE')!.value).toBe('/var/run/secrets/parley-backup/previous-keys');
    expect(Object.keys(find(objects, 'Secret', 'parley')['data'] as object)).not.toContain(
      'backup-encryption-key',
    );
  });

  it('disabled: the worker is told so and is handed no key', async () => {
    const objects = await renderChart([scenarioFile('default')], { 'backups.enabled': 'false' });
    const env = envOf(container(workerOf(objects), 'worker'));
    expect(env.get('BACKUP_ENABLED')!.value).toBe('false');
    expect([...env.keys()].filter((name) => name.startsWith('BACKUP_'))).toEqual(['BACKUP_ENABLED']);
    expect(keyVolume(objects)).toBeUndefined();
  });

  it("the service's own config parser reads the worker's rendered values as values.yaml states them", () => {
    const defaults = (
      parse(readFileSync(join(chartDir, 'values.yaml'), 'utf8')) as {
        backups: { schedule: string; keep: number; compressionLevel: number };
      }
    ).backups;
    const env = envOf(container(workerOf(render('default')), 'worker'));
    const plain = Object.fromEntries(
      [...env.values()]
        .filter((e) => e.value !== undefined && !e.name.endsWith('_FILE'))
        .map((e) => [e.name, e.value!]),
    );
    // The Secret's file exists only in the pod: a passphrase stands in for it.
    const { backups } = loadConfig({ ...plain, BACKUP_ENCRYPTION_KEY: 'a passphrase standing in' }, 'worker');
    expect(backups).toMatchObject({
      enabled: true,
      schedule: defaults.schedule,
      keep: defaults.keep,
      compressionLevel: defaults.compressionLevel,
    });
    // Without the key file the worker would refuse to start: the chart always mounts it when enabled.
    expect(() => loadConfig(plain, 'worker')).toThrow(/BACKUP_ENCRYPTION_KEY: is required by the worker/);
  });
});

describe('observability', () => {
  it('a PodMonitor scrapes API and worker pods on both metrics ports', () => {
    const monitor = spec<Record<string, unknown>>(find(render('gateway'), 'PodMonitor', 'parley'));
    expect(monitor['podMetricsEndpoints']).toEqual([
      { port: 'management', path: '/metrics', interval: '30s' },
      { port: 'health', path: '/metrics', interval: '30s' },
    ]);
    expect(byKind(render('gateway'), 'ServiceMonitor')).toHaveLength(0);
  });

  it('a ServiceMonitor is the opt-in alternative and brings a worker metrics Service', () => {
    const objects = render('haproxy');
    expect(byKind(objects, 'ServiceMonitor')).toHaveLength(1);
    expect(spec<{ clusterIP: string }>(find(objects, 'Service', 'parley-worker')).clusterIP).toBe('None');
  });

  it('a PrometheusRule alerts on error rate, p99, queue age, dead letters, failing jobs, open breakers and replica lag', () => {
    const rule = spec<{ groups: { rules: { alert: string; expr: string }[] }[] }>(
      find(render('gateway'), 'PrometheusRule', 'parley'),
    );
    const alerts = Object.fromEntries(rule.groups[0]!.rules.map((r) => [r.alert, r.expr]));
    expect(Object.keys(alerts)).toEqual([
      'ParleyHighErrorRate',
      'ParleyHighLatencyP99',
      'ParleyQueueBacklogAge',
      'ParleyJobsDeadLettered',
      'ParleyJobsFailing',
      'ParleyCircuitBreakerOpen',
      'ParleyMysqlReplicaLag',
      'ParleyMysqlReplicaLagUnknown',
    ]);
    expect(alerts['ParleyHighErrorRate']).toContain('status_code=~"5.."');
    expect(alerts['ParleyHighLatencyP99']).toContain('histogram_quantile(0.99');
    expect(alerts['ParleyQueueBacklogAge']).toContain('parley_queue_oldest_waiting_seconds');
    expect(alerts['ParleyJobsDeadLettered']).toContain('parley_jobs_dead_total');
    expect(alerts['ParleyJobsFailing']).toContain('parley_jobs_failed_total');
    expect(alerts['ParleyCircuitBreakerOpen']).toContain('circuit_breaker_state');
    // The worker's heartbeat gauge (works on RDS too); nothing in the release runs mysqld_exporter.
    expect(alerts['ParleyMysqlReplicaLag']).toMatch(
      /^max\(parley_mysql_replica_lag_seconds\{.*\}\) > 30\n?$/,
    );
    // NaN, the lag unknown, is the one value not equal to itself.
    expect(alerts['ParleyMysqlReplicaLagUnknown']).toMatch(
      /^max\(parley_mysql_replica_lag_seconds\{(.*)\}\)\s+!= max\(parley_mysql_replica_lag_seconds\{\1\}\)\n?$/,
    );
  });

  it('a Grafana dashboard ConfigMap with valid JSON for the sidecar', () => {
    const cm = find(render('gateway'), 'ConfigMap', 'parley-dashboard');
    expect(cm.metadata.labels?.['grafana_dashboard']).toBe('1');
    const dashboard = JSON.parse((cm['data'] as Record<string, string>)['parley.json']!) as {
      panels: unknown[];
    };
    expect(dashboard.panels.length).toBeGreaterThanOrEqual(6);
  });
});

describe('helm test', () => {
  it('a test hook pod checks /readyz through the API Service (its management port)', () => {
    const pod = find(render('default'), 'Pod', 'parley-test-readyz');
    expect(isHook(pod)).toBe(true);
    expect(annotations(pod)['helm.sh/hook']).toBe('test');
    const c = spec<{ containers: Container[] }>(pod).containers[0]!;
    expect(c.command!.at(-1)).toBe('http://parley-api:9464/readyz');
    const ports = spec<{ ports: { name: string; port: number }[] }>(
      find(render('default'), 'Service', 'parley-api'),
    ).ports;
    expect(ports.map((p) => [p.name, p.port])).toEqual([
      ['http', 80],
      ['management', 9464],
    ]);
  });
});
