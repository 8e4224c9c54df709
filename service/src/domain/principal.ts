/** Who a request acts for: the subject of a verified access token. */
export interface Principal {
  userId: string;
  /** Session id: the refresh-token family this access token belongs to. */
  sessionId: string;
  /** Expiry, seconds since the epoch. */
  exp: number;
}
