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
  /** When the shared window ends (epoch ms, never later than Redis's own end); the lease dies with it. */
  resetAt: number;
  /** The last lease's size: the next one doubles it while the key stays busy. */
  size: number;
  /**
   * The lease being taken now; concurrent requests for the key wait for it instead of asking too.
   * It settles with the failure, if the counter could not be reached, so they fail at once as well.
   */
  taking?: Promise<Error | undefined>;
  /** How many requests are waiting for `taking`: the next lease is at least that large. */
  waiting: number;
}

// A busy key leases up to 64 points per Redis round trip, and never more than an eighth of what is
// left: the points one process holds are at most a small part of the window, and the last ones are
// handed out one at a time.
const MAX_LEASE = 64;
const LEASE_SHARE = 8;
const REWARD_MARGIN_MS = 1_000;

/**
 * A rate limit shared through one Redis counter (rate-limiter-flexible), taken in leases: a process
 * takes points from the counter in blocks and spends them locally, so a busy key costs one Redis
 * round trip per block instead of one per request. A cold key leases one point at a time (exactly
 * the plain limiter); each further lease in the window doubles (or covers the requests that waited
 * for the last one), up to MAX_LEASE and 1/LEASE_SHARE of the counter's remainder.
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
        lease.waiting += 1;
        const failure = await lease.taking;
        if (failure) throw failure;
        continue;
      }
      if (lease && lease.sharedRemaining === 0) return decision(false, lease, now);
      await this.takeLease(key, lease);
    }
  }

  private async takeLease(key: string, last: Lease | undefined): Promise<void> {
    const demand = Math.max(last ? last.size * 2 : 1, last?.waiting ?? 0);
    const cap = last ? Math.floor(last.sharedRemaining / LEASE_SHARE) : 1;
    const size = Math.max(1, Math.min(MAX_LEASE, demand, cap));
    // Waiters see this placeholder (or the spent lease, marked) until the counter answers.
    const placeholder: Lease = last ?? { left: 0, sharedRemaining: 0, resetAt: 0, size: 0, waiting: 0 };
    placeholder.waiting = 0;
    const taking = this.run(() => this.take(key, size));
    placeholder.taking = taking.then(
      () => undefined,
      (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
    );
    this.leases.set(key, placeholder);
    // Only this call's own entry is replaced or dropped: the cache may have evicted the placeholder
    // meanwhile and another request started a lease of its own.
    const stillOurs = () => this.leases.peek(key) === placeholder;
    try {
      const lease = await taking;
      lease.waiting = placeholder.waiting;
      if (stillOurs()) this.leases.set(key, lease, { ttl: Math.max(1, lease.resetAt - Date.now()) });
    } catch (error) {
      if (stillOurs()) this.leases.delete(key);
      throw error;
    } finally {
      delete placeholder.taking;
    }
  }

  /** Takes `size` points, or as many as are left: what a lease over the limit took is given back. */
  private async take(key: string, size: number): Promise<Lease> {
    // The window's end is counted from before the request: locally it can only end early.
    const askedAt = Date.now();
    const result = await this.shared.consume(key, size).catch((rejection: unknown) => {
      if (rejection instanceof RateLimiterRes) return rejection;
      throw rejection;
    });
    const over = Math.max(0, result.consumedPoints - this.shared.points);
    const granted = Math.max(0, size - over);
    // Given back only well inside the window: a reward that reached Redis after the window expired
    // would start the next one below zero. Near the end the excess just lapses with the window.
    if (granted < size && result.msBeforeNext > REWARD_MARGIN_MS)
      await this.shared.reward(key, size - granted);
    return {
      left: granted,
      sharedRemaining: Math.max(0, result.remainingPoints),
      resetAt: askedAt + result.msBeforeNext,
      size: Math.max(1, granted),
      waiting: 0,
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
