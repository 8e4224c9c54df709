import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { findControlPlane } from '../lib/control-plane.js';

/** A machine's cache of built programs and a clone's .tools/bin linking to it, as install-missing leaves them. */
function toolsDir(links: string[]): { bin: string; cache: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'parley-cp-tools-'));
  const cache = join(dir, 'cache');
  const bin = join(dir, 'bin');
  mkdirSync(cache);
  mkdirSync(bin);
  for (const program of [
    'etcd',
    'kube-apiserver',
    'kube-controller-manager',
    'kube-scheduler',
    'kubectl',
    'kwok',
  ]) {
    writeFileSync(join(cache, program), '#!/bin/sh\n');
    chmodSync(join(cache, program), 0o755);
  }
  for (const program of links) symlinkSync(join(cache, program), join(bin, program));
  return { bin, cache, dir };
}

describe('findControlPlane (the programs install-missing built)', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it("runs the kubectl built with the API server, not the npm package's older one in .tools/bin", () => {
    const tools = toolsDir(['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok']);
    dirs.push(tools.dir);
    writeFileSync(join(tools.bin, 'kubectl'), '#!/bin/sh\necho v1.35\n');
    chmodSync(join(tools.bin, 'kubectl'), 0o755);

    const found = findControlPlane(tools.bin);

    expect(found.found && found.programs.kubectl).toBe(join(tools.cache, 'kubectl'));
  });

  it('names each program that is not built', () => {
    const tools = toolsDir(['etcd', 'kube-apiserver', 'kube-scheduler']);
    dirs.push(tools.dir);
    rmSync(join(tools.cache, 'kubectl'));

    expect(findControlPlane(tools.bin)).toEqual({
      found: false,
      missing: ['kube-controller-manager', 'kwok', 'kubectl'],
    });
  });
});
