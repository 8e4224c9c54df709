import { decodeJwt } from 'jose';
import { WS_PATH } from '../features/realtime/protocol.js';
import { backoffDelayMs, sleep, type Backoff } from './backoff.js';
import { LiveConnection, type LiveOptions, type LiveSession } from './live-connection.js';
import { ParleyError } from './problem.js';
import type {
  Message,
  Page,
  RealtimeTicket,
  Room,
  RoomSummary,
  TokenPair,
  User,
  Visibility,
} from './types.js';
import type { WebSocketConstructor } from './web-socket.js';

export interface ParleyClientOptions {
  /** The API's origin, e.g. `https://chat.example.com`; the live connection uses the same origin. */
  baseUrl: string;
  /** The WebSocket constructor: the browser's by default; on Node 20, `WebSocket` from `ws`. */
  WebSocket?: WebSocketConstructor;
  /** Tokens from an earlier session (as `onTokens` reported them). */
  tokens?: TokenPair;
  /** Called whenever the tokens change (login, each refresh, logout), to keep them somewhere. */
  onTokens?: (tokens: TokenPair | undefined) => void;
}

export interface PostOptions {
  /** Sent as the Idempotency-Key on every attempt; a fresh UUID by default. */
  idempotencyKey?: string;
  /** Attempts in all, the first included (4 by default). */
  attempts?: number;
  /** An attempt that has not been answered in this long is abandoned and retried (10 s). */
  attemptTimeoutMs?: number;
}

interface RequestInit {
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Sends the access token, and refreshes it once on a 401 (default true). */
  authenticated?: boolean;
}

const POST_BACKOFF: Backoff = { baseMs: 250, maxMs: 5_000 };

/**
 * A post may succeed later after a network failure, a timeout, a 5xx, a 429, or a 409 (its key is
 * still in flight): the Idempotency-Key makes the retry safe, since the API answers a repeat with
 * the stored message. Other refusals would only be refused again.
 */
function isWorthRetrying(error: unknown): boolean {
  if (error instanceof ParleyError)
    return error.status >= 500 || error.status === 429 || error.status === 409;
  // fetch rejects with a TypeError when the network fails, and AbortSignal.timeout with a TimeoutError.
  return error instanceof TypeError || (error instanceof Error && error.name === 'TimeoutError');
}

/** Parley's HTTP API, typed, and its live connection (`live()`); for browsers and Node alike. */
export class ParleyClient {
  private readonly baseUrl: string;
  private readonly WebSocket: WebSocketConstructor | undefined;
  private tokenPair: TokenPair | undefined;
  private refreshing: Promise<TokenPair> | undefined;
  private readonly connections = new Set<LiveConnection>();

  constructor(private readonly options: ParleyClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.WebSocket = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    this.tokenPair = options.tokens;
  }

  get tokens(): TokenPair | undefined {
    return this.tokenPair;
  }

  /** The signed-in user's id (the access token's subject). */
  get userId(): string | undefined {
    return this.tokenPair === undefined ? undefined : decodeJwt(this.tokenPair.accessToken).sub;
  }

  register(username: string, password: string): Promise<User> {
    return this.request('POST', '/v1/auth/register', { body: { username, password }, authenticated: false });
  }

  async login(username: string, password: string): Promise<TokenPair> {
    const tokens = await this.request<TokenPair>('POST', '/v1/auth/login', {
      body: { username, password },
      authenticated: false,
    });
    this.setTokens(tokens);
    return tokens;
  }

