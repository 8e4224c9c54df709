import { createRoute, z } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { problemResponse as problem } from '../../http/openapi.js';
import { createRouter } from '../../http/router.js';
import type { AppEnv } from '../../http/types.js';
import { RoomId } from '../rooms/routes.js';
import { AttachmentSchema as Attachment } from './attachment.js';
import type { AttachmentsService } from './service.js';

const AttachmentSchema = Attachment.openapi('Attachment');
const security = [{ bearerAuth: [] }];
const AttachmentParams = z.object({
  id: z.uuid({ error: 'must be an attachment id (UUID)' }).openapi({ param: { name: 'id', in: 'path' } }),
});

const Declaration = z
  .strictObject({
    filename: z
      .string()
      .trim()
      .min(1)
      .max(255)
      // It ends up in a Content-Disposition header and on someone else's disk.
      .refine(
        (name) => !/[/\\]/.test(name) && ![...name].some((char) => char < ' ' || char === '\u007f'),
        'must not contain / \\ or control characters',
      ),
    contentType: z
      .string()
      .trim()
      .toLowerCase()
      .max(127)
      .regex(
        /^[a-z0-9][a-z0-9!#$&^_.+-]*\/[a-z0-9][a-z0-9!#$&^_.+-]*$/,
        'must be a media type like image/png',
      ),
    size: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).openapi({ description: 'bytes, exactly' }),
    sha256: z
      .string()
      .regex(/^[0-9a-fA-F]{64}$/, 'must be the hex SHA-256 of the content (64 hex digits)')
      .toLowerCase(),
  })
  .openapi('AttachmentDeclaration');

const Upload = z
  .object({
    url: z.url(),
    fields: z.record(z.string(), z.string()).openapi({
      description: 'send each as a multipart/form-data field, then the content last as `file`',
    }),
    expiresAt: z.iso.datetime().openapi({ description: 'the upload must start before this' }),
  })
  .openapi('PresignedUpload');

const declareAttachment = createRoute({
  method: 'post',
  path: '/v1/rooms/{roomId}/attachments',
  tags: ['attachments'],
  security,
  request: {
    params: z.object({ roomId: RoomId.openapi({ param: { name: 'roomId', in: 'path' } }) }),
    body: { required: true, content: { 'application/json': { schema: Declaration } } },
  },
  responses: {
    201: {
      description:
        'declared: POST the file to `upload.url` with `upload.fields` (S3 refuses any other size, type or content), then complete it',
      content: { 'application/json': { schema: z.object({ attachment: AttachmentSchema, upload: Upload }) } },
    },
    400: problem('a malformed declaration (filename, media type, size or sha256)'),
    403: problem('not a member of the room'),
    404: problem('no such room'),
    422: problem('a media type not accepted, or a size over the limit'),
    429: problem('the upload rate limit is spent'),
  },
});

const completeAttachment = createRoute({
  method: 'post',
  path: '/v1/attachments/{id}/complete',
  tags: ['attachments'],
  security,
  request: { params: AttachmentParams },
  responses: {
    200: {
      description: 'already verified: ready or rejected, as it says',
      content: { 'application/json': { schema: z.object({ attachment: AttachmentSchema }) } },
    },
    202: {
      description:
        'verification queued (once, however often this is called): GET it until it is ready or rejected',
      content: { 'application/json': { schema: z.object({ attachment: AttachmentSchema }) } },
    },
    403: problem('not the uploader'),
    404: problem('no such attachment, or not one this user may see'),
  },
});

const getAttachment = createRoute({
  method: 'get',
  path: '/v1/attachments/{id}',
  tags: ['attachments'],
  security,
  request: { params: AttachmentParams },
  responses: {
    200: {
      description:
        'the attachment; once ready, a short-lived download link (others than the uploader see it only once ready)',
      content: {
        'application/json': {
          schema: z.object({
            attachment: AttachmentSchema,
            download: z
              .object({ url: z.url(), expiresAt: z.iso.datetime() })
              .nullable()
              .openapi({ description: 'null until the attachment is ready' }),
          }),
        },
      },
    },
    403: problem('not a member of the room'),
    404: problem('no such attachment, or not one this user may see'),
  },
});

export function attachmentRoutes(deps: {
  attachments: AttachmentsService;
  uploadLimit: MiddlewareHandler<AppEnv>;
}) {
  const { attachments } = deps;
  const router = createRouter();
  router.on('POST', '/v1/rooms/:roomId/attachments', deps.uploadLimit);

  router.openapi(declareAttachment, async (c) => {
    const declared = await attachments.declare(
      c.get('principal').userId,
      c.req.valid('param').roomId,
      c.req.valid('json'),
    );
    return c.json(declared, 201);
  });

  router.openapi(completeAttachment, async (c) => {
    const { attachment, queued } = await attachments.complete(
      c.get('principal').userId,
      c.req.valid('param').id,
    );
    return queued ? c.json({ attachment }, 202) : c.json({ attachment }, 200);
  });

  router.openapi(getAttachment, async (c) => {
    return c.json(await attachments.get(c.get('principal').userId, c.req.valid('param').id), 200);
  });
  return router;
}
