import { LRUCache } from 'lru-cache';
import { RateLimiterRes, type RateLimiterRedis } from 'rate-limiter-flexible';

export interface Decision {
  allowed: boolean;
  /** Points of the window not yet used, as this process knows: the shared counter's plus its own. */
  remaining: number;
  resetSeconds: number;
}

interface Lease {
  /** Points taken from the shared counter and not yet spent by this process. */
  left: number;
  /** What the shared counter had left when the last lease was taken. */
  sharedRemaining: number;
  /** When the shared window ends (epoch ms); the lease dies with it. */
  resetAt: number;
  /** The last lease's size: the next one doubles it while the key stays busy. */
  size: number;
  /** The lease being taken now; concurrent requests for the key wait for it instead of asking too. */
  taking?: Promise<unknown>;
}

// A busy key leases up to 64 points per Redis round trip, and never more than an eighth of what is
// left: the points one process holds are at most a small part of the window, and the last ones are
// handed out one at a time.
const MAX_LEASE = 64;
const LEASE_SHARE = 8;

/**
 * A rate limit shared through one Redis counter (rate-limiter-flexible), taken in leases: a process
 * takes points from the counter in blocks and spends them locally, so a busy key costs one Redis
 * round trip per block instead of one per request. A cold key leases one point at a time (exactly
 * the plain limiter); each further lease in the window doubles, up to MAX_LEASE and 1/LEASE_SHARE
 * of the counter's remainder.
 *
 * What holds: every request allowed anywhere was counted in Redis first, so all processes together
 * never allow more than the limit in a window. What it costs: points leased by a process that then
 * stops receiving the key's requests go unused until the window ends (at most one lease per process,
 * an eighth of the remainder or less). A key found spent is refused locally until its window ends,
 * with no round trip.
 */
export class LeasedLimiter {
  private readonly leases = new LRUCache<string, Lease>({ max: 100_000 });

  constructor(
    private readonly shared: RateLimiterRedis,
    /** Runs each Redis call (the Redis breaker), so an outage fails fast. */
    private readonly run: <T>(call: () => Promise<T>) => Promise<T>,
  ) {}

  async consume(key: string): Promise<Decision> {
    for (;;) {
      const now = Date.now();
      let lease = this.leases.get(key);
      if (lease && !lease.taking && lease.resetAt <= now) lease = undefined; // the window is over
      if (lease && lease.left > 0) {
        lease.left -= 1;
        return decision(true, lease, now);
      }
      if (lease?.taking) {
        await lease.taking;
        continue;
      }
      if (lease && lease.sharedRemaining === 0) return decision(false, lease, now);
      await this.takeLease(key, lease);
    }
  }

  private async takeLease(key: string, last: Lease | undefined): Promise<void> {
    const size = last
      ? Math.max(1, Math.min(MAX_LEASE, last.size * 2, Math.floor(last.sharedRemaining / LEASE_SHARE)))
      : 1;
    // Waiters see this placeholder (or the spent lease, marked) until the counter answers.
    const waiting: Lease = last ?? { left: 0, sharedRemaining: 0, resetAt: 0, size: 0 };
    const taking = this.run(() => this.take(key, size));
    waiting.taking = taking.catch(() => undefined);
    this.leases.set(key, waiting);
    try {
      const lease = await taking;
      this.leases.set(key, lease, { ttl: Math.max(1, lease.resetAt - Date.now()) });
    } catch (error) {
      this.leases.delete(key);
      throw error;
    } finally {
      delete waiting.taking;
    }
  }

  /** Takes `size` points, or as many as are left: what a lease over the limit took is given back. */
  private async take(key: string, size: number): Promise<Lease> {
    const result = await this.shared.consume(key, size).catch((rejection: unknown) => {
      if (rejection instanceof RateLimiterRes) return rejection;
      throw rejection;
    });
    const over = Math.max(0, result.consumedPoints - this.shared.points);
    const granted = Math.max(0, size - over);
    if (granted < size) await this.shared.reward(key, size - granted);
    return {
      left: granted,
      sharedRemaining: Math.max(0, result.remainingPoints),
      resetAt: Date.now() + result.msBeforeNext,
      size: Math.max(1, granted),
    };
  }
}

function decision(allowed: boolean, lease: Lease, now: number): Decision {
  return {
    allowed,
    remaining: lease.sharedRemaining + lease.left,
    resetSeconds: Math.max(1, Math.ceil((lease.resetAt - now) / 1000)),
  };
}
