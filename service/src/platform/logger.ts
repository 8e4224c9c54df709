import { AsyncLocalStorage } from 'node:async_hooks';
import { pino, type DestinationStream, type Logger } from 'pino';
import type { Config } from '../config.js';

export type { Logger };

interface RequestScope {
  reqId: string;
}

const requestScope = new AsyncLocalStorage<RequestScope>();
// Returned by the mixin outside a request: one shared object, so a line with no request allocates
// nothing, and the merge below recognises it and passes the line's own fields through untouched.
const OUTSIDE_REQUEST: Readonly<Record<string, never>> = Object.freeze({});

/**
 * Runs `work` (a request) so that every line logged meanwhile carries `reqId`, whichever logger
 * writes it: adapters in platform/ log through the root logger and know nothing of requests.
 */
export function withRequestId<T>(reqId: string, work: () => T): T {
  return requestScope.run({ reqId }, work);
}

/** JSON logs on stdout; every line carries the instance id, lines logged during a request also its id. */
export function createLogger(
  config: Pick<Config, 'logLevel' | 'instanceId'>,
  process: 'api' | 'worker' | 'migrate' | 'jobs',
  destination?: DestinationStream,
): Logger {
  return pino(
    {
      level: config.logLevel,
      base: { process, instance: config.instanceId },
      timestamp: pino.stdTimeFunctions.isoTime,
      mixin: () => requestScope.getStore() ?? OUTSIDE_REQUEST,
      // pino's default merge writes the line's fields into the mixin's object: never into the scope.
      mixinMergeStrategy: (line, scope) => (scope === OUTSIDE_REQUEST ? line : { ...scope, ...line }),
      redact: {
        paths: ['req.headers.authorization', 'req.headers.cookie', '*.password', '*.token'],
        censor: '[redacted]',
      },
    },
    destination,
  );
}
