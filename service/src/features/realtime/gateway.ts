import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Redis } from 'ioredis';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { RealtimeConfig } from '../../config.js';
import { NotFound } from '../../domain/errors.js';
import type { Principal } from '../../domain/principal.js';
import type { Breaker } from '../../platform/breakers.js';
import type { Logger } from '../../platform/logger.js';
import type { PubSub } from '../../platform/pubsub.js';
import type { TokenService } from '../auth/tokens.js';
import type { MessagesRepository } from '../messages/repository.js';
import type { RoomsService } from '../rooms/service.js';
import { Connection, Subscription } from './connection.js';
import { Hubs, messageDelivery, type Delivery } from './hub.js';
import type { RealtimeMetrics } from './metrics.js';
import { ClientFrame, CloseCode, PROTOCOL_VERSION } from './protocol.js';
import { userSockets } from './user-sockets.js';

export interface GatewayDeps {
  config: RealtimeConfig;
  instanceId: string;
  tokens: TokenService;
  rooms: Pick<RoomsService, 'visibleRoom'>;
  messages: Pick<MessagesRepository, 'lastSeq' | 'fromSeq' | 'cursor' | 'idAtSeq'>;
  pubsub: PubSub;
  redis: Redis;
  redisBreaker: Breaker;
  metrics: RealtimeMetrics;
  logger: Logger;
}

// An event that arrives before its predecessor is usually a publish from another pod overtaken on
// the way; this long it waits for the predecessor before MySQL is asked for it.
const GAP_WAIT_MS = 100;
const SUBSCRIBE_TIMEOUT_MS = 5_000;

/**
 * The live side of the API: accepts WebSocket upgrades (admitted by routes.ts), runs the protocol
 * of protocol.ts on each socket, and delivers each room's events through its hub. One per process.
 */
