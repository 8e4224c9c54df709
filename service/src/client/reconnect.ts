import { CloseCode } from '../features/realtime/protocol.js';
import { backoffDelayMs, type Backoff } from './backoff.js';

export const DEFAULT_RECONNECT: Backoff = { baseMs: 500, maxMs: 30_000 };

/**
 * A draining server already spreads its sockets' closes over its drain window (REALTIME_DRAIN_WINDOW_MS),
 * so a little jitter is enough to keep this client's reconnect from landing with another's.
 */
const PROMPT_JITTER_MS = 250;

export interface ReconnectPlan {
  delayMs: number;
  /** The credential behind the socket expired or was revoked: refresh it before reconnecting. */
  refreshCredentials: boolean;
}

/** What to do after a socket closed with `code` (CloseCode in protocol.ts), on the `attempt`-th retry. */
export function planReconnect(
  code: number,
  attempt: number,
  backoff: Backoff = DEFAULT_RECONNECT,
): ReconnectPlan {
  const prompt = Math.random() * PROMPT_JITTER_MS;
  switch (code) {
    case CloseCode.GOING_AWAY:
      return { delayMs: prompt, refreshCredentials: false };
    case CloseCode.CREDENTIALS_EXPIRED:
      return { delayMs: prompt, refreshCredentials: true };
    case CloseCode.POLICY_VIOLATION:
      // Sent too many frames: coming straight back would repeat it, so wait at least half the cap.
      return {
        delayMs: Math.max(backoff.maxMs / 2, backoffDelayMs(attempt, backoff)),
        refreshCredentials: false,
      };
    default:
      // 1013 (read too slowly), a network failure, a server error: the server may be struggling.
      return { delayMs: backoffDelayMs(attempt, backoff), refreshCredentials: false };
  }
}
