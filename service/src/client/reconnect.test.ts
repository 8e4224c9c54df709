import { describe, expect, it } from 'vitest';
import { CloseCode } from '../features/realtime/protocol.js';
import { planReconnect } from './reconnect.js';

const backoff = { baseMs: 1_000, maxMs: 30_000 };
const delays = (code: number, attempt: number) =>
  Array.from({ length: 50 }, () => planReconnect(code, attempt, backoff).delayMs);

function expectWithin(values: number[], low: number, high: number): void {
  expect(Math.min(...values)).toBeGreaterThanOrEqual(low);
  expect(Math.max(...values)).toBeLessThanOrEqual(high);
}

describe('when the live connection reconnects', () => {
  it('reconnects at once, with a little jitter, when the server drains (1001), however often it failed before', () => {
    expect(Math.max(...delays(CloseCode.GOING_AWAY, 6))).toBeLessThan(250);
    expect(new Set(delays(CloseCode.GOING_AWAY, 0)).size).toBeGreaterThan(1);
  });

  it('refreshes the credentials first, then reconnects at once, after 4401', () => {
    const plan = planReconnect(CloseCode.CREDENTIALS_EXPIRED, 3, backoff);
    expect(plan.refreshCredentials).toBe(true);
    expect(plan.delayMs).toBeLessThan(250);
  });

  it('backs off exponentially, jittered and capped, after a failure or a slow-consumer close (1013)', () => {
    for (const code of [1006, CloseCode.INTERNAL_ERROR, CloseCode.TRY_AGAIN_LATER]) {
      expect(planReconnect(code, 0, backoff).refreshCredentials).toBe(false);
      expectWithin(delays(code, 0), 500, 1_000);
      expectWithin(delays(code, 3), 4_000, 8_000);
      expectWithin(delays(code, 20), 15_000, 30_000);
      expect(new Set(delays(code, 3)).size).toBeGreaterThan(1);
    }
  });

  it('waits at least half the cap after sending too many frames (1008), even the first time', () => {
    expectWithin(delays(CloseCode.POLICY_VIOLATION, 0), 15_000, 30_000);
  });
});
