import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { apiNodeOptions, imageNodeVersion, imageRuntime } from './image-runtime.js';

describe("the image's Node release", () => {
  it('is the exact release every stage of the Dockerfile is built on', () => {
    const dockerfile = readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8');
    const version = imageNodeVersion(dockerfile);
    expect(version).toMatch(/^\d+\.\d+\.\d+$/);
    expect(dockerfile).toContain(`ARG NODE_IMAGE=node:${version}-`);
    const stages = dockerfile.match(/^FROM \S+/gm) ?? [];
    expect(stages.length).toBeGreaterThan(1);
    for (const stage of stages) expect(stage).toMatch(/^FROM (\$\{NODE_IMAGE\}|build)$/);
  });

  it('names what it looks for when the Dockerfile pins no release', () => {
    expect(() => imageNodeVersion('ARG NODE_IMAGE=node:24-slim\nFROM ${NODE_IMAGE}\n')).toThrow(
      'ARG NODE_IMAGE=node:<x.y.z>',
    );
  });

  it("is this machine's Node, fetched from nowhere, when BENCH_NODE=local", async () => {
    expect(await imageRuntime({ BENCH_NODE: 'local' })).toEqual({
      node: process.execPath,
      version: process.version.slice(1),
      origin: 'BENCH_NODE=local',
    });
  });
});

describe('the API container’s NODE_OPTIONS', () => {
  it('are what the chart sets, so the bench sizes V8’s heap as the pod does', () => {
    expect(apiNodeOptions()).toBe('--max-semi-space-size=16');
    expect(apiNodeOptions('api:\n  replicas: 3\n')).toBe('');
  });

  it('refuse a value that is not a string', () => {
    expect(() => apiNodeOptions('api:\n  nodeOptions: [1]\n')).toThrow('api.nodeOptions');
  });
});
