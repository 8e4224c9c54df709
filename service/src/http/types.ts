import type { RequestIdVariables } from 'hono/request-id';
import type { Principal } from '../domain/principal.js';
import type { Logger } from '../platform/logger.js';
import type { IdempotentRequest } from './idempotency.js';

/** Variables every request carries through the middleware chain. */
export interface AppEnv {
  Variables: RequestIdVariables & {
    /**
     * The logger for this request's lines. The request id reaches them through the logger's mixin
     * (withRequestId), so this is the app's logger; handlers and the error handler, which has no
     * other way to it, take it from here.
     */
    log: Logger;
    /** Set by requireAuth. */
    principal: Principal;
    /** Set by the idempotency middleware, on the routes behind it. */
    idempotentRequest: IdempotentRequest;
  };
}
