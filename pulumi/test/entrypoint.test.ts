/**
 * `pulumi up` starts the program as Pulumi.yaml says: plain node with the `nodeargs` loader, ESM,
 * `main: index.ts`. Run it the same way (without an engine, so nothing is deployed) to prove the
 * ESM TypeScript program loads and validates its config outside vitest's own transform.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';

import { exampleStack, type Loose } from './harness.js';

const run = promisify(execFile);
const projectDir = fileURLToPath(new URL('..', import.meta.url));
const project = parseYaml(readFileSync(`${projectDir}/Pulumi.yaml`, 'utf8')) as {
  main: string;
  runtime: { name: string; options: { typescript: boolean; nodeargs: string } };
};

function launch(settings: Record<string, unknown>) {
  const config = Object.fromEntries(
    Object.entries(settings).map(([key, value]) => [
      key,
      typeof value === 'object' ? JSON.stringify(value) : String(value),
    ]),
  );
  const script = `const m = await import('./${project.main}'); console.log(JSON.stringify({ hostname: m.hostname, url: m.url }));`;
  return run(
    process.execPath,
    [...project.runtime.options.nodeargs.split(' '), '--input-type=module', '-e', script],
    { cwd: projectDir, env: { ...process.env, PULUMI_CONFIG: JSON.stringify(config) }, timeout: 60_000 },
  );
}

describe('Pulumi.yaml', () => {
  it('runs index.ts as ESM through the tsx loader, with Pulumi’s own TypeScript support off', () => {
    expect(project.runtime.name).toBe('nodejs');
    expect(project.runtime.options).toEqual({ typescript: false, nodeargs: '--import=tsx' });
    expect(project.main).toBe('index.ts');
    const pkg = JSON.parse(readFileSync(`${projectDir}/package.json`, 'utf8')) as Record<string, Loose>;
    expect(pkg.type).toBe('module');
    expect(pkg.dependencies.tsx).toBeDefined();
  });

  it('loads the program the way the language host does and evaluates the dev stack', async () => {
    const { stdout } = await launch(exampleStack('dev'));
    expect(JSON.parse(stdout.trim().split('\n').at(-1)!)).toEqual({
      hostname: 'chat.dev.example.com',
      url: 'https://chat.dev.example.com',
    });
  });

  it('exits non-zero with the list of problems on a bad stack', async () => {
    const failure = (await launch({ ...exampleStack('dev'), 'parley:backupRetentionDays': 0 }).catch(
      (error: unknown) => error,
    )) as { code: number; stderr: string };
    expect(failure.code).toBe(1);
    expect(failure.stderr).toContain(
      'invalid stack configuration:\n  - parley:backupRetentionDays: must be at least 1 day',
    );
  });
});
