import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, it, type TestContext } from 'vitest';
import { WebSocket } from 'ws';
import { CloseCode } from '../features/realtime/protocol.js';
import { startCluster, type Cluster } from '../test-support/cluster.js';
import { until } from '../test-support/until.js';
import type { TypedEvents } from './events.js';
import {
  ParleyClient,
  ParleyError,
  type LiveConnection,
  type LiveEvents,
  type Message,
  type ParleyClientOptions,
  type RoomEvents,
  type RoomSubscription,
} from './index.js';

let cluster: Cluster;

// The shortest access token the API allows, so that one test sees a live socket outlive its token.
const ACCESS_TOKEN_TTL_SECONDS = 30;

beforeAll(async () => {
  cluster = await startCluster(
    2,
    { redisTopology: 'single' },
    { ACCESS_TOKEN_TTL_SECONDS: String(ACCESS_TOKEN_TTL_SECONDS) },
  );
});
afterAll(() => cluster?.stop());

const baseUrl = (process: number) => `http://127.0.0.1:${cluster.processes[process]!.ports.port}`;
const PASSWORD = 'correct horse battery';

/** A fresh user, registered and signed in through the client against API process `via`. */
async function signedIn(via: number | string, prefix: string, options: Partial<ParleyClientOptions> = {}) {
  const parley = new ParleyClient({
    baseUrl: typeof via === 'number' ? baseUrl(via) : via,
    WebSocket,
    ...options,
  });
  const username = `${prefix}-${randomUUID().slice(0, 8)}`;
  await parley.register(username, PASSWORD);
  await parley.login(username, PASSWORD);
  return Object.assign(parley, { username });
}

/** A live connection that is closed when the test ends, so no reconnect outlives it. */
function liveFor(context: TestContext, parley: ParleyClient, options?: Parameters<ParleyClient['live']>[0]) {
  const live = parley.live(options);
  context.onTestFinished(() => live.close());
  return live;
}

type EventsOf<S> = S extends LiveConnection ? LiveEvents : S extends RoomSubscription ? RoomEvents : never;

/** The first `type` event that `accept` takes; rejects after `timeoutMs` with what it waited for. */
function next<S extends LiveConnection | RoomSubscription, K extends keyof EventsOf<S> & string>(
  source: S,
  type: K,
  accept: (detail: EventsOf<S>[K]) => boolean = () => true,
  timeoutMs = 10_000,
): Promise<EventsOf<S>[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no matching ${type} event within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = (source as unknown as TypedEvents<EventsOf<S>>).on(type, (detail) => {
      if (!accept(detail)) return;
      clearTimeout(timer);
      off();
      resolve(detail);
    });
  });
}

const stateIs = (live: LiveConnection, state: LiveEvents['state']['state']) =>
  live.state === state ? Promise.resolve() : next(live, 'state', (change) => change.state === state);

function record<S extends LiveConnection | RoomSubscription, K extends keyof EventsOf<S> & string>(
  source: S,
  type: K,
): EventsOf<S>[K][] {
  const seen: EventsOf<S>[K][] = [];
  (source as unknown as TypedEvents<EventsOf<S>>).on(type, (detail) => seen.push(detail));
  return seen;
}

/** A WebSocket class that keeps every socket it opens, so a test can cut one as a network would. */
function keptSockets() {
  const sockets: WebSocket[] = [];
  class KeptWebSocket extends WebSocket {
    constructor(url: string, protocols: string[]) {
      super(url, protocols);
      sockets.push(this);
    }
  }
  return { sockets, WebSocket: KeptWebSocket };
}

/**
 * An HTTP proxy in front of an API process that can lose answers: the request reaches the API and
 * is served, but the client's connection is cut before the answer leaves, as a dropped network
 * would. It records what it forwarded.
 */
