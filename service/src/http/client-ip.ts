import { getConnInfo } from '@hono/node-server/conninfo';
import type { Context } from 'hono';

/**
 * The client's address. Behind `trustedProxyHops` proxies that each append to X-Forwarded-For, the
 * client is that many entries from the end; anything further left was written by the client itself
 * and cannot be trusted.
 */
export function clientIp(c: Context, trustedProxyHops: number): string {
  if (trustedProxyHops > 0) {
    const forwarded = (c.req.header('x-forwarded-for') ?? '').split(',').map((part) => part.trim());
    const candidate = forwarded[forwarded.length - trustedProxyHops];
    if (candidate) return candidate;
  }
  try {
    return getConnInfo(c).remote.address ?? 'unknown';
  } catch {
    return 'unknown'; // no socket, e.g. app.request() in a test
  }
}
