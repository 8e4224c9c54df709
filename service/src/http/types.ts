import type { RequestIdVariables } from 'hono/request-id';
import type { Logger } from '../platform/logger.js';

/** Variables every request carries through the middleware chain. */
export interface AppEnv {
  Variables: RequestIdVariables & {
    log: Logger;
  };
}
