import { z } from 'zod';
import {
  ClientFrame,
  CLOSE_CODE_MEANINGS,
  CloseCode,
  PROTOCOL_VERSION,
  ServerFrame,
  TICKET_PROTOCOL_PREFIX,
  WS_PATH,
} from './protocol.js';

type Frame = (typeof ClientFrame.options)[number] | (typeof ServerFrame.options)[number];

const frameType = (frame: Frame) => frame.shape.type.value;
const messageRefs = (frames: readonly Frame[]) =>
  frames.map((frame) => ({ $ref: `#/channels/live/messages/${frameType(frame)}` }));

/**
 * Draft-07, not 2020-12: AsyncAPI 3.0's default schema format is a draft-07 superset, and the
 * parser accepts no other JSON Schema version, so payloads need no `schemaFormat` and every AsyncAPI
 * tool reads them. The server validates what a client sends as zod parses its input, and promises
 * what it sends as zod's output, hence `io`.
 */
function payloadSchema(frame: Frame, io: 'input' | 'output') {
  // `$schema` is the document's to declare, not each payload's.
  const { $schema: _, ...schema } = z.toJSONSchema(frame, { target: 'draft-7', io });
  // A `#/definitions/…` ref would resolve against the AsyncAPI document, not this payload, and
  // point nowhere: a recursive or `id`-carrying frame needs its parts in components.schemas first.
  if ('definitions' in schema) {
    throw new Error(`frame ${frameType(frame)} has shared definitions: inline them or hoist them`);
  }
  return schema;
}

const closeCodeTable = [
  '| Code | Name | Meaning |',
  '| ---- | ---- | ------- |',
  ...Object.entries(CloseCode).map(
    ([name, code]) => `| ${code} | ${name} | ${CLOSE_CODE_MEANINGS[name as keyof typeof CloseCode]} |`,
  ),
].join('\n');

const description = `JSON text frames over one WebSocket per client.

**Connecting.** Upgrade \`GET ${WS_PATH}\` on the API port, offering the subprotocol \`${PROTOCOL_VERSION}\`; the server selects it. Authenticate in one of two ways:

- a non-browser client sends \`Authorization: Bearer <access token>\` on the upgrade;
- a browser, which cannot set headers on an upgrade, takes a single-use ticket from \`POST /v1/realtime/tickets\` and offers it as a second subprotocol, \`${TICKET_PROTOCOL_PREFIX}<ticket>\` (never echoed back; a URL would end up in proxies' logs).

A browser's upgrade is refused unless its \`Origin\` is on the server's allow-list; a client that sends no \`Origin\` is not a browser, and is not refused for it.

**Close codes.**

${closeCodeTable}`;

function buildDocument() {
  const clientFrames = ClientFrame.options;
  const serverFrames = ServerFrame.options;
  const framesWithIo = [
    ...clientFrames.map((frame) => ({ frame, io: 'input' as const })),
    ...serverFrames.map((frame) => ({ frame, io: 'output' as const })),
  ];

  return {
    asyncapi: '3.0.0',
    info: { title: 'Parley live protocol', version: PROTOCOL_VERSION, description },
    servers: {
      api: {
        host: '{host}',
        protocol: 'wss',
        description: 'The API port (`ws` without TLS in local development).',
        variables: { host: { description: 'host[:port] of the API', examples: ['chat.example.com'] } },
        security: [
          { $ref: '#/components/securitySchemes/accessToken' },
          { $ref: '#/components/securitySchemes/ticket' },
        ],
      },
    },
    channels: {
      // The path is the channel's address, not the server's pathname: tools join the two into the
      // URL, and both would make it /v1/ws/v1/ws.
      live: {
        address: WS_PATH,
        messages: Object.fromEntries(
          framesWithIo.map(({ frame }) => [
            frameType(frame),
            { $ref: `#/components/messages/${frameType(frame)}` },
          ]),
        ),
      },
    },
    // From the server's side, as AsyncAPI 3 has it: it receives client frames and sends its own.
    operations: {
      receiveClientFrames: {
        action: 'receive',
        channel: { $ref: '#/channels/live' },
        summary: 'Frames a client sends.',
        messages: messageRefs(clientFrames),
      },
      sendServerFrames: {
        action: 'send',
        channel: { $ref: '#/channels/live' },
        summary: 'Frames the server sends.',
        messages: messageRefs(serverFrames),
      },
    },
    components: {
      messages: Object.fromEntries(
        framesWithIo.map(({ frame }) => {
          const { title, description } = frame.meta() ?? {};
          const type = frameType(frame);
          return [
            type,
            { name: type, title, summary: description, payload: { $ref: `#/components/schemas/${type}` } },
          ];
        }),
      ),
      schemas: Object.fromEntries(
        framesWithIo.map(({ frame, io }) => [frameType(frame), payloadSchema(frame, io)]),
      ),
      securitySchemes: {
        accessToken: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description: 'For non-browser clients: `Authorization: Bearer <access token>` on the upgrade.',
        },
        ticket: {
          type: 'httpApiKey',
          in: 'header',
          name: 'Sec-WebSocket-Protocol',
          description: `For browsers: a single-use ticket from \`POST /v1/realtime/tickets\`, offered as the subprotocol \`${TICKET_PROTOCOL_PREFIX}<ticket>\` after \`${PROTOCOL_VERSION}\`.`,
        },
      },
    },
  };
}

let cached: ReturnType<typeof buildDocument> | undefined;

/** The AsyncAPI 3.0 document of the live protocol, generated from its zod schemas once. */
export function asyncApiDocument(): object {
  cached ??= buildDocument();
  return cached;
}