  /**
   * Trades the refresh token for new tokens. Concurrent callers share one request: a refresh token
   * works once, and presenting it twice makes the server revoke the whole session.
   */
  refresh(): Promise<TokenPair> {
    this.refreshing ??= this.refreshOnce().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  /** Ends this session on the server (its tokens stop working on every process) and its live connections. */
  async logout(): Promise<void> {
    for (const connection of [...this.connections]) connection.close();
    await this.request<void>('POST', '/v1/auth/logout');
    this.setTokens(undefined);
  }

  createRoom(room: { name: string; visibility?: Visibility }): Promise<Room> {
    return this.request('POST', '/v1/rooms', { body: { visibility: 'public', ...room } });
  }

  listRooms(page: { before?: string; limit?: number } = {}): Promise<Page<RoomSummary>> {
    return this.request('GET', `/v1/rooms${query(page)}`);
  }

  getRoom(roomId: string): Promise<Room> {
    return this.request('GET', `/v1/rooms/${encodeURIComponent(roomId)}`);
  }

  /** Joins a public room; with `userId`, a member adds that user (how a private room is shared). */
  joinRoom(roomId: string, invite: { userId?: string } = {}): Promise<Room> {
    return this.request('POST', `/v1/rooms/${encodeURIComponent(roomId)}/members`, {
      body: invite.userId === undefined ? undefined : invite,
    });
  }

  leaveRoom(roomId: string): Promise<void> {
    return this.request('DELETE', `/v1/rooms/${encodeURIComponent(roomId)}/members/me`);
  }

  /**
   * Posts a message, retrying a failed attempt with the same Idempotency-Key (so the message is
   * stored once however often it is sent), after a jittered backoff or the Retry-After the API asked for.
   */
  async postMessage(roomId: string, body: string, options: PostOptions = {}): Promise<Message> {
    const { idempotencyKey = crypto.randomUUID(), attempts = 4, attemptTimeoutMs = 10_000 } = options;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.request<Message>('POST', `/v1/rooms/${encodeURIComponent(roomId)}/messages`, {
          body: { body },
          headers: { 'Idempotency-Key': idempotencyKey },
          signal: AbortSignal.timeout(attemptTimeoutMs),
        });
      } catch (error) {
        if (attempt >= attempts || !isWorthRetrying(error)) throw error;
        const askedMs = error instanceof ParleyError ? (error.retryAfter ?? 0) * 1000 : 0;
        await sleep(Math.max(askedMs, backoffDelayMs(attempt - 1, POST_BACKOFF)));
      }
    }
  }

  /** A page of the room's messages, newest first: older ones with `before`, newer ones with `after`. */
  listMessages(
    roomId: string,
    page: { before?: string; after?: string; limit?: number } = {},
  ): Promise<Page<Message>> {
    return this.request('GET', `/v1/rooms/${encodeURIComponent(roomId)}/messages${query(page)}`);
  }

  /** A single-use ticket that opens one live connection (live() asks for them itself). */
  createTicket(): Promise<RealtimeTicket> {
    return this.request('POST', '/v1/realtime/tickets');
  }

  /** Opens the live connection: rooms' events as they happen, resumed across reconnects. */
  live(options: LiveOptions = {}): LiveConnection {
    const WebSocket = this.WebSocket;
    if (WebSocket === undefined)
      throw new Error(
        'no WebSocket here: pass one, e.g. new ParleyClient({ baseUrl, WebSocket }) with `ws` on Node 20',
      );
    const session: LiveSession = {
      url: `${this.baseUrl.replace(/^http/, 'ws')}${WS_PATH}`,
      WebSocket,
      accessToken: () => this.tokenPair?.accessToken,
      userId: () => this.userId,
      createTicket: () => this.createTicket(),
      refreshUnlessReplaced: (used) => this.refreshUnlessReplaced(used),
      forget: (connection) => this.connections.delete(connection),
    };
    const connection = new LiveConnection(session, options);
    this.connections.add(connection);
    return connection;
  }

  private async refreshOnce(): Promise<TokenPair> {
    const held = this.tokenPair;
    if (held === undefined) throw new Error('not signed in: there is no refresh token');
    try {
      const tokens = await this.request<TokenPair>('POST', '/v1/auth/refresh', {
        body: { refreshToken: held.refreshToken },
        authenticated: false,
      });
      this.setTokens(tokens);
      return tokens;
    } catch (error) {
      // The session is over (revoked, expired, or its token reused): the tokens are of no more use.
      if (error instanceof ParleyError && error.status === 401 && this.tokenPair === held)
        this.setTokens(undefined);
      throw error;
    }
  }

  private async refreshUnlessReplaced(used: string | undefined): Promise<void> {
    if (this.tokenPair !== undefined && this.tokenPair.accessToken !== used) return;
    await this.refresh();
  }

  private setTokens(tokens: TokenPair | undefined): void {
    this.tokenPair = tokens;
    this.options.onTokens?.(tokens);
  }

  private async request<T>(method: string, path: string, init: RequestInit = {}): Promise<T> {
    const authenticated = init.authenticated ?? true;
    const sent = authenticated ? this.tokenPair?.accessToken : undefined;
    let response = await this.fetch(method, path, init, sent);
    if (response.status === 401 && sent !== undefined) {
      await response.body?.cancel();
      await this.refreshUnlessReplaced(sent);
      response = await this.fetch(method, path, init, this.tokenPair?.accessToken);
    }
    if (!response.ok) throw await ParleyError.fromResponse(response);
    if (response.status === 204) return undefined as T;
    return (await response.json()) as T;
  }

  private fetch(
    method: string,
    path: string,
    init: RequestInit,
    token: string | undefined,
  ): Promise<Response> {
    const headers: Record<string, string> = { accept: 'application/json', ...init.headers };
    if (token !== undefined) headers.authorization = `Bearer ${token}`;
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    return fetch(`${this.baseUrl}${path}`, {
      method,
      headers,
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
      signal: init.signal,
    });
  }
}

function query(params: Record<string, string | number | undefined>): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params))
    if (value !== undefined) search.set(name, String(value));
  const text = search.toString();
  return text === '' ? '' : `?${text}`;
}
