import { hash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Principal } from '../../domain/principal.js';
import type { Breaker } from '../../platform/breakers.js';

// Only a hash is kept: a dump of Redis must not hold usable tickets.
const ticketKey = (ticket: string) => `parley:ws:ticket:${hash('sha256', ticket, 'hex')}`;
const TICKET = /^[A-Za-z0-9_-]{43}$/;

/**
 * Single-use tickets that let a browser open the live connection: it cannot set an Authorization
 * header on a WebSocket upgrade, and a token in the URL would end up in logs. A ticket is bound to
 * the principal that asked for it (its user, session and token expiry), lives `ttlSeconds`, and the
 * upgrade consumes it (GETDEL: one upgrade, on any process, ever gets it).
 */
export function ticketStore(redis: Redis, breaker: Breaker, ttlSeconds: number) {
  return {
    ttlSeconds,

    async issue(principal: Principal): Promise<string> {
      const ticket = randomBytes(32).toString('base64url');
      await breaker.run(() => redis.set(ticketKey(ticket), JSON.stringify(principal), 'EX', ttlSeconds));
      return ticket;
    },

    /** The principal the ticket was issued to, once; undefined for a used, expired or made-up one. */
    async consume(ticket: string): Promise<Principal | undefined> {
      if (!TICKET.test(ticket)) return undefined;
      const stored = await breaker.run(() => redis.getdel(ticketKey(ticket)));
      return stored === null ? undefined : (JSON.parse(stored) as Principal);
    },
  };
}

export type TicketStore = ReturnType<typeof ticketStore>;
