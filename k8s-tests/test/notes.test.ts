import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { scenarioFile } from '../lib/objects.js';
import { chartDir, helm } from '../lib/render.js';
import { repoRoot } from '../scripts/kube-tools.js';
import { serviceSource } from '../lib/service-source.js';

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

  it('names the IngressClass and how to check which controller owns it', async () => {
    const nginx = await notes('default');
    expect(nginx).toContain(
      '(Ingress via F5 NGINX Ingress Controller, IngressClass nginx, least connections)',
    );
    expect(nginx).toContain(
      "kubectl get ingressclass nginx -o jsonpath='{.spec.controller}'   # expect nginx.org/ingress-controller",
    );
    const haproxy = await notes('haproxy');
    expect(haproxy).toContain('(Ingress via HAProxy Kubernetes Ingress Controller, IngressClass haproxy');
    expect(haproxy).toContain('# expect haproxy.org/ingress-controller/haproxy');
  });

  it('haproxy: the backend carries timeout tunnel; with backend snippets disabled, the ConfigMap key to set', async () => {
    const text = await notes('haproxy', ['ingress.websocketTimeoutSeconds=5400']);
    expect(text).toContain('timeout tunnel 5400s, set on its backend by haproxy.org/backend-config-snippet');
    expect(text).toContain('--disable-config-snippets');
    expect(text).toContain('timeout-tunnel: "5400s"');
    expect(await notes('default')).not.toContain('timeout tunnel');
  });

  it('network policies: which namespace may reach the API, and what to set for NodeLocal DNSCache or OpenShift', async () => {
    const nginx = await notes('default');
    expect(nginx).toContain(
      'NetworkPolicy lets the API port be reached from namespace nginx-ingress (the F5 NGINX Ingress Controller',
    );
    expect(nginx).toContain('set networkPolicy.ingressNamespaceSelector');
    expect(nginx).toContain('NodeLocal DNSCache or OpenShift');
    expect(nginx).toContain('networkPolicy.dns');
    expect(await notes('haproxy')).toContain('from namespace haproxy-controller');
    const gateway = await notes('gateway');
    expect(gateway).toContain('from namespace envoy-gateway-system');
    expect(await notes('default', ['networkPolicy.enabled=false'])).not.toContain('NodeLocal DNSCache');
  });

  it('backups: where the passphrase is, and that it must be kept outside the cluster', async () => {
    const text = await notes('default');
    expect(text).toContain('Backups: the worker writes an encrypted backup at "0 3 * * *" (UTC)');
    expect(text).toContain('"backup-encryption-key" of Secret "parley-credentials"');
    expect(text).toContain('keep a copy outside');
    expect(await notes('default', ['backups.enabled=false'])).not.toContain('Backups:');
  });

  it('gateway: the route hostnames', async () => {
    expect(await notes('gateway')).toContain('https://chat.example.com/');
  });

  it('dev: port-forward, the generated Secret and the MinIO warning', async () => {
    const text = await notes('dev');
    expect(text).toContain('kubectl -n parley port-forward svc/parley-api 3000:80');
    expect(text).toContain('Credentials were generated into Secret "parley"');
    // lookup sees no cluster under helm template or GitOps renders: the passwords would change each time.
    expect(text).toMatch(
      /`helm template`, `--dry-run`, Argo CD and other GitOps\s+tools render new random passwords/,
    );
    expect(text).toContain('With any of those, set secrets.existingSecret.');
    expect(text).toContain('Development only');
  });

  it("the worker's jobs: dead letters, redrive and rebuild through kubectl exec, the board through port-forward", async () => {
    const text = await notes('default');
    for (const command of ['dead [queue]', 'redrive <queue> <id|--all>', 'rebuild-leaderboards'])
      expect(text).toContain(`kubectl -n parley exec deploy/parley-worker -- jobs ${command}`);
    expect(text).toContain('worker.jobs.attempts (5)');
    expect(text).toContain('Bull Board (read-only)');
    expect(text).toContain('kubectl -n parley port-forward deploy/parley-worker 3001\n');
    expect(text).toContain('http://localhost:3001/queues');
    expect(text).not.toContain('npm run jobs');
    expect(text).not.toContain('every pod in the cluster can reach');
    // What NOTES promises is what the image and the service provide.
    const source = serviceSource();
    expect(source).toContain("usage: 'dead [queue] [--json]'");
    expect(source).toContain("usage: 'redrive <queue> <id | --all>'");
    expect(source).toContain("usage: 'rebuild-leaderboards'");
    expect(source).toContain("export const JOB_BOARD_PATH = '/queues';");
    expect(readFileSync(join(repoRoot, 'Dockerfile'), 'utf8')).toContain(
      'printf \'#!/bin/sh\\nexec node /app/service/dist/main-jobs.js "$@"\\n\' > /usr/local/bin/jobs',
    );
  });

  it('the board: its port follows worker.healthPort; off says so; without NetworkPolicies, a warning', async () => {
    const moved = await notes('default', ['worker.healthPort=4001', 'worker.jobs.board=read-write']);
    expect(moved).toContain('Bull Board (read-write)');
    expect(moved).toContain('port-forward deploy/parley-worker 4001\n');
    expect(moved).toContain('http://localhost:4001/queues');
    const off = await notes('default', ['worker.jobs.board=off']);
    expect(off).toContain('Bull Board is off (worker.jobs.board)');
    expect(off).not.toContain('/queues');
    const open = await notes('default', ['networkPolicy.enabled=false']);
    expect(open).toContain('every pod in the cluster can reach that port and the board');
  });

  it('a custom worker command (skaffold dev) is told about npm run jobs', async () => {
    const text = await notes('dev', ['worker.command={npx,tsx,watch,src/main-worker.ts}']);
    expect(text).toContain('`npm run jobs -- <command>`');
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
