/**
 * The worker's jobs on the chart: the job settings reach the processes that read them, as the
 * service's own config parser reads them; the schema's bounds are the service's; and Bull Board,
 * served on the worker's health port, is reachable from nowhere the metrics are not.
 */
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../../service/src/config.js';
import { admits, reachableFromNamespace } from '../lib/network-policy.js';
import {
  allContainers,
  byKind,
  component,
  container,
  envOf,
  scenarioFile,
  scenarios,
  spec,
  workload,
  workloads,
  type EnvVar,
} from '../lib/objects.js';
import { chartDir, renderChart, renderChartText, type K8sObject } from '../lib/render.js';

const renders = new Map<string, K8sObject[]>();
beforeAll(async () => {
  await Promise.all(scenarios.map(async (s) => renders.set(s, await renderChart([scenarioFile(s)]))));
});
const render = (scenario: string): K8sObject[] => renders.get(scenario)!;

type Role = 'api' | 'worker';
const envIn = (objects: K8sObject[], role: Role): Map<string, EnvVar> =>
  envOf(container(workload(objects, 'Deployment', `parley-${role}`).spec, role));

// What a process would parse: the rendered plain values, and a signing key and a backup passphrase
// in place of the Secret's files, which exist only in the pod.
const signingKey = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' });
function parsedBy(role: Role, objects: K8sObject[], overrides: Record<string, string> = {}) {
  const plain = Object.fromEntries(
    [...envIn(objects, role).values()]
      .filter((e) => e.value !== undefined && !e.name.endsWith('_FILE'))
      .map((e) => [e.name, e.value]),
  );
  return loadConfig(
    {
      ...plain,
      JWT_PRIVATE_KEY: signingKey.toString(),
      BACKUP_ENCRYPTION_KEY: 'a backup passphrase in place of the mounted one',
      ...overrides,
    },
    role,
  );
}

/** The problems the service lists for `env`, or none. */
function refusals(role: Role, objects: K8sObject[], env: Record<string, string>): string[] {
  try {
    parsedBy(role, objects, env);
    return [];
  } catch (error) {
    return (error as { problems: string[] }).problems;
  }
}

type Bounds = { minimum: number; maximum: number };
type SchemaNode = { properties?: Record<string, SchemaNode> } & Partial<Bounds>;
const schema = JSON.parse(readFileSync(join(chartDir, 'values.schema.json'), 'utf8')) as SchemaNode;
const values = parse(readFileSync(join(chartDir, 'values.yaml'), 'utf8')) as Record<string, unknown>;

/** The schema node of a value, e.g. `worker.jobs.attempts`. */
const schemaOf = (path: string): SchemaNode =>
  path.split('.').reduce((node, key) => node.properties![key]!, schema);
const boundsOf = (path: string): Bounds => schemaOf(path) as Bounds;
const valueOf = (path: string): unknown =>
  path.split('.').reduce<unknown>((node, key) => (node as Record<string, unknown>)[key], values);

/** A numeric value of the chart and the variable it becomes: the service's unit is × `scale`. */
interface Setting {
  path: string;
  variable: string;
  scale: number;
  /** Who reads it. */
  roles: Role[];
  /** Where the service's parsed config holds it. */
  read: (config: ReturnType<typeof loadConfig>) => number;
}

/** The numeric leaves of the schema under `path`. */
const numericPaths = (path: string): string[] =>
  Object.entries(schemaOf(path).properties!).flatMap(([key, node]) =>
    node.properties ? numericPaths(`${path}.${key}`) : node.maximum === undefined ? [] : [`${path}.${key}`],
  );

/**
 * Both ends of each setting's schema bounds render, and the service parses them as set; one step
 * beyond either end is refused by the service and by helm alike.
 */
