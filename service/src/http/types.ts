import type { RequestIdVariables } from 'hono/request-id';
import type { Principal } from '../features/auth/tokens.js';
import type { Logger } from '../platform/logger.js';

/** Variables every request carries through the middleware chain. */
export interface AppEnv {
  Variables: RequestIdVariables & {
    log: Logger;
    /** Set by requireAuth. */
    principal: Principal;
  };
}
