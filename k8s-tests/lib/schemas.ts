/**
 * Offline schema validation of rendered objects with `kubernetes-models` (core) and its CRD
 * packages (Gateway API, Envoy Gateway, KEDA, Prometheus Operator): each object is built into its
 * model class and validated against the upstream OpenAPI schema.
 */
import type { K8sObject } from './render.js';

interface Model {
  validate(): void;
}
type ModelClass = new (data: unknown) => Model;

const CRD_PACKAGES: Record<string, string> = {
  'gateway.networking.k8s.io': '@kubernetes-models/gateway-api',
  'gateway.envoyproxy.io': '@kubernetes-models/envoy-gateway',
  'keda.sh': '@kubernetes-models/keda',
  'monitoring.coreos.com': '@kubernetes-models/prometheus-operator',
};

function modulePath(apiVersion: string, kind: string): string {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  if (!group) return `kubernetes-models/${version}/${kind}`;
  const pkg = CRD_PACKAGES[group!];
  if (pkg) return `${pkg}/${group}/${version}/${kind}`;
  return `kubernetes-models/${group}/${version}/${kind}`;
}

const cache = new Map<string, Promise<ModelClass>>();

async function modelFor(apiVersion: string, kind: string): Promise<ModelClass> {
  const path = modulePath(apiVersion, kind);
  let pending = cache.get(path);
  if (!pending) {
    pending = import(path).then((mod: Record<string, ModelClass>) => {
      const model = mod[kind];
      if (!model) throw new Error(`${path} exports no ${kind}`);
      return model;
    });
    cache.set(path, pending);
  }
  return pending;
}

/** Resolves when the object is valid; rejects with the schema's complaint otherwise. */
export async function validateObject(obj: K8sObject): Promise<void> {
  const Model = await modelFor(obj.apiVersion, obj.kind);
  try {
    new Model(obj).validate();
  } catch (error) {
    throw new Error(`${obj.kind}/${obj.metadata.name}: ${(error as Error).message}`);
  }
}