async function checkBounds(settings: Setting[]): Promise<void> {
  for (const end of ['minimum', 'maximum'] as const) {
    const at = settings.map((s) => ({ ...s, value: boundsOf(s.path)[end] }));
    const objects = await renderChart(
      [scenarioFile('default')],
      Object.fromEntries(at.map((s) => [s.path, String(s.value)])),
    );
    for (const role of ['api', 'worker'] as const) {
      const config = parsedBy(role, objects);
      for (const s of at.filter((s) => s.roles.includes(role)))
        expect(s.read(config), `${role} ${s.path} ${end}`).toBe(s.value * s.scale);
    }

    const step = end === 'minimum' ? -1 : 1;
    const beyond = at.map((s) => ({ ...s, value: s.value + step }));
    const problems = refusals(
      'worker',
      objects,
      Object.fromEntries(beyond.map((s) => [s.variable, String(s.value * s.scale)])),
    );
    for (const s of beyond)
      expect(
        problems.some((p) => p.startsWith(`${s.variable}:`)),
        `service refuses ${s.variable}=${s.value * s.scale}`,
      ).toBe(true);
    const refusal = await renderChartText(
      [scenarioFile('default')],
      Object.fromEntries(beyond.map((s) => [s.path, String(s.value)])),
    ).then(
      () => '',
      (error: Error) => error.message,
    );
    for (const s of beyond)
      expect(refusal, `helm refuses ${s.path}=${s.value}`).toContain(`'/${s.path.replaceAll('.', '/')}'`);
  }
}

/** The defaults, as the service parses what the chart renders: what values.yaml states. */
function checkDefaults(settings: Setting[]): void {
  for (const role of ['api', 'worker'] as const) {
    const config = parsedBy(role, render('default'));
    for (const setting of settings.filter((s) => s.roles.includes(role)))
      expect(setting.read(config), `${role} ${setting.path}`).toBe(
        (valueOf(setting.path) as number) * setting.scale,
      );
  }
}

const JOB_SETTINGS: Setting[] = [
  ...(['maintenance', 'leaderboards', 'attachments', 'backups'] as const).map((queue): Setting => ({
    path: `worker.jobs.concurrency.${queue}`,
    variable: `JOBS_CONCURRENCY_${queue.toUpperCase()}`,
    scale: 1,
    roles: ['worker'],
    read: (config) => config.jobs.concurrency[queue],
  })),
  {
    path: 'worker.jobs.attempts',
    variable: 'JOBS_ATTEMPTS',
    scale: 1,
    roles: ['api', 'worker'],
    read: (config) => config.jobs.attempts,
  },
  {
    path: 'worker.jobs.backoffSeconds',
    variable: 'JOBS_BACKOFF_MS',
    scale: 1000,
    roles: ['api', 'worker'],
    read: (config) => config.jobs.backoffMs,
  },
  {
    path: 'worker.jobs.lockSeconds',
    variable: 'JOBS_LOCK_MS',
    scale: 1000,
    roles: ['worker'],
    read: (config) => config.jobs.lockMs,
  },
  {
    path: 'worker.heartbeatSeconds',
    variable: 'WORKER_HEARTBEAT_MS',
    scale: 1000,
    roles: ['worker'],
    read: (config) => config.jobs.heartbeatMs,
  },
];
const WORKER_ONLY = [
  ...JOB_SETTINGS.filter((s) => !s.roles.includes('api')).map((s) => s.variable),
  'JOBS_BOARD',
];
const SHARED = JOB_SETTINGS.filter((s) => s.roles.includes('api')).map((s) => s.variable);

