import { ensureKubeTools } from '../scripts/kube-tools.js';

export default async function setup(): Promise<void> {
  await ensureKubeTools();
}
