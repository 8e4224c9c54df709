/**
 * What the live connection needs of a WebSocket: the browser's global one, or on Node 20 (which
 * has none) the `ws` package's, passed as `new ParleyClient({ baseUrl, WebSocket })`.
 */
export interface WebSocketLike {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open', listener: () => void): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  addEventListener(type: 'close', listener: (event: { code: number; reason: string }) => void): void;
  addEventListener(type: 'error', listener: () => void): void;
}

export type WebSocketConstructor = new (url: string, protocols: string[]) => WebSocketLike;