describe("the worker's job settings (JOBS_*, WORKER_HEARTBEAT_MS)", () => {
  it('every numeric job value is in the table above', () => {
    expect([...numericPaths('worker.jobs'), 'worker.heartbeatSeconds'].sort()).toEqual(
      JOB_SETTINGS.map((s) => s.path).sort(),
    );
  });

  it.each(scenarios)(
    '%s: the worker gets every job setting; the API the attempts and backoff of the jobs it adds; nothing else any',
    (scenario) => {
      const objects = render(scenario);
      const worker = envIn(objects, 'worker');
      for (const variable of [...WORKER_ONLY, ...SHARED]) expect(worker.has(variable), variable).toBe(true);
      const api = envIn(objects, 'api');
      for (const variable of SHARED) expect(api.has(variable), `api ${variable}`).toBe(true);
      for (const variable of WORKER_ONLY) expect(api.has(variable), `api ${variable}`).toBe(false);
      for (const w of workloads(objects).filter((w) => !['api', 'worker'].includes(component(w))))
        for (const c of allContainers(w.spec))
          for (const name of envOf(c).keys())
            expect(name, `${w.object.metadata.name}/${c.name}`).not.toMatch(/^(JOBS_|WORKER_HEARTBEAT)/);
    },
  );

  it("the service's own config parser reads the rendered defaults as values.yaml states them", () => {
    checkDefaults(JOB_SETTINGS);
    expect(valueOf('worker.jobs.board')).toBe('read-only');
    expect(parsedBy('worker', render('default')).jobs.board).toBe('read-only');
  });

  it("the schema's bounds are the service's: both ends render and parse, one step beyond fails both", () =>
    checkBounds(JOB_SETTINGS));

  it.each(['off', 'read-only', 'read-write'])('board %s reaches the worker as JOBS_BOARD', async (board) => {
    const objects = await renderChart([scenarioFile('default')], { 'worker.jobs.board': board });
    expect(envIn(objects, 'worker').get('JOBS_BOARD')!.value).toBe(board);
    expect(parsedBy('worker', objects).jobs.board).toBe(board);
  });

  it('the heartbeat sets /livez, the worker liveness probe runs as its value documents', () => {
    const worker = container(workload(render('default'), 'Deployment', 'parley-worker').spec, 'worker');
    expect(worker.livenessProbe!.httpGet).toEqual({ path: '/livez', port: 'health' });
    const probe = worker.livenessProbe as { periodSeconds: number; failureThreshold: number };
    const doc = readFileSync(join(chartDir, 'values.yaml'), 'utf8');
    expect(doc).toContain(
      `restarts it after ${probe.failureThreshold} failed probes ${probe.periodSeconds} s apart`,
    );
    // /livez holds the heartbeat's tolerance itself (three heartbeats + 5 s, service/src/main-worker.ts).
    const source = readFileSync(join(chartDir, '..', '..', 'service', 'src', 'main-worker.ts'), 'utf8');
    expect(source).toContain('new ProgressWatch(config.jobs.heartbeatMs * 3 + 5_000,');
    expect(doc).toContain('no job for 3 × this + 5 s');
  });
});

const LEADERBOARD_SETTINGS: Setting[] = [
  {
    path: 'config.leaderboards.pointsMessage',
    variable: 'LEADERBOARD_POINTS_MESSAGE',
    scale: 1,
    roles: ['api', 'worker'],
    read: (config) => config.leaderboards.points.message,
  },
  {
    path: 'config.leaderboards.pointsRoomCreated',
    variable: 'LEADERBOARD_POINTS_ROOM_CREATED',
    scale: 1,
    roles: ['api', 'worker'],
    read: (config) => config.leaderboards.points.roomCreated,
  },
  {
    path: 'config.leaderboards.flushIntervalMs',
    variable: 'LEADERBOARD_FLUSH_INTERVAL_MS',
    scale: 1,
    roles: ['api', 'worker'],
    read: (config) => config.leaderboards.flushIntervalMs,
  },
  {
    path: 'config.leaderboards.periodGraceSeconds',
    variable: 'LEADERBOARD_PERIOD_GRACE_SECONDS',
    scale: 1,
    roles: ['api', 'worker'],
    read: (config) => config.leaderboards.periodGraceSeconds,
  },
];

