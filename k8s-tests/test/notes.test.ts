import { describe, expect, it } from 'vitest';
import { scenarioFile } from '../lib/objects.js';
import { chartDir, helm } from '../lib/render.js';

/** NOTES.txt as `helm install` prints it (client-side dry run: no cluster needed). */
async function notes(scenario: string, set: string[] = []): Promise<string> {
  const { stdout } = await helm([
    'install',
    'parley',
    chartDir,
    '--namespace',
    'parley',
    '--dry-run=client',
    '--values',
    `${chartDir}/${scenarioFile(scenario)}`,
    ...set.flatMap((value) => ['--set', value]),
  ]);
  return stdout.slice(stdout.indexOf('NOTES:'));
}

describe('NOTES.txt tells the installer what to do next', () => {
  it('default: rollout, helm test, and the Ingress URL over TLS', async () => {
    const text = await notes('default');
    expect(text).toContain('kubectl -n parley rollout status deploy/parley-api');
    expect(text).toContain('helm test parley -n parley');
    expect(text).toContain('https://chat.example.com/');
    expect(text).not.toContain('Credentials were generated');
  });

  it('haproxy: the tunnel timeout lives in the controller ConfigMap, which the chart cannot set', async () => {
    const text = await notes('haproxy');
    expect(text).toContain("timeout-tunnel, a key of its controller's ConfigMap");
    expect(text).toContain('ingress.websocketTimeoutSeconds (3600 s)');
    expect(await notes('default')).not.toContain('timeout-tunnel');
  });

  it('gateway: the route hostnames', async () => {
    expect(await notes('gateway')).toContain('https://chat.example.com/');
  });

  it('dev: port-forward, the generated Secret and the MinIO warning', async () => {
    const text = await notes('dev');
    expect(text).toContain('kubectl -n parley port-forward svc/parley-api 3000:80');
    expect(text).toContain('Credentials were generated into Secret "parley"');
    expect(text).toContain('Development only');
  });

  it('reminds the installer to pin the in-cluster Redis and MySQL by digest until they are', async () => {
    const text = await notes('default');
    expect(text).toContain('redis.image is pinned by tag only; set redis.image.digest');
    expect(text).toContain('mysql.image is pinned by tag only; set mysql.image.digest');
    const digest = `sha256:${'cd'.repeat(32)}`;
    const pinned = await notes('default', [`redis.image.digest=${digest}`, `mysql.image.digest=${digest}`]);
    expect(pinned).not.toContain('pinned by tag only');
    // External data stores: nothing of the chart's to pin.
    expect(await notes('keda')).not.toContain('pinned by tag only');
  });
});
