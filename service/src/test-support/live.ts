import { request } from 'node:http';
import WebSocket from 'ws';
import { PROTOCOL_VERSION, ServerFrame, WS_PATH } from '../features/realtime/protocol.js';

export interface SocketOptions {
  token?: string;
  /** Subprotocols to offer; `parley.v1` alone by default. */
  protocols?: string[];
  origin?: string;
  /** Passed to ws, e.g. `autoPong: false` for a peer that never answers pings. */
  autoPong?: boolean;
}

/** A raw protocol client for the tests: every server frame, validated against the protocol. */
export interface LiveSocket {
  ws: WebSocket;
  frames: ServerFrame[];
  /** The frames not matching the protocol's schemas (there must be none). */
  invalid: unknown[];
  send(frame: unknown): void;
  /** The first frame (already received or still to come) that `match` accepts. */
  next<T extends ServerFrame['type']>(
    type: T,
    match?: (frame: Extract<ServerFrame, { type: T }>) => boolean,
    timeoutMs?: number,
  ): Promise<Extract<ServerFrame, { type: T }>>;
  /** The ids of the message.created frames of `roomId`, in the order they came. */
  messageIds(roomId: string): string[];
  closed: Promise<{ code: number; reason: string }>;
  close(): void;
}

/** Opens `GET /v1/ws` on an API process; resolves once the socket is open. */
export async function openSocket(port: number, options: SocketOptions = {}): Promise<LiveSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}${WS_PATH}`, options.protocols ?? [PROTOCOL_VERSION], {
    headers: options.token ? { authorization: `Bearer ${options.token}` } : {},
    ...(options.origin ? { origin: options.origin } : {}),
    autoPong: options.autoPong ?? true,
  });
  const frames: ServerFrame[] = [];
  const invalid: unknown[] = [];
  const waiters = new Set<() => void>();
  ws.on('message', (data) => {
    const parsed = ServerFrame.safeParse(JSON.parse(data.toString()));
    if (parsed.success) frames.push(parsed.data);
    else invalid.push(JSON.parse(data.toString()));
    for (const wake of waiters) wake();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_request, response) =>
      reject(new Error(`upgrade answered ${response.statusCode}`)),
    );
  });
  return {
    ws,
    frames,
    invalid,
    send: (frame) => ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame)),
    next: (type, match = () => true, timeoutMs = 10_000) =>
      new Promise((resolve, reject) => {
        const find = () =>
          frames.find((frame) => frame.type === type && match(frame as never)) as
            Extract<ServerFrame, { type: typeof type }> | undefined;
        const found = find();
        if (found) return resolve(found);
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(`no ${type} frame within ${timeoutMs} ms; got ${JSON.stringify(frames.slice(-5))}`),
          );
        }, timeoutMs);
        const check = () => {
          const frame = find();
          if (!frame) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(frame);
        };
        waiters.add(check);
      }),
    messageIds: (roomId) =>
      frames.flatMap((frame) =>
        frame.type === 'message.created' && frame.roomId === roomId ? [frame.message.id] : [],
      ),
    closed,
    close: () => ws.close(),
  };
}

export interface UpgradeAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown>;
}

/**
 * Sends a WebSocket upgrade request and returns the HTTP answer, for upgrades that must be refused
 * (a 101 answer is reported as status 101 and its socket closed).
 */
export function upgradeAnswer(
  port: number,
  headers: Record<string, string>,
  path: string = WS_PATH,
): Promise<UpgradeAnswer> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port,
      path,
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
        ...headers,
      },
    });
    req.on('response', (response) => {
      let text = '';
      response.on('data', (chunk: Buffer) => (text += chunk.toString()));
      response.on('end', () =>
        resolve({
          status: response.statusCode ?? 0,
          headers: response.headers,
          body: text ? JSON.parse(text) : {},
        }),
      );
    });
    req.on('upgrade', (response, socket) => {
      socket.destroy();
      resolve({ status: response.statusCode ?? 101, headers: response.headers, body: {} });
    });
    req.on('error', reject);
    req.end();
  });
}