async function answerLosingProxy(target: string) {
  const forwarded: { method: string; path: string; idempotencyKey: string | undefined }[] = [];
  let loseNextAnswerTo: RegExp | undefined;
  const server: Server = createServer((request: IncomingMessage, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const path = request.url ?? '/';
      const idempotencyKey = request.headers['idempotency-key'] as string | undefined;
      forwarded.push({ method: request.method!, path, idempotencyKey });
      const headers = Object.fromEntries(
        ['authorization', 'content-type', 'idempotency-key', 'accept']
          .filter((name) => request.headers[name] !== undefined)
          .map((name) => [name, String(request.headers[name])]),
      );
      const body = chunks.length > 0 ? Buffer.concat(chunks) : undefined;
      void fetch(`${target}${path}`, { method: request.method, headers, body }).then(async (answer) => {
        const text = await answer.text();
        if (loseNextAnswerTo?.test(`${request.method} ${path}`)) {
          loseNextAnswerTo = undefined;
          request.socket.destroy();
          return;
        }
        const kept = ['content-type', 'retry-after', 'idempotent-replayed'];
        for (const name of kept)
          if (answer.headers.has(name)) response.setHeader(name, answer.headers.get(name)!);
        response.writeHead(answer.status).end(text);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    forwarded,
    loseNextAnswerTo: (route: RegExp) => (loseNextAnswerTo = route),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// Concurrent: each test has its own users and rooms, and the token-expiry test waits out a token.
describe.concurrent('the typed client', () => {
  it('refreshes the access token when the server closes the live socket as it expires (4401), and resumes', async (context) => {
    const { expect } = context;
    const aliceTokens: unknown[] = [];
    const alice = await signedIn(0, 'alice', { onTokens: (tokens) => aliceTokens.push(tokens) });
    const bob = await signedIn(1, 'bob');
    const room = await alice.createRoom({ name: 'token expiry' });
    await bob.joinRoom(room.id);
    const live = liveFor(context, alice);
    const states = record(live, 'state');
    const subscription = live.subscribe(room.id);
    const received = record(subscription, 'message');
    await next(subscription, 'subscribed');

    // Bob posts twice a second until Alice's socket was closed for its expired token and is live
    // again, and a little after. His token expires too: his posts refresh it on the 401.
    const posted: Message[] = [];
    const expired = next(
      live,
      'state',
      (change) => change.code === CloseCode.CREDENTIALS_EXPIRED,
      (ACCESS_TOKEN_TTL_SECONDS + 10) * 1000,
    );
    let postsSinceRenewed = -1;
    void expired.then(() => (postsSinceRenewed = 0));
    while (postsSinceRenewed < 3) {
      posted.push(await bob.postMessage(room.id, `tick ${posted.length}`));
      if (postsSinceRenewed >= 0 && live.state === 'live') postsSinceRenewed++;
      await pause(500);
    }
    await expired;

    expect(await until(() => received.length >= posted.length, 10_000)).toBe(true);
    expect(received.map((message) => message.id)).toEqual(posted.map((message) => message.id));
    expect(states.map(({ state, code }) => ({ state, code }))).toEqual([
      { state: 'live', code: undefined },
      { state: 'reconnecting', code: CloseCode.CREDENTIALS_EXPIRED },
      { state: 'live', code: undefined },
    ]);
    expect(aliceTokens).toHaveLength(2); // the login, then the refresh after 4401
  }, 60_000);

  it('delivers a message posted through one API process to a live connection on the other', async (context) => {
    const { expect } = context;
    const alice = await signedIn(0, 'alice');
    const bob = await signedIn(1, 'bob');
    const room = await alice.createRoom({ name: 'across pods' });
    const live = liveFor(context, alice);
    expect(live.state).toBe('connecting');
    const subscription = live.subscribe(room.id);
    const joined = next(subscription, 'member.joined');
    expect(await next(subscription, 'subscribed')).toEqual({ recovered: false, replayed: 0 });
    expect(live.state).toBe('live');

    await bob.joinRoom(room.id);
    expect(await joined).toEqual({ userId: bob.userId });
    const arrived = next(subscription, 'message');
    const posted = await bob.postMessage(room.id, 'hello from process B');
    expect(await arrived).toEqual(posted);
    expect(posted).toMatchObject({ roomId: room.id, authorId: bob.userId, body: 'hello from process B' });
  });

  it('after a dropped socket, delivers the messages posted meanwhile once and in order, then live ones', async (context) => {
    const { expect } = context;
    const cut = keptSockets();
    const alice = await signedIn(0, 'alice', { WebSocket: cut.WebSocket });
    const bob = await signedIn(1, 'bob');
    const room = await alice.createRoom({ name: 'flaky network' });
    await bob.joinRoom(room.id);
    // A slow first retry, so that every missed message is posted while the socket is down.
    const live = liveFor(context, alice, { reconnect: { baseMs: 3_000 } });
    const subscription = live.subscribe(room.id);
    const received = record(subscription, 'message');
    const subscribed = record(subscription, 'subscribed');
    await next(subscription, 'subscribed');
    const before = [await bob.postMessage(room.id, 'before 1'), await bob.postMessage(room.id, 'before 2')];
    expect(await until(() => received.length === 2)).toBe(true);

    cut.sockets.at(-1)!.terminate();
    await stateIs(live, 'reconnecting');
    const missed: Message[] = [];
    for (let i = 0; i < 5; i++) missed.push(await bob.postMessage(room.id, `missed ${i}`));
    expect(live.state).toBe('reconnecting');
    await stateIs(live, 'live');
    expect(await until(() => subscribed.length === 2)).toBe(true); // resumed: the replay is read
    const after = await bob.postMessage(room.id, 'after');

    expect(await until(() => received.length >= 8)).toBe(true);
    await pause(200); // nothing more, no duplicate, arrives
    expect(received.map((message) => message.body)).toEqual([
      'before 1',
      'before 2',
      'missed 0',
      'missed 1',
      'missed 2',
      'missed 3',
      'missed 4',
      'after',
    ]);
    expect(received).toEqual([...before, ...missed, after]);
    expect(subscribed.at(-1)).toEqual({ recovered: true, replayed: 5 });
  });

  it('surfaces a message that arrives twice on the wire once', async (context) => {
    const { expect } = context;
    const alice = await signedIn(0, 'alice');
    const room = await alice.createRoom({ name: 'echo' });
    const live = liveFor(context, alice);
    const subscription = live.subscribe(room.id);
    const received = record(subscription, 'message');
    await next(subscription, 'subscribed');
    const first = await alice.postMessage(room.id, 'one');
    await alice.postMessage(room.id, 'two');
    await alice.postMessage(room.id, 'three');
    expect(await until(() => received.length === 3)).toBe(true);

    // Reading again from the first message: the server sends "two" and "three" a second time.
    expect(live.subscribe(room.id, { after: first.id })).toBe(subscription);
    expect(await next(subscription, 'subscribed')).toEqual({ recovered: true, replayed: 2 });
    await alice.postMessage(room.id, 'four');
    expect(await until(() => received.length === 4)).toBe(true);
    await pause(200);
    expect(received.map((message) => message.body)).toEqual(['one', 'two', 'three', 'four']);
  });

  it('subscribes to many rooms at once without tripping the server’s frame limit', async (context) => {
    const { expect } = context;
    const alice = await signedIn(0, 'alice');
    // More rooms than the server's default burst of 20 frames.
    const rooms = await Promise.all(
      Array.from({ length: 30 }, (_, i) => alice.createRoom({ name: `room ${i}` })),
    );
    const live = liveFor(context, alice);
    const states = record(live, 'state');
    const subscribed = await Promise.all(
      rooms.map((room) => next(live.subscribe(room.id), 'subscribed', () => true, 15_000)),
    );
    expect(subscribed).toHaveLength(30);
    expect(states.map((change) => change.state)).toEqual(['live']);
  });

  it('ends a room’s subscription when its user leaves the room, and tells the others', async (context) => {
    const { expect } = context;
    const alice = await signedIn(0, 'alice');
    const bob = await signedIn(1, 'bob');
    const room = await alice.createRoom({ name: 'goodbyes' });
    await bob.joinRoom(room.id);
    const aliceRoom = liveFor(context, alice).subscribe(room.id);
    const bobRoom = liveFor(context, bob).subscribe(room.id);
    await Promise.all([next(aliceRoom, 'subscribed'), next(bobRoom, 'subscribed')]);

    const ended = next(bobRoom, 'ended');
    const seenByAlice = next(aliceRoom, 'member.left');
    await bob.leaveRoom(room.id);
    expect(await ended).toEqual({ reason: 'left' });
    expect(bobRoom.active).toBe(false);
    expect(await seenByAlice).toEqual({ userId: bob.userId });
  });

  it('closes for good, saying why, when the session is logged out elsewhere', async (context) => {
    const { expect } = context;
    const alice = await signedIn(0, 'alice');
    const room = await alice.createRoom({ name: 'signed out' });
    const live = liveFor(context, alice);
    live.subscribe(room.id);
    await stateIs(live, 'live');
    const sameSessionElsewhere = new ParleyClient({ baseUrl: baseUrl(1), tokens: alice.tokens });

    const failure = next(live, 'error');
    await sameSessionElsewhere.logout();
    const error = await failure;
    expect(error).toBeInstanceOf(ParleyError);
    expect(error).toMatchObject({ status: 401, detail: expect.stringMatching(/revoked/) });
    await stateIs(live, 'closed');
    expect(alice.tokens).toBeUndefined();
    await expect(alice.listRooms()).rejects.toMatchObject({ status: 401 });
    const again = liveFor(context, alice);
    expect(await next(again, 'error')).toMatchObject({ status: 401 });
    await stateIs(again, 'closed');
  });

  it('refreshes a stale access token once on a 401 and retries the call', async ({ expect }) => {
    const alice = await signedIn(0, 'alice');
    await alice.createRoom({ name: 'kept' });
    const stored: unknown[] = [];
    const restored = new ParleyClient({
      baseUrl: baseUrl(1),
      tokens: { ...alice.tokens!, accessToken: 'a-token-from-last-week' },
      onTokens: (tokens) => stored.push(tokens),
    });
    const page = await restored.listRooms();
    expect(page.items.map((room) => room.name)).toContain('kept');
    expect(stored).toHaveLength(1);
    expect(restored.tokens!.accessToken).not.toBe('a-token-from-last-week');
    expect(restored.userId).toBe(alice.userId);
  });

  it('retries a post whose answer was lost with the same Idempotency-Key, and the message is stored once', async ({
    expect,
  }) => {
    const proxy = await answerLosingProxy(baseUrl(1));
    try {
      const carol = await signedIn(proxy.url, 'carol');
      const room = await carol.createRoom({ name: 'lossy' });
      proxy.loseNextAnswerTo(/^POST \/v1\/rooms\/.+\/messages$/);
      const posted = await carol.postMessage(room.id, 'said once');

      const posts = proxy.forwarded.filter((request) => /\/messages$/.test(request.path));
      expect(posts).toHaveLength(2);
      expect(posts[0]!.idempotencyKey).toMatch(/^[0-9a-f-]{36}$/);
      expect(posts[1]!.idempotencyKey).toBe(posts[0]!.idempotencyKey);
      const page = await carol.listMessages(room.id);
      expect(page.items).toEqual([posted]);
    } finally {
      await proxy.close();
    }
  });

  it('throws a ParleyError with the problem and Retry-After, and does not retry a refusal', async ({
    expect,
  }) => {
    const proxy = await answerLosingProxy(baseUrl(0));
    try {
      const alice = await signedIn(0, 'alice');
      const room = await alice.createRoom({ name: 'members only' });
      const dave = await signedIn(proxy.url, 'dave');
      const refused = await dave.postMessage(room.id, 'let me in').catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(ParleyError);
      expect(refused).toMatchObject({
        status: 403,
        type: expect.any(String),
        title: 'Forbidden',
        detail: expect.stringMatching(/join room/),
        retryAfter: undefined,
      });
      expect(proxy.forwarded.filter((request) => /\/messages$/.test(request.path))).toHaveLength(1);

      const answers: ParleyError[] = [];
      for (let guess = 0; guess < 6; guess++) {
        const refusal = await dave.login(dave.username, 'wrong password').catch((error: unknown) => error);
        answers.push(refusal as ParleyError);
      }
      expect(answers[0]).toMatchObject({ status: 401, retryAfter: undefined });
      const limited = answers.find((error) => error.status === 429);
      expect(limited?.retryAfter).toBeGreaterThan(0);
    } finally {
      await proxy.close();
    }
  });
});
