/**
 * A small evaluator of the rendered NetworkPolicies for pods of this release: would a connection
 * from one pod to another on a TCP port be allowed? It follows the Kubernetes rules for what the
 * chart uses (podSelector matchLabels, policyTypes, ports; peers that are pod selectors in the same
 * namespace). namespaceSelector and ipBlock peers never match a pod of the release here.
 */
import { matches } from './objects.js';
import type { K8sObject } from './render.js';

interface Peer {
  podSelector?: { matchLabels?: Record<string, string> };
  namespaceSelector?: unknown;
  ipBlock?: { cidr: string };
}
interface Rule {
  from?: Peer[];
  to?: Peer[];
  ports?: { protocol?: string; port?: number }[];
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
  const portOk = !rule.ports || rule.ports.some((p) => p.port === undefined || p.port === port);
  // Only a pod-selector peer without a namespaceSelector means "pods of this namespace".
  const peerOk =
    peers === undefined ||
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

/** DNS (UDP 53) to kube-dns allowed for the pod? */
export function dnsAllowed(objects: K8sObject[], labels: Record<string, string>): boolean {
  return policiesOf(objects)
    .filter((p) => selects(p, labels) && p.policyTypes.includes('Egress'))
    .flatMap((p) => p.egress ?? [])
    .some(
      (rule) =>
        (rule.ports ?? []).some((p) => p.protocol === 'UDP' && p.port === 53) &&
        (rule.to ?? []).some((peer) => peer.podSelector?.matchLabels?.['k8s-app'] === 'kube-dns'),
    );
}
