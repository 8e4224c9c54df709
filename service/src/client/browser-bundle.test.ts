import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

describe('the client in a browser', () => {
  it('bundles for a browser: nothing it imports needs a Node built-in', async () => {
    const result = await build({
      entryPoints: [fileURLToPath(new URL('./index.ts', import.meta.url))],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      logLevel: 'silent',
    });
    expect(result.errors).toEqual([]);
    const bundle = result.outputFiles[0]!.text;
    expect(bundle).toMatch(/export \{[^}]*\bParleyClient\b/);
    expect(bundle).not.toMatch(/from ["']node:|require\(["']node:/);
  });
});