describe('the leaderboard settings (LEADERBOARD_*)', () => {
  it('every leaderboard value is in the table above', () => {
    expect(numericPaths('config.leaderboards').sort()).toEqual(
      LEADERBOARD_SETTINGS.map((s) => s.path).sort(),
    );
  });

  it.each(scenarios)(
    '%s: the API (which awards) and the worker (which flushes and rebuilds) get them; migrations do not',
    (scenario) => {
      const objects = render(scenario);
      for (const role of ['api', 'worker'] as const)
        for (const { variable } of LEADERBOARD_SETTINGS)
          expect(envIn(objects, role).has(variable), `${role} ${variable}`).toBe(true);
      for (const w of workloads(objects).filter((w) => !['api', 'worker'].includes(component(w))))
        for (const c of allContainers(w.spec))
          for (const name of envOf(c).keys())
            expect(name, `${w.object.metadata.name}/${c.name}`).not.toMatch(/^LEADERBOARD_/);
    },
  );

  it("the service's own config parser reads the rendered defaults as values.yaml states them", () =>
    checkDefaults(LEADERBOARD_SETTINGS));

  it("the schema's bounds are the service's: both ends render and parse, one step beyond fails both", () =>
    checkBounds(LEADERBOARD_SETTINGS));
});

const ATTACHMENT_SETTINGS: Setting[] = (
  [
    ['maxBytes', 'ATTACHMENTS_MAX_BYTES', (config) => config.attachments.maxBytes],
    ['uploadTtlSeconds', 'ATTACHMENTS_UPLOAD_TTL_SECONDS', (config) => config.attachments.uploadTtlSeconds],
    [
      'downloadTtlSeconds',
      'ATTACHMENTS_DOWNLOAD_TTL_SECONDS',
      (config) => config.attachments.downloadTtlSeconds,
    ],
    [
      'pendingTtlSeconds',
      'ATTACHMENTS_PENDING_TTL_SECONDS',
      (config) => config.attachments.pendingTtlSeconds,
    ],
    [
      'rejectedTtlSeconds',
      'ATTACHMENTS_REJECTED_TTL_SECONDS',
      (config) => config.attachments.rejectedTtlSeconds,
    ],
    ['sweepEveryMs', 'ATTACHMENTS_SWEEP_EVERY_MS', (config) => config.attachments.sweepEveryMs],
  ] as [string, string, Setting['read']][]
).map(([key, variable, read]): Setting => ({
  path: `config.attachments.${key}`,
  variable,
  scale: 1,
  roles: ['api', 'worker'],
  read,
}));

describe('the attachment settings (ATTACHMENTS_*)', () => {
  it('every numeric attachment value is in the table above', () => {
    expect(numericPaths('config.attachments').sort()).toEqual(ATTACHMENT_SETTINGS.map((s) => s.path).sort());
  });

  it.each(scenarios)(
    '%s: the API (which presigns) and the worker (which verifies and sweeps) get them',
    (scenario) => {
      const objects = render(scenario);
      for (const role of ['api', 'worker'] as const) {
        for (const { variable } of ATTACHMENT_SETTINGS)
          expect(envIn(objects, role).has(variable), `${role} ${variable}`).toBe(true);
        expect(parsedBy(role, objects).attachments.allowedTypes).toEqual(
          valueOf('config.attachments.allowedTypes'),
        );
      }
    },
  );

  it("the service's own config parser reads the rendered defaults as values.yaml states them", () =>
    checkDefaults(ATTACHMENT_SETTINGS));

  it("an operator's list of types reaches the service; a type that is not one is refused by helm", async () => {
    const objects = await renderChart([scenarioFile('default')], {
      'config.attachments.allowedTypes': '{image/avif,video/mp4}',
    });
    expect(parsedBy('api', objects).attachments.allowedTypes).toEqual(['image/avif', 'video/mp4']);
    const refusal = await renderChartText([scenarioFile('default')], {
      'config.attachments.allowedTypes': '{images}',
    }).then(
      () => '',
      (error: Error) => error.message,
    );
    expect(refusal).toContain("'/config/attachments/allowedTypes/0'");
  });

  it('refuses a pending TTL no longer than the upload TTL, as the service does', async () => {
    const refusal = await renderChartText([scenarioFile('default')], {
      'config.attachments.pendingTtlSeconds': '300',
    }).then(
      () => '',
      (error: Error) => error.message,
    );
    expect(refusal).toContain('config.attachments.pendingTtlSeconds (300) must be longer than');
    expect(
      refusals('api', render('default'), {
        ATTACHMENTS_PENDING_TTL_SECONDS: '300',
        ATTACHMENTS_UPLOAD_TTL_SECONDS: '300',
      }).some((problem) => problem.startsWith('ATTACHMENTS_PENDING_TTL_SECONDS:')),
    ).toBe(true);
  });
});

