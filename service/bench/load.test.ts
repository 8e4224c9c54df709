import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { cpuMs, medianCpuUs, type LoadResult } from './load.js';

describe("a server's CPU time, as the bench reads it", () => {
  it("counts another process's CPU work, and only once it has done it", async () => {
    // Busy for 300 ms of CPU, then idle until killed.
    const child = spawn(process.execPath, [
      '-e',
      'const end = process.cpuUsage().user + 300e3; while (process.cpuUsage().user < end); console.log("done"); setInterval(() => {}, 1e3);',
    ]);
    try {
      await once(child.stdout, 'data');
      const busy = cpuMs(child.pid!)!;
      expect(busy).toBeGreaterThanOrEqual(300);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(cpuMs(child.pid!)! - busy).toBeLessThan(100); // idle: barely moves
    } finally {
      child.kill();
    }
  });

  it('is unknown for a process that is gone', async () => {
    const child = spawn(process.execPath, ['-e', '']);
    await once(child, 'exit');
    expect(cpuMs(child.pid!)).toBeUndefined();
  });
});

describe("the rounds' CPU time per request", () => {
  const round = (cpuUs?: number): LoadResult => ({ rps: 1, p50: 1, p99: 1, non2xx: 0, errors: 0, cpuUs });

  it('is the median of the rounds that could read it', () => {
    expect(medianCpuUs([round(30), round(10), round(), round(20)])).toBe(20);
  });

  it('is unknown when no round could (not Linux)', () => {
    expect(medianCpuUs([round(), round()])).toBeUndefined();
  });
});
