import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { cpuBudgetUs, cpuMs, medianCpuUs, paced, type LoadResult } from './load.js';

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

  it("is the generator's when asked for", () => {
    const runs = [1, 5, 3].map((generatorCpuUs) => ({ ...round(100), generatorCpuUs }));
    expect(medianCpuUs(runs, 'generatorCpuUs')).toBe(3);
  });
});

describe('the CPU budget of a request', () => {
  it('is what one event loop can spend per request at that rate', () => {
    expect(cpuBudgetUs(25_000)).toBe(40);
    expect(cpuBudgetUs(0.6 * 50_000)).toBeCloseTo(33.3, 1);
  });
});

describe('a paced run', () => {
  it('reports what each request cost the server and the generator in CPU time', async () => {
    // A server in its own process that burns 5 ms of CPU per request, so its share is unmistakable.
    const server = spawn(process.execPath, [
      '-e',
      `require('node:http').createServer((q, s) => { q.resume(); const end = process.cpuUsage().user + 5000; while (process.cpuUsage().user < end); s.end('{}'); })
        .listen(0, '127.0.0.1', function () { console.log(this.address().port); });`,
    ]);
    try {
      const [port] = (await once(server.stdout, 'data')) as [Buffer];
      const result = await paced({
        url: `http://127.0.0.1:${String(port).trim()}/`,
        method: 'POST',
        headers: () => ({ 'content-type': 'application/json' }),
        body: '{}',
        rate: 100,
        seconds: 1,
        connections: 2,
        pid: server.pid,
      });
      expect(result.non2xx + result.errors).toBe(0);
      expect(result.cpuUs).toBeGreaterThanOrEqual(4_000);
      // The generator's figure is this whole test process's CPU, whatever else it does meanwhile
      // (its first requests also load and compile undici's code): it can be bounded from below only.
      expect(result.generatorCpuUs).toBeGreaterThan(0);
    } finally {
      server.kill();
    }
  });
});