export function createGateway(deps: GatewayDeps) {
  const { config, metrics, logger } = deps;
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: config.maxFrameBytes,
    // Frames are small JSON; compression would cost CPU on every send of a fan-out.
    perMessageDeflate: false,
    clientTracking: false,
    handleProtocols: (offered) => (offered.has(PROTOCOL_VERSION) ? PROTOCOL_VERSION : false),
  });
  const hubs = new Hubs({
    pubsub: deps.pubsub,
    repository: deps.messages,
    metrics,
    logger,
    instanceId: deps.instanceId,
    gapWaitMs: GAP_WAIT_MS,
    maxCatchUp: config.resumeMaxMessages,
    subscribeTimeoutMs: SUBSCRIBE_TIMEOUT_MS,
  });
  const sockets = userSockets(
    deps.redis,
    deps.redisBreaker,
    config.maxSocketsPerUser,
    3 * config.heartbeatMs,
  );
  const connections = new Set<Connection>();
  let draining = false;
  let subscriptionCount = 0;

  deps.tokens.onSessionRevoked((sessionId) => {
    for (const connection of connections) {
      if (connection.principal.sessionId === sessionId)
        connection.close(CloseCode.CREDENTIALS_EXPIRED, 'the session was revoked');
    }
  });

  // A peer that has not answered the previous ping by the next one is gone: terminated within two
  // intervals. The same tick renews this process's sockets in the per-user count.
  const heartbeat = setInterval(() => {
    for (const connection of connections) {
      if (!connection.alive) {
        connection.ws.terminate();
        continue;
      }
      connection.alive = false;
      connection.ws.ping();
    }
    const open = [...connections].map((c) => ({ userId: c.userId, socketId: c.id }));
    sockets
      .renew(open)
      .catch((error: unknown) => logger.warn({ err: error }, 'renewing socket leases failed'));
  }, config.heartbeatMs);
  heartbeat.unref();

  function setSubscriptionCount(delta: number) {
    subscriptionCount += delta;
    metrics.subscriptions.set(subscriptionCount);
  }

  function endSubscription(subscription: Subscription): void {
    if (subscription.ended) return;
    subscription.ended = true;
    if (subscription.hub) {
      subscription.hub.members.delete(subscription);
      hubs.release(subscription.hub);
    }
    const { subscriptions } = subscription.connection;
    if (subscriptions.get(subscription.roomId) === subscription) subscriptions.delete(subscription.roomId);
    setSubscriptionCount(-1);
  }

  /**
   * The messages after `after` that the socket missed, or why they cannot be replayed. Read from the
   * primary after the subscription started buffering live events, so nothing falls in between.
   */
  async function replayAfter(
    roomId: string,
    after: number,
  ): Promise<
    { replay: Delivery[]; upTo: number } | { resync: 'unknown-cursor' | 'too-old' | 'too-far-behind' }
  > {
    const cursor = await deps.messages.cursor(roomId, after);
    if (!cursor) return { resync: 'unknown-cursor' };
    const missed = await deps.messages.fromSeq(roomId, cursor.seq + 1, config.resumeMaxMessages + 1);
    if (missed.length > config.resumeMaxMessages) return { resync: 'too-far-behind' };
    // Judged on what was missed, not on the cursor: a room that was quiet for a day resumes at once.
    const oldest = missed[0] && Date.parse(missed[0].message.createdAt);
    if (oldest !== undefined && Date.now() - oldest > config.resumeMaxAgeSeconds * 1000)
      return { resync: 'too-old' };
    return {
      replay: missed.map((m) => messageDelivery(m, deps.instanceId)),
      upTo: missed.at(-1)?.seq ?? cursor.seq,
    };
  }

  async function subscribe(connection: Connection, roomId: string, after: number | undefined): Promise<void> {
    const previous = connection.subscriptions.get(roomId);
    if (previous) endSubscription(previous); // a subscribe again resumes from its own `after`
    if (connection.subscriptions.size >= config.maxSubscriptions) {
      connection.sendFrame({
        type: 'error',
        code: 'too-many-subscriptions',
        detail: `a connection may subscribe to ${config.maxSubscriptions} rooms at most`,
        roomId,
      });
      return;
    }
    // Registered at once, so that a close, an unsubscribe or another subscribe of the room can end
    // it while it waits for the hub.
    const subscription = new Subscription(connection, roomId, endSubscription);
    connection.subscriptions.set(roomId, subscription);
    setSubscriptionCount(1);
    let hub;
    try {
      hub = await hubs.acquire(roomId);
    } catch (error) {
      endSubscription(subscription);
      logger.warn({ err: error, roomId }, 'subscribing to a room failed');
      connection.sendFrame({
        type: 'error',
        code: 'unavailable',
        detail: 'live delivery is unavailable; retry',
        roomId,
      });
      return;
    }
    if (subscription.ended) {
      hubs.release(hub);
      return;
    }
    // Buffering from here: whatever the hub delivers while the room is authorised and the replay
    // read is kept, and sent after the replay.
    subscription.attach(hub);
    try {
      // Authorised as a read of the room is, and only now: a leave committed before this check is
      // seen by it, and one committed after it reaches the subscription as member.left.
      await deps.rooms.visibleRoom(connection.userId, roomId);
      const resumed = after === undefined ? undefined : await replayAfter(roomId, after);
      const recovered = resumed !== undefined && 'replay' in resumed;
      const startsAfter = recovered ? resumed.upTo : subscription.position;
      const lastMessageId = await deps.messages.idAtSeq(roomId, startsAfter);
      if (subscription.ended || !connection.isOpen) return;
      connection.sendFrame({
        type: 'subscribed',
        roomId,
        recovered,
        replayed: recovered ? resumed.replay.length : 0,
        lastMessageId: lastMessageId === undefined ? null : String(lastMessageId),
      });
      if (resumed && 'resync' in resumed) {
        metrics.resumes.inc({ outcome: 'resync' });
        metrics.resyncs.inc({ reason: resumed.resync });
        connection.sendFrame({ type: 'resync', roomId, reason: resumed.resync });
      } else if (recovered) {
        metrics.resumes.inc({ outcome: 'recovered' });
        metrics.replayed.observe(resumed.replay.length);
      }
      subscription.goLive(recovered ? resumed.upTo : undefined, recovered ? resumed.replay : []);
    } catch (error) {
      endSubscription(subscription);
      if (error instanceof NotFound) {
        connection.sendFrame({ type: 'error', code: 'not-found', detail: error.message, roomId });
      } else {
        logger.warn({ err: error, roomId }, 'subscribing to a room failed');
        connection.sendFrame({
          type: 'error',
          code: 'unavailable',
          detail: 'the room cannot be read now; retry',
          roomId,
        });
      }
    }
  }

  function onFrame(connection: Connection, data: RawData, isBinary: boolean): void {
    if (isBinary) {
      connection.close(CloseCode.UNSUPPORTED_DATA, 'frames are JSON text');
      return;
    }
    if (!connection.takeFrameToken()) {
      connection.close(CloseCode.POLICY_VIOLATION, `more than ${config.maxFramesPerSecond} frames a second`);
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(data.toString());
    } catch {
      connection.sendFrame({ type: 'error', code: 'bad-frame', detail: 'the frame is not JSON' });
      return;
    }
    const frame = ClientFrame.safeParse(parsed);
    if (!frame.success) {
      const detail = frame.error.issues.map(
        (issue) => `${issue.path.join('.') || 'frame'}: ${issue.message}`,
      );
      const roomId = (parsed as { roomId?: unknown } | null)?.roomId;
      connection.sendFrame({
        type: 'error',
        code: 'bad-frame',
        detail: detail.join('; '),
        ...(typeof roomId === 'string' && /^[0-9a-f-]{36}$/i.test(roomId) ? { roomId } : {}),
      });
      return;
    }
    switch (frame.data.type) {
      case 'subscribe':
        void subscribe(
          connection,
          frame.data.roomId,
          frame.data.after === undefined ? undefined : Number(frame.data.after),
        );
        return;
      case 'unsubscribe': {
        const subscription = connection.subscriptions.get(frame.data.roomId);
        if (subscription) endSubscription(subscription);
        return;
      }
      case 'ping':
        connection.sendFrame({ type: 'pong', ...(frame.data.id === undefined ? {} : { id: frame.data.id }) });
        return;
    }
  }

  function onConnection(ws: WebSocket, principal: Principal, socketId: string): void {
    const connection = new Connection(ws, principal, socketId, config, metrics);
    connections.add(connection);
    metrics.sockets.set(connections.size);
    const expiry = setTimeout(
      () => connection.close(CloseCode.CREDENTIALS_EXPIRED, 'the access token expired'),
      // Clamped to what a timer can hold (24.8 days); a token lives a day at most anyway.
      Math.min(2 ** 31 - 1, Math.max(0, principal.exp * 1000 - Date.now())),
    );
    ws.on('pong', () => (connection.alive = true));
    ws.on('message', (data, isBinary) => onFrame(connection, data, isBinary));
    // ws reports protocol errors (oversized or invalid UTF-8 frames) here and closes with their code.
    ws.on('error', (error) => logger.debug({ err: error }, 'websocket error'));
    ws.on('close', (code) => {
      clearTimeout(expiry);
      connections.delete(connection);
      metrics.sockets.set(connections.size);
      metrics.closed.inc({ code: String(code) });
      for (const subscription of [...connection.subscriptions.values()]) endSubscription(subscription);
      sockets.release(principal.userId, socketId).catch(() => undefined); // lapses with its lease
    });
  }

  return {
    get draining(): boolean {
      return draining;
    },

    /** Registers a socket for the user; undefined when the user has as many open as allowed. */
    admit: async (userId: string): Promise<string | undefined> => {
      const socketId = crypto.randomUUID();
      return (await sockets.admit(userId, socketId)) ? socketId : undefined;
    },

    /** Gives back an admission whose upgrade did not complete. */
    release: (userId: string, socketId: string) => sockets.release(userId, socketId).catch(() => undefined),

    /** Completes an admitted upgrade (routes.ts has authenticated it) and runs the protocol. */
    accept(
      request: IncomingMessage,
      socket: Duplex,
      head: Buffer,
      principal: Principal,
      socketId: string,
    ): void {
      wss.handleUpgrade(request, socket, head, (ws) => onConnection(ws, principal, socketId));
    },

    /**
     * On SIGTERM: refuses new upgrades, then closes every socket with 1001 (reconnect) at instants
     * spread evenly over `windowMs`, so their reconnects spread over the other pods; resolves once
     * all have closed.
     */
    async drain(windowMs: number): Promise<void> {
      draining = true;
      // In random order (Fisher–Yates): which sockets go first says nothing of their users.
      const open = [...connections];
      for (let i = open.length - 1; i > 0; i--) {
        const j = Math.floor(Math.random() * (i + 1));
        [open[i], open[j]] = [open[j]!, open[i]!];
      }
      const closed = open.map((connection) =>
        connection.ws.readyState === connection.ws.CLOSED
          ? Promise.resolve()
          : new Promise<void>((resolve) => connection.ws.once('close', () => resolve())),
      );
      open.forEach((connection, i) => {
        const at = open.length > 1 ? (i * windowMs) / (open.length - 1) : 0;
        setTimeout(() => connection.close(CloseCode.GOING_AWAY, 'server draining; reconnect'), at).unref();
      });
      await Promise.all(closed);
      clearInterval(heartbeat);
    },

    get connectionCount(): number {
      return connections.size;
    },
  };
}

export type RealtimeGateway = ReturnType<typeof createGateway>;
