/**
 * A small evaluator of the rendered NetworkPolicies for pods of this release: would a connection
 * from one pod to another on a TCP port be allowed? It follows the Kubernetes rules for what the
 * chart uses (podSelector matchLabels, policyTypes, ports; peers that are pod selectors in the same
 * namespace). namespaceSelector and ipBlock peers never match a pod of the release here;
 * `reachableFromNamespace` evaluates namespaceSelector peers for traffic from other namespaces, and
 * `egressAllowed` the egress side to a pod in any namespace or to an IP address.
 */
import { matches } from './objects.js';
import type { K8sObject } from './render.js';

interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: {
    key: string;
    operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
    values?: string[];
  }[];
}
interface Peer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: { cidr: string; except?: string[] };
}
interface Rule {
  from?: Peer[];
  to?: Peer[];
  ports?: { protocol?: 'TCP' | 'UDP' | 'SCTP'; port?: number }[];
}
interface PolicySpec {
  podSelector: { matchLabels?: Record<string, string> };
  policyTypes: ('Ingress' | 'Egress')[];
  ingress?: Rule[];
  egress?: Rule[];
}

function selects(policy: PolicySpec, labels: Record<string, string>): boolean {
  return matches(policy.podSelector.matchLabels ?? {}, labels);
}

function ruleAllows(
  rule: Rule,
  peers: Peer[] | undefined,
  other: Record<string, string>,
  port: number,
): boolean {
  const portOk =
    !rule.ports || rule.ports.length === 0 || rule.ports.some((p) => p.port === undefined || p.port === port);
  // Only a pod-selector peer without a namespaceSelector means "pods of this namespace". No peers
  // (the field missing, null or empty) means every peer.
  const peerOk =
    !peers ||
    peers.length === 0 ||
    peers.some(
      (peer) =>
        !peer.namespaceSelector && !peer.ipBlock && matches(peer.podSelector?.matchLabels ?? {}, other),
    );
  return portOk && peerOk;
}

function direction(
  policies: PolicySpec[],
  self: Record<string, string>,
  other: Record<string, string>,
  port: number,
  type: 'Ingress' | 'Egress',
): boolean {
  const applicable = policies.filter((p) => selects(p, self) && p.policyTypes.includes(type));
  if (applicable.length === 0) return true; // not isolated in this direction
  return applicable.some((p) =>
    (type === 'Ingress' ? (p.ingress ?? []) : (p.egress ?? [])).some((rule) =>
      ruleAllows(rule, type === 'Ingress' ? rule.from : rule.to, other, port),
    ),
  );
}

export function policiesOf(objects: K8sObject[]): PolicySpec[] {
  return objects.filter((o) => o.kind === 'NetworkPolicy').map((o) => o['spec'] as PolicySpec);
}

/** Is a TCP connection from `from` to `to` on `port` allowed (egress of one, ingress of the other)? */
export function allowed(
  objects: K8sObject[],
  from: Record<string, string>,
  to: Record<string, string>,
  port: number,
): boolean {
  const policies = policiesOf(objects);
  return direction(policies, from, to, port, 'Egress') && direction(policies, to, from, port, 'Ingress');
}

/**
 * Does `to` admit a connection on `port` from a pod of its own namespace with labels `from`? Only the
 * ingress side: for a pod outside the release, whose egress the chart does not restrict.
 */
export function admits(
  objects: K8sObject[],
  from: Record<string, string>,
  to: Record<string, string>,
  port: number,
): boolean {
  return direction(policiesOf(objects), to, from, port, 'Ingress');
}

/** Is `labels` isolated for both directions by some policy (default deny)? */
export function isolated(objects: K8sObject[], labels: Record<string, string>): boolean {
  const policies = policiesOf(objects).filter((p) => selects(p, labels));
  return ['Ingress', 'Egress'].every((type) =>
    policies.some((p) => p.policyTypes.includes(type as 'Ingress')),
  );
}

/** Egress rules of the pod that reach something outside the cluster (ipBlock) on `port`. */
export function egressToCidr(objects: K8sObject[], labels: Record<string, string>, port: number): string[] {
  return policiesOf(objects)
    .filter((p) => selects(p, labels) && p.policyTypes.includes('Egress'))
    .flatMap((p) => p.egress ?? [])
    .filter((rule) => !rule.ports || rule.ports.some((p) => p.port === port))
    .flatMap((rule) => (rule.to ?? []).flatMap((peer) => (peer.ipBlock ? [peer.ipBlock.cidr] : [])));
}

/** DNS (UDP 53) to the cluster's kube-dns / CoreDNS pods (in kube-system) allowed for the pod? */
export function dnsAllowed(objects: K8sObject[], labels: Record<string, string>): boolean {
  const coreDns = { namespace: 'kube-system', pod: { 'k8s-app': 'kube-dns' } };
  return egressAllowed(objects, labels, coreDns, 53, 'UDP');
}

