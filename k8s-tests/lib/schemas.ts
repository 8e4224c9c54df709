/**
 * Offline schema validation of rendered objects with `kubernetes-models` (core) and its CRD
 * packages (Gateway API, Envoy Gateway, KEDA, Prometheus Operator): each object is built into its
 * model class and validated against the upstream OpenAPI schema, and any field that schema does not
 * define is reported as unknown.
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
  'external-secrets.io': '@kubernetes-models/external-secrets',
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

type Watched = { keys: Set<PropertyKey>; enumerated: boolean; path: string };

/**
 * A deep copy of `value` whose objects record which keys are read, enumerated or tested, so that
 * after validation `unread` can list the keys the schema never asked for.
 */
function watched(value: unknown, records: Map<object, Watched>, path = ''): unknown {
  if (Array.isArray(value)) return value.map((item, i) => watched(item, records, `${path}[${i}]`));
  if (!value || typeof value !== 'object') return value;
  const record: Watched = { keys: new Set(), enumerated: false, path };
  const copy = Object.fromEntries(
    Object.entries(value).map(([key, child]) => [
      key,
      watched(child, records, path ? `${path}.${key}` : key),
    ]),
  );
  records.set(copy, record);
  return new Proxy(copy, {
    get(target, key, receiver) {
      record.keys.add(key);
      return Reflect.get(target, key, receiver) as unknown;
    },
    has(target, key) {
      record.keys.add(key);
      return Reflect.has(target, key);
    },
    getOwnPropertyDescriptor(target, key) {
      record.keys.add(key);
      return Reflect.getOwnPropertyDescriptor(target, key);
    },
    ownKeys(target) {
      record.enumerated = true;
      return Reflect.ownKeys(target);
    },
  });
}

/**
 * Fields newer than the CRD schemas kubernetes-models ships, by `apiVersion/kind` and path, each with
 * the pattern its upstream schema gives the value. Envoy Gateway v1.8 added
 * `timeout.http.streamIdleTimeout` to BackendTrafficPolicy (envoyproxy/gateway#8455), a
 * Gateway API Duration; @kubernetes-models/envoy-gateway 2.0.0 predates it.
 */
const NEWER_THAN_MODELS: Record<string, Record<string, RegExp>> = {
  'gateway.envoyproxy.io/v1alpha1/BackendTrafficPolicy': {
    'spec.timeout.http.streamIdleTimeout': /^([0-9]{1,5}(h|m|s|ms)){1,4}$/,
  },
};

function at(obj: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((node, key) => (node as Record<string, unknown>)?.[key], obj);
}

/** The fields of `obj` that NEWER_THAN_MODELS knows, after checking their values. */
function newerFields(obj: K8sObject): string[] {
  const known = NEWER_THAN_MODELS[`${obj.apiVersion}/${obj.kind}`] ?? {};
  return Object.entries(known).flatMap(([path, pattern]) => {
    const value = at(obj, path);
    if (value === undefined) return [];
    if (typeof value !== 'string' || !pattern.test(value))
      throw new Error(`${path}: ${JSON.stringify(value)} does not match ${pattern}`);
    return [path];
  });
}

function unread(records: Map<object, Watched>): string[] {
  const unknown: string[] = [];
  for (const [target, record] of records) {
    // Enumerated: a map (labels, annotations) whose every key is fine. Never read: a free-form
    // object (preserve-unknown-fields) the schema says nothing about.
    if (record.enumerated || record.keys.size === 0) continue;
    for (const key of Object.keys(target)) {
      if (!record.keys.has(key)) unknown.push(record.path ? `${record.path}.${key}` : key);
    }
  }
  return unknown.sort();
}

/**
 * Validates the object against its schema and returns the fields no schema defines: typos such as
 * `terminationGracePeriodSecond`, which the compiled validators of kubernetes-models ignore (their
 * schemas do not forbid additional properties) and the API server drops with at most a warning.
 * A validator reads every property its schema defines (`void 0 !== data.x`) and enumerates the
 * keys of free-form maps, so running it on a copy whose objects record those reads shows which
 * present keys nothing knows. Objects the validator never looks into are not judged.
 */
export async function unknownFields(obj: K8sObject): Promise<string[]> {
  const Model = await modelFor(obj.apiVersion, obj.kind);
  const records = new Map<object, Watched>();
  // The model's constructor drops undefined values, as serialising it would; validate() runs the
  // schema's compiled validator on `this`.
  const data = watched(JSON.parse(JSON.stringify(new Model(obj))), records);
  (Model.prototype.validate as (this: unknown) => void).call(data);
  const newer = newerFields(obj);
  return unread(records).filter((path) => !newer.includes(path));
}

/**
 * Resolves when the object is valid and has no field its schema does not define; rejects with the
 * schema's complaint or the unknown fields otherwise.
 */
export async function validateObject(obj: K8sObject): Promise<void> {
  let unknown: string[];
  try {
    unknown = await unknownFields(obj);
  } catch (error) {
    throw new Error(`${obj.kind}/${obj.metadata.name}: ${(error as Error).message}`);
  }
  if (unknown.length > 0) {
    throw new Error(`${obj.kind}/${obj.metadata.name}: unknown field(s) ${unknown.join(', ')}`);
  }
}
