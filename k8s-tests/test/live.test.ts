/**
 * Live install into the cluster in KUBECONFIG: a temporary namespace, the dev scenario, wait for
 * readiness, `helm test` (GET /readyz through the API Service), uninstall. The image comes from
 * PARLEY_IMAGE_REPOSITORY / PARLEY_IMAGE_TAG when the cluster cannot pull the default one.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { chartDir, helm } from '../lib/render.js';
import { ensureKubeTools } from '../scripts/kube-tools.js';

const run = promisify(execFile);
const kubeconfig = process.env['KUBECONFIG'];
const namespace = `parley-k8s-tests-${randomBytes(3).toString('hex')}`;
const release = 'parley';

describe.skipIf(!kubeconfig)(`live install${kubeconfig ? '' : ' (skipped: KUBECONFIG is not set)'}`, () => {
  let installed = false;

  afterAll(async () => {
    if (installed)
      await helm(['uninstall', release, '--namespace', namespace, '--wait', '--timeout', '5m']).catch(
        () => undefined,
      );
    const { kubectl } = await ensureKubeTools();
    await run(kubectl, ['delete', 'namespace', namespace, '--wait=false', '--ignore-not-found']).catch(
      () => undefined,
    );
  }, 10 * 60_000);

  it(
    'installs the dev scenario, becomes ready, passes helm test and uninstalls',
    async () => {
      const image: string[] = [];
      if (process.env['PARLEY_IMAGE_REPOSITORY'])
        image.push('--set', `image.repository=${process.env['PARLEY_IMAGE_REPOSITORY']}`);
      if (process.env['PARLEY_IMAGE_TAG'])
        image.push('--set', `image.tag=${process.env['PARLEY_IMAGE_TAG']}`);
      await helm([
        'install',
        release,
        chartDir,
        '--namespace',
        namespace,
        '--create-namespace',
        '--values',
        `${chartDir}/ci/dev-values.yaml`,
        ...image,
        '--wait',
        '--timeout',
        '15m',
      ]);
      installed = true;
      const { stdout } = await helm(['test', release, '--namespace', namespace, '--timeout', '5m', '--logs']);
      expect(stdout).toMatch(/Phase:\s+Succeeded/);
    },
    30 * 60_000,
  );
});