describe("Bull Board stays behind the worker's health port", () => {
  const labelsOf = (name: string): Record<string, string> => ({
    'app.kubernetes.io/name': 'parley',
    'app.kubernetes.io/instance': 'parley',
    'app.kubernetes.io/component': name,
  });
  /** The namespace a scenario lets scrape metrics (networkPolicy.metricsNamespaceSelector). */
  const metricsNamespace = (scenario: string): string => {
    type Values = {
      networkPolicy?: { metricsNamespaceSelector?: { matchLabels?: Record<string, string> } };
    };
    const read = (file: string): Values => parse(readFileSync(join(chartDir, file), 'utf8')) as Values;
    const selector =
      read(scenarioFile(scenario)).networkPolicy?.metricsNamespaceSelector ??
      read('values.yaml').networkPolicy!.metricsNamespaceSelector!;
    return selector.matchLabels!['kubernetes.io/metadata.name']!;
  };
  const healthPort = (objects: K8sObject[]): number => {
    const worker = container(workload(objects, 'Deployment', 'parley-worker').spec, 'worker');
    const port = worker.ports!.find((p) => p.name === 'health')!.containerPort;
    // The board is served where the worker's management server listens.
    expect(envOf(worker).get('WORKER_HEALTH_PORT')!.value).toBe(String(port));
    return port;
  };

  it.each(scenarios)(
    '%s: the metrics namespace may reach the port; no other namespace, and no pod of its own',
    (scenario) => {
      const objects = render(scenario);
      const port = healthPort(objects);
      const worker = labelsOf('worker');
      const prometheus = metricsNamespace(scenario);
      expect(reachableFromNamespace(objects, prometheus, worker, port)).toBe(true);
      for (const namespace of ['parley', 'default', 'ingress', 'envoy-gateway-system', 'kube-system'])
        if (namespace !== prometheus)
          expect(reachableFromNamespace(objects, namespace, worker, port), namespace).toBe(false);
      // Not even if their own egress let them: the worker's ingress names no pod.
      for (const from of ['api', 'test', 'migrations', 'redis', 'mysql-primary', 'minio', 'worker'])
        expect(admits(objects, labelsOf(from), worker, port), from).toBe(false);
      expect(admits(objects, { app: 'debug-shell' }, worker, port)).toBe(false);
    },
  );

  it.each(scenarios)('%s: no Ingress, route or public Service leads to it', (scenario) => {
    const objects = render(scenario);
    const port = healthPort(objects);
    for (const service of byKind(objects, 'Service')) {
      const { selector, ports, clusterIP } = spec<{
        selector?: Record<string, string>;
        ports: { port: number; targetPort?: number | string }[];
        clusterIP?: string;
      }>(service);
      if (selector?.['app.kubernetes.io/component'] !== 'worker') continue;
      // Only the headless Service a ServiceMonitor scrapes through, which the NetworkPolicy guards.
      expect(service.metadata.name).toBe('parley-worker');
      expect(clusterIP).toBe('None');
      expect(ports.map((p) => p.targetPort ?? p.port)).toEqual(expect.arrayContaining(['health']));
    }
    const backends = JSON.stringify([...byKind(objects, 'Ingress'), ...byKind(objects, 'HTTPRoute')]);
    expect(backends).not.toContain('parley-worker');
    expect(backends).not.toContain(`${port}`);
  });

  it('a moved health port moves the policy with it', async () => {
    const objects = await renderChart([scenarioFile('default')], { 'worker.healthPort': '4001' });
    expect(healthPort(objects)).toBe(4001);
    expect(reachableFromNamespace(objects, 'monitoring', labelsOf('worker'), 4001)).toBe(true);
    expect(reachableFromNamespace(objects, 'monitoring', labelsOf('worker'), 3001)).toBe(false);
  });
});