/** Kubernetes label selector semantics: matchLabels and matchExpressions, all must hold. */
export function selectorMatches(selector: LabelSelector, labels: Record<string, string>): boolean {
  const expressions = (selector.matchExpressions ?? []).every(({ key, operator, values = [] }) => {
    const has = key in labels;
    if (operator === 'In') return has && values.includes(labels[key]!);
    if (operator === 'NotIn') return !has || !values.includes(labels[key]!);
    if (operator === 'Exists') return has;
    return !has;
  });
  return expressions && matches(selector.matchLabels ?? {}, labels);
}

/**
 * May a pod in another namespace (known by its name, as the `kubernetes.io/metadata.name` label
 * Kubernetes sets on every namespace) with `podLabels` connect to the release's pod `to` on `port`?
 * Only the ingress side is checked: the other namespace's egress is not the chart's to decide.
 */
export function reachableFromNamespace(
  objects: K8sObject[],
  namespace: string,
  to: Record<string, string>,
  port: number,
  podLabels: Record<string, string> = {},
): boolean {
  const namespaceLabels = { 'kubernetes.io/metadata.name': namespace };
  const applicable = policiesOf(objects).filter((p) => selects(p, to) && p.policyTypes.includes('Ingress'));
  if (applicable.length === 0) return true;
  return applicable.some((p) =>
    (p.ingress ?? []).some((rule) => {
      const portOk =
        !rule.ports ||
        rule.ports.length === 0 ||
        rule.ports.some((r) => r.port === undefined || r.port === port);
      const peerOk =
        !rule.from ||
        rule.from.length === 0 ||
        rule.from.some(
          (peer) =>
            peer.namespaceSelector !== undefined &&
            selectorMatches(peer.namespaceSelector, namespaceLabels) &&
            selectorMatches(peer.podSelector ?? {}, podLabels),
        );
      return portOk && peerOk;
    }),
  );
}

/** The namespace the tests render the release into (lib/render.ts). */
export const releaseNamespace = 'parley';

/** A destination outside the release: a pod of some namespace, or an address no selector names. */
export type Destination = { namespace: string; pod: Record<string, string> } | { ip: string };

function ipv4(address: string): number {
  const parts = address.split('.').map(Number);
  if (parts.length !== 4 || parts.some((part) => !Number.isInteger(part) || part < 0 || part > 255))
    throw new Error(`not an IPv4 address: ${address}`);
  return parts.reduce((value, part) => value * 256 + part, 0);
}

/** Is the IPv4 `address` inside `cidr`? */
export function cidrContains(cidr: string, address: string): boolean {
  const [base, bits] = cidr.split('/') as [string, string];
  if (base.includes(':') || address.includes(':')) return false;
  const size = 2 ** (32 - Number(bits));
  return Math.floor(ipv4(base) / size) === Math.floor(ipv4(address) / size);
}

/**
 * Does `peer` name `to`? ipBlock peers match addresses only: whether an ipBlock matches a pod IP is
 * up to the network plugin (Cilium never matches one), so a pod counts as reached only through a
 * selector. A podSelector without a namespaceSelector means pods of the policy's own namespace.
 */
function peerNames(peer: Peer, to: Destination): boolean {
  if ('ip' in to) {
    if (!peer.ipBlock) return false;
    const except = peer.ipBlock.except ?? [];
    return cidrContains(peer.ipBlock.cidr, to.ip) && !except.some((cidr) => cidrContains(cidr, to.ip));
  }
  if (peer.ipBlock) return false;
  const namespaceOk = peer.namespaceSelector
    ? selectorMatches(peer.namespaceSelector, { 'kubernetes.io/metadata.name': to.namespace })
    : to.namespace === releaseNamespace;
  return namespaceOk && selectorMatches(peer.podSelector ?? {}, to.pod);
}

/**
 * May the release's pod `from` open a connection to `to` on `port`? Only the egress side: the other
 * end is not the chart's to admit. A rule without `to` (or with an empty one) names every peer, as
 * Kubernetes reads it; a port without a protocol is TCP.
 */
export function egressAllowed(
  objects: K8sObject[],
  from: Record<string, string>,
  to: Destination,
  port: number,
  protocol: 'TCP' | 'UDP' = 'TCP',
): boolean {
  const applicable = policiesOf(objects).filter((p) => selects(p, from) && p.policyTypes.includes('Egress'));
  if (applicable.length === 0) return true;
  return applicable.some((p) =>
    (p.egress ?? []).some((rule) => {
      const portOk =
        !rule.ports ||
        rule.ports.length === 0 ||
        rule.ports.some(
          (r) => (r.protocol ?? 'TCP') === protocol && (r.port === undefined || r.port === port),
        );
      const peerOk = !rule.to || rule.to.length === 0 || rule.to.some((peer) => peerNames(peer, to));
      return portOk && peerOk;
    }),
  );
}
