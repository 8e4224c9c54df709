import { DiagnosticSeverity, Parser, type AsyncAPIDocumentInterface } from '@asyncapi/parser';
import { Ajv } from 'ajv';
import { beforeAll, describe, expect, it } from 'vitest';
import { asyncApiDocument } from './asyncapi.js';
import {
  CLOSE_CODE_MEANINGS,
  ClientFrame,
  CloseCode,
  MessageCreatedFrame,
  PROTOCOL_VERSION,
  ServerFrame,
  TICKET_PROTOCOL_PREFIX,
  WS_PATH,
} from './protocol.js';

// What a client downloads: the document as JSON, not the object in this process.
const served = JSON.stringify(asyncApiDocument());
let parsed: AsyncAPIDocumentInterface;

beforeAll(async () => {
  const { document, diagnostics } = await new Parser().parse(served);
  const errors = diagnostics.filter((diagnostic) => diagnostic.severity === DiagnosticSeverity.Error);
  expect(errors, JSON.stringify(errors, null, 2)).toEqual([]);
  parsed = document!;
});

const typesOf = (frames: readonly { shape: { type: { value: string } } }[]) =>
  frames.map((frame) => frame.shape.type.value).sort();

const payloadTypesOf = (operationId: string) =>
  parsed
    .operations()
    .get(operationId)!
    .messages()
    .all()
    .map((message) => message.payload()?.properties()?.['type']?.const())
    .sort();

function payloadValidator(type: string) {
  const { components } = JSON.parse(served) as { components: { schemas: Record<string, object> } };
  // zod writes a `pattern` beside each `format` (uuid, date-time), so the patterns alone hold a
  // client's validator to the same values without a formats plugin.
  return new Ajv({ validateFormats: false }).compile(components.schemas[type]!);
}

describe('the AsyncAPI document of the live protocol', () => {
  it('is a valid AsyncAPI 3.0 document', () => {
    expect(parsed.version()).toBe('3.0.0');
  });

  it('tells a client where to connect and how to authenticate', () => {
    expect(parsed.info().version()).toBe(PROTOCOL_VERSION);
    expect(parsed.channels().get('live')?.address()).toBe(WS_PATH);
    const description = parsed.info().description() ?? '';
    expect(description).toContain(`GET ${WS_PATH}`);
    expect(description).toContain(`\`${PROTOCOL_VERSION}\``);
    expect(description).toContain('Authorization: Bearer');
    expect(description).toContain('POST /v1/realtime/tickets');
    expect(description).toContain(`${TICKET_PROTOCOL_PREFIX}<ticket>`);
    expect(description).toContain('Origin');
  });

  it('has the server receive every client frame, each payload naming its type', () => {
    expect(payloadTypesOf('receiveClientFrames')).toEqual(typesOf(ClientFrame.options));
  });

  it('has the server send every server frame, each payload naming its type', () => {
    expect(payloadTypesOf('sendServerFrames')).toEqual(typesOf(ServerFrame.options));
  });

  const roomId = '0f8f5a56-5c43-4e0f-9a43-8d4d2f7f6a11';
  it.each([
    ['a room id', { type: 'subscribe', roomId }, true],
    ['a resume cursor', { type: 'subscribe', roomId, after: '42' }, true],
    ['a room id that is not a uuid', { type: 'subscribe', roomId: 'room-1' }, false],
    ['a cursor that is not a message id', { type: 'subscribe', roomId, after: '0042' }, false],
    ['a field the protocol does not have', { type: 'subscribe', roomId, token: 'smuggled' }, false],
    ['no room id', { type: 'subscribe' }, false],
  ])('judges a subscribe frame with %s as the gateway does', (_, frame, accepted) => {
    expect(payloadValidator('subscribe')(frame)).toBe(accepted);
    expect(ClientFrame.safeParse(frame).success).toBe(accepted);
  });

  it('describes a server frame as the server sends it', () => {
    const frame = MessageCreatedFrame.parse({
      type: 'message.created',
      roomId,
      message: {
        id: '42',
        roomId,
        authorId: '6b1f7c0e-2f7d-4c1e-8a5b-3f9d2e4c7a10',
        body: 'hello',
        createdAt: '2025-01-02T03:04:05.678Z',
      },
      origin: 'api-7f9c',
    });
    const validate = payloadValidator('message.created');

    expect(validate(frame), JSON.stringify(validate.errors)).toBe(true);
    expect(validate({ ...frame, message: { ...frame.message, createdAt: 'yesterday' } })).toBe(false);
  });

  it('lists every close code with what a client should do on it', () => {
    const description = parsed.info().description() ?? '';
    expect(Object.keys(CLOSE_CODE_MEANINGS).sort()).toEqual(Object.keys(CloseCode).sort());
    for (const [name, code] of Object.entries(CloseCode)) {
      const meaning = CLOSE_CODE_MEANINGS[name as keyof typeof CloseCode];
      expect(meaning.trim()).not.toBe('');
      expect(description).toContain(`| ${code} | ${name} | ${meaning} |`);
    }
  });
});
