import { v7 as uuidv7 } from 'uuid';
import type { AttachmentsConfig } from '../../config.js';
import { Conflict, Forbidden, NotFound, Unprocessable, type DomainError } from '../../domain/errors.js';
import type { JobQueues } from '../../platform/jobs.js';
import type { RoomsService } from '../rooms/service.js';
import { objectKeyFor, toAttachment, type Attachment, type AttachmentRow } from './attachment.js';
import { verifyAttachmentJob } from './kinds.js';
import type { AttachmentsRepository } from './repository.js';
import type { AttachmentStorage, PresignedUpload } from './storage.js';

export interface Declaration {
  filename: string;
  contentType: string;
  size: number;
  /** Hex, lower case. */
  sha256: string;
}

const formatBytes = (bytes: number) =>
  bytes >= 1_048_576 ? `${(bytes / 1_048_576).toFixed(1)} MiB` : `${bytes} bytes`;

export function attachmentsService(deps: {
  repository: AttachmentsRepository;
  storage: AttachmentStorage;
  rooms: RoomsService;
  jobs: JobQueues;
  config: AttachmentsConfig;
}) {
  const { repository, storage, config } = deps;

  /**
   * The row as `userId` may see it: the uploader always; a member of its room only once it is
   * ready (nothing half-uploaded or refused is shown to anyone else); everyone else not at all.
   */
  async function visible(userId: string, id: string): Promise<AttachmentRow> {
    const row = await repository.find(id);
    if (!row) throw new NotFound(`no attachment ${id}`);
    if (row.uploaderId === userId) return row;
    if (row.status !== 'ready') throw new NotFound(`no attachment ${id}`);
    // A private room answers 404 to a non-member, a public one 403: as for the room itself.
    await deps.rooms.memberRoom(userId, row.roomId).catch((error: unknown) => {
      if (error instanceof Forbidden) throw new Forbidden(`join room ${row.roomId} to download its files`);
      throw error;
    });
    return row;
  }

  return {
    /** Declares an upload in a room the user is a member of, and signs the one POST that may store it. */
    async declare(
      userId: string,
      roomId: string,
      declaration: Declaration,
    ): Promise<{ attachment: Attachment; upload: PresignedUpload }> {
      await deps.rooms.memberRoom(userId, roomId);
      if (!config.allowedTypes.includes(declaration.contentType)) {
        throw new Unprocessable(
          `${declaration.contentType} files are not accepted; allowed: ${config.allowedTypes.join(', ')}`,
          'attachment-type-not-allowed',
        );
      }
      if (declaration.size > config.maxBytes) {
        throw new Unprocessable(
          `${formatBytes(declaration.size)} is over the limit of ${formatBytes(config.maxBytes)}`,
          'attachment-too-large',
        );
      }
      const id = uuidv7();
      const createdAt = new Date();
      const row = {
        id,
        roomId,
        uploaderId: userId,
        objectKey: objectKeyFor(roomId, id, createdAt),
        filename: declaration.filename,
        contentType: declaration.contentType,
        sizeBytes: declaration.size,
        sha256: declaration.sha256,
        createdAt,
      };
      // The row first: an upload with no row could never be verified nor swept.
      await repository.create(row);
      const upload = await storage.presignUpload({
        key: row.objectKey,
        contentType: row.contentType,
        size: row.sizeBytes,
        sha256: row.sha256,
        expiresInSeconds: config.uploadTtlSeconds,
      });
      const attachment = toAttachment({
        ...row,
        status: 'pending',
        rejectedReason: null,
        messageId: null,
        completedAt: null,
      });
      return { attachment, upload };
    },

    /**
     * The uploader says the upload is done. A pending attachment gets its verification queued (one
     * job per attachment however often this is called: the job id is derived from it) and answers
     * `queued: true`; a settled one is answered as it is.
     */
    async complete(userId: string, id: string): Promise<{ attachment: Attachment; queued: boolean }> {
      const row = await visible(userId, id);
      if (row.uploaderId !== userId) throw new Forbidden('only its uploader completes an upload');
      if (row.status !== 'pending') return { attachment: toAttachment(row), queued: false };
      await deps.jobs.add(verifyAttachmentJob, { attachmentId: id });
      return { attachment: toAttachment(row), queued: true };
    },

    /** The attachment, and a short-lived download link once it is ready. */
    async get(
      userId: string,
      id: string,
    ): Promise<{ attachment: Attachment; download: { url: string; expiresAt: string } | null }> {
      const row = await visible(userId, id);
      const download =
        row.status === 'ready'
          ? await storage.presignDownload({
              key: row.objectKey,
              filename: row.filename,
              contentType: row.contentType,
              expiresInSeconds: config.downloadTtlSeconds,
            })
          : null;
      return { attachment: toAttachment(row), download };
    },

    /**
     * Why `userId` may not attach these to a new message in `roomId`, or undefined when they may:
     * each must be theirs, in that room, ready and not attached yet. The insert checks the same
     * again in its transaction; this says which one and why.
     */
    async linkRefusal(userId: string, roomId: string, ids: string[]): Promise<DomainError | undefined> {
      const rows = new Map((await repository.findMany(ids)).map((row) => [row.id, row]));
      for (const id of ids) {
        const row = rows.get(id);
        if (!row || row.uploaderId !== userId || row.roomId !== roomId) {
          return new Unprocessable(
            `attachment ${id} is not one of your uploads in this room`,
            'attachment-not-usable',
          );
        }
        if (row.status === 'rejected') {
          return new Unprocessable(
            `attachment ${id} was rejected: ${row.rejectedReason ?? 'no reason given'}`,
            'attachment-rejected',
          );
        }
        if (row.status === 'pending') {
          return new Conflict(
            `attachment ${id} is not verified yet; complete its upload and wait until it is ready`,
            'attachment-not-ready',
          );
        }
        if (row.messageId !== null) {
          return new Conflict(
            `attachment ${id} is already attached to message ${row.messageId}`,
            'attachment-already-attached',
          );
        }
      }
      return undefined;
    },
  };
}

export type AttachmentsService = ReturnType<typeof attachmentsService>;
