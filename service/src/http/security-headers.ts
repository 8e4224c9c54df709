import type { MiddlewareHandler } from 'hono';
import { setResponseHeader } from './response-headers.js';

/**
 * The browser-facing headers a JSON API needs: no framing, no sniffing, no referrer, HTTPS only.
 * Hono's `secureHeaders` sets them after the handler, which makes @hono/node-server rebuild the
 * finished Response (undici validates every header again). Set before the handler on Node's own
 * response (setResponseHeader), every response carries them, errors and replays included.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'",
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Referrer-Policy': 'no-referrer',
  'Strict-Transport-Security': 'max-age=31536000; includeSubDomains',
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
};
const entries = Object.entries(SECURITY_HEADERS);

export function securityHeaders(): MiddlewareHandler {
  return (c, next) => {
    for (const [name, value] of entries) setResponseHeader(c, name, value);
    return next();
  };
}
