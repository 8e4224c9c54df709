import { describe, expect, it } from 'vitest';
import { scenarioFile } from '../lib/objects.js';
import { chartDir, helm } from '../lib/render.js';

/** NOTES.txt as `helm install` prints it (client-side dry run: no cluster needed). */
async function notes(scenario: string): Promise<string> {
  const { stdout } = await helm([
    'install',
    'parley',
    chartDir,
    '--namespace',
    'parley',
    '--dry-run=client',
    '--values',
    `${chartDir}/${scenarioFile(scenario)}`,
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

  it('gateway: the route hostnames', async () => {
    expect(await notes('gateway')).toContain('https://chat.example.com/');
  });

  it('dev: port-forward, the generated Secret and the MinIO warning', async () => {
    const text = await notes('dev');
    expect(text).toContain('kubectl -n parley port-forward svc/parley-api 3000:80');
    expect(text).toContain('Credentials were generated into Secret "parley"');
    expect(text).toContain('Development only');
  });
});
