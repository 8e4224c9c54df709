/** Small, typed accessors over rendered objects, so tests read as the promise they check. */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { chartDir, type K8sObject } from './render.js';

export interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  ports?: { name?: string; containerPort: number }[];
  resources?: { requests?: Record<string, string | number>; limits?: Record<string, string | number> };
  securityContext?: Record<string, unknown>;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
  lifecycle?: { preStop?: { sleep?: { seconds: number }; exec?: { command: string[] } } };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean; subPath?: string }[];
}
export interface Probe {
  httpGet?: { path: string; port: string | number };
  exec?: { command: string[] };
}
export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string }; fieldRef?: { fieldPath: string } };
}
export interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  securityContext?: Record<string, unknown>;
  volumes?: Record<string, unknown>[];
  terminationGracePeriodSeconds?: number;
  topologySpreadConstraints?: {
    topologyKey: string;
    labelSelector: { matchLabels: Record<string, string> };
  }[];
  affinity?: Record<string, unknown>;
  hostNetwork?: boolean;
  hostPID?: boolean;
  hostIPC?: boolean;
  automountServiceAccountToken?: boolean;
  serviceAccountName?: string;
}
export interface Workload {
  object: K8sObject;
  labels: Record<string, string>;
  spec: PodSpec;
}

/** The ci/*-values.yaml scenarios, by name (`default`, `gateway`, ...). */
export const scenarios: string[] = readdirSync(join(chartDir, 'ci'))
  .filter((file) => file.endsWith('-values.yaml'))
  .map((file) => file.replace(/-values\.yaml$/, ''))
  .sort();

export const scenarioFile = (scenario: string): string => `ci/${scenario}-values.yaml`;

export function byKind(objects: K8sObject[], kind: string): K8sObject[] {
  return objects.filter((obj) => obj.kind === kind);
}

export function find(objects: K8sObject[], kind: string, name: string): K8sObject {
  const found = objects.find((obj) => obj.kind === kind && obj.metadata.name === name);
  if (!found) {
    const names = byKind(objects, kind).map((obj) => obj.metadata.name);
    throw new Error(`no ${kind} named ${name} (have: ${names.join(', ') || 'none'})`);
  }
  return found;
}

export function spec<T = Record<string, unknown>>(obj: K8sObject): T {
  return obj['spec'] as T;
}

/** Every object that runs pods, with its pod template. */
export function workloads(objects: K8sObject[]): Workload[] {
  const result: Workload[] = [];
  for (const object of objects) {
    if (['Deployment', 'StatefulSet', 'Job', 'DaemonSet'].includes(object.kind)) {
      const template = spec<{ template: { metadata: { labels: Record<string, string> }; spec: PodSpec } }>(
        object,
      ).template;
      result.push({ object, labels: template.metadata.labels, spec: template.spec });
    } else if (object.kind === 'Pod') {
      result.push({ object, labels: object.metadata.labels ?? {}, spec: spec<PodSpec>(object) });
    }
  }
  return result;
}

export function workload(objects: K8sObject[], kind: string, name: string): Workload {
  const found = workloads(objects).find((w) => w.object.kind === kind && w.object.metadata.name === name);
  if (!found) throw new Error(`no ${kind} workload named ${name}`);
  return found;
}

export function allContainers(podSpec: PodSpec): Container[] {
  return [...(podSpec.initContainers ?? []), ...podSpec.containers];
}

export function container(podSpec: PodSpec, name: string): Container {
  const found = allContainers(podSpec).find((c) => c.name === name);
  if (!found) throw new Error(`no container ${name}`);
  return found;
}

export function envOf(c: Container): Map<string, EnvVar> {
  return new Map((c.env ?? []).map((e) => [e.name, e]));
}

export function matches(
  selector: Record<string, string> | undefined,
  labels: Record<string, string>,
): boolean {
  if (!selector) return false;
  return Object.entries(selector).every(([key, value]) => labels[key] === value);
}

export function isHook(obj: K8sObject): boolean {
  return Boolean(obj.metadata.annotations?.['helm.sh/hook']);
}

export function component(w: Workload): string {
  return w.labels['app.kubernetes.io/component'] ?? '';
}
