import type { HttpBindings } from '@hono/node-server';
import type { Context } from 'hono';

/**
 * Sets a header of this request's response. On node:http it goes straight onto Node's response,
 * where writeHead merges it with the headers of whatever Response the app returns (a handler's, an
 * error's, a replay's). Hono's `c.header` would instead turn the response's headers into a web
 * `Headers` object, which undici validates on every set and @hono/node-server converts back on every
 * response: with six security headers, the request id and the rate-limit headers on every answer,
 * a large share of a cached read's cost (docs/benchmarks.md). Without a
 * Node response (`app.request` in a test) it falls back to `c.header`, same result on the wire.
 */
export function setResponseHeader(c: Context, name: string, value: string): void {
  const outgoing = (c.env as Partial<HttpBindings> | undefined)?.outgoing;
  if (outgoing && !outgoing.headersSent) outgoing.setHeader(name, value);
  else c.header(name, value);
}
