import { Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createBreakerFactory, DependencyUnavailable } from './breakers.js';

const breakerFor = (isFailure = () => true) =>
  createBreakerFactory(new Registry())('test', { timeoutMs: 1_000, openMs: 5_000, isFailure });

afterEach(() => {
  vi.restoreAllMocks();
  vi.useRealTimers();
});

describe('a circuit breaker', () => {
  it('opens once half of at least three calls in the window failed, then fails fast', async () => {
    const breaker = breakerFor();
    await breaker.run(async () => 'ok');
    for (let i = 0; i < 2; i++)
      await expect(breaker.run(() => Promise.reject(new Error('down')))).rejects.toBeInstanceOf(
        DependencyUnavailable,
      );
    expect(breaker.state()).toBe('open');
    const call = vi.fn(async () => 'never');
    await expect(breaker.run(call)).rejects.toMatchObject({ dependency: 'test', retryAfterSeconds: 5 });
    expect(call).not.toHaveBeenCalled();
  });

  it('passes through errors that say nothing of the dependency, and stays closed', async () => {
    const breaker = breakerFor(() => false);
    for (let i = 0; i < 5; i++)
      await expect(breaker.run(() => Promise.reject(new Error('duplicate key')))).rejects.toThrow(
        'duplicate key',
      );
    expect(breaker.state()).toBe('closed');
  });

  it('keeps no latency percentiles: neither a failure nor the passing seconds sort the window', async () => {
    vi.useFakeTimers();
    const breaker = breakerFor();
    for (let i = 0; i < 1_000; i++) await breaker.run(async () => i);
    const sort = vi.spyOn(Array.prototype, 'sort');
    await breaker.run(() => Promise.reject(new Error('down'))).catch(() => undefined);
    vi.advanceTimersByTime(3_000);
    expect(sort).not.toHaveBeenCalled();
  });
});
