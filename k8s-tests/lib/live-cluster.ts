/**
 * Where the live tests run: the cluster in KUBECONFIG when it is set (the user's choice wins),
 * otherwise the project's own control plane (./control-plane.ts) when .ci/install-missing has built
 * it. Neither: the tests skip, saying why.
 */
import { ensureKubeTools } from '../scripts/kube-tools.js';
import {
  CONTROL_PLANE_INSTALL_HINT,
  findControlPlane,
  runKubectl,
  startControlPlane,
} from './control-plane.js';
import { helm } from './render.js';

export interface LiveCluster {
  /** `KUBECONFIG` or `control plane`: what the tests ran against, for their titles. */
  kind: 'KUBECONFIG' | 'control plane';
  kubeconfig: string;
  /** Runs kubectl (with `input` on its stdin) and resolves with its stdout; rejects with its stderr. */
  kubectl(args: string[], input?: string): Promise<string>;
  /** Runs helm against the cluster. */
  helm(args: string[]): Promise<string>;
  stop(): Promise<void>;
}

export type LiveTarget = { kind: LiveCluster['kind'] } | { kind: 'none'; reason: string };

/** Decided without starting anything, so a skipped suite costs nothing. */
export function liveTarget(env: NodeJS.ProcessEnv = process.env): LiveTarget {
  if (env['KUBECONFIG']) return { kind: 'KUBECONFIG' };
  const controlPlane = findControlPlane();
  if (controlPlane.found) return { kind: 'control plane' };
  return {
    kind: 'none',
    reason: `KUBECONFIG is not set and the control plane is not built (no ${controlPlane.missing.join(', ')} in .tools/bin: ${CONTROL_PLANE_INSTALL_HINT})`,
  };
}

/** Connects to the target: the user's cluster as it is, or a control plane started for the run. */
export async function connectLiveCluster(target: LiveTarget): Promise<LiveCluster> {
  if (target.kind === 'none') throw new Error(target.reason);
  const withKubeconfig = (kubeconfig: string) => async (args: string[]) =>
    (await helm([`--kubeconfig=${kubeconfig}`, ...args])).stdout;
  if (target.kind === 'KUBECONFIG') {
    const kubeconfig = process.env['KUBECONFIG']!;
    const { kubectl } = await ensureKubeTools();
    return {
      kind: target.kind,
      kubeconfig,
      kubectl: (args, input) => runKubectl(kubectl, kubeconfig, args, input),
      helm: withKubeconfig(kubeconfig),
      stop: async () => undefined,
    };
  }
  const controlPlane = await startControlPlane();
  return {
    kind: target.kind,
    kubeconfig: controlPlane.kubeconfig,
    kubectl: (args, input) => runKubectl(controlPlane.kubectl, controlPlane.kubeconfig, args, input),
    helm: withKubeconfig(controlPlane.kubeconfig),
    stop: () => controlPlane.stop(),
  };
}
