import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  NotFound,
  NoSuchKey,
  type S3Client,
} from '@aws-sdk/client-s3';
import { createPresignedPost } from '@aws-sdk/s3-presigned-post';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';

export interface PresignedUpload {
  url: string;
  /** Form fields to send, as they are, before the file (which goes last, as `file`). */
  fields: Record<string, string>;
  expiresAt: string;
}

export interface StoredObject {
  size: number;
  contentType: string | undefined;
  etag: string | undefined;
}

const hexToBase64 = (hex: string) => Buffer.from(hex, 'hex').toString('base64');

/** `attachment; filename=…` for any name: an ASCII stand-in and the exact name (RFC 6266/8187). */
export function contentDisposition(filename: string): string {
  const ascii = filename.replace(/[^\x20-\x7e]|["\\%]/g, '_');
  const exact = encodeURIComponent(filename).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16)}`);
  return `attachment; filename="${ascii}"; filename*=UTF-8''${exact}`;
}

/**
 * The S3 side of attachments, in the operations src/platform/s3-contract.ts lists for them and
 * under its prefix only.
 */
export function attachmentStorage(s3: S3Client, bucket: string) {
  const isMissing = (error: unknown) =>
    error instanceof NotFound ||
    error instanceof NoSuchKey ||
    (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404;

  return {
    /**
     * A presigned POST that S3 itself holds to the declaration: exactly `size` bytes
     * (content-length-range), this Content-Type, this key, and the declared SHA-256
     * (x-amz-checksum-sha256, which S3 and MinIO check against the bytes). A form field the policy
     * does not name is refused too. The worker still checks all of it before anyone may see it.
     */
    async presignUpload(input: {
      key: string;
      contentType: string;
      size: number;
      sha256: string;
      expiresInSeconds: number;
    }): Promise<PresignedUpload> {
      const checksum = hexToBase64(input.sha256);
      const { url, fields } = await createPresignedPost(s3, {
        Bucket: bucket,
        Key: input.key,
        Conditions: [
          ['content-length-range', input.size, input.size],
          ['eq', '$Content-Type', input.contentType],
          ['eq', '$x-amz-checksum-sha256', checksum],
        ],
        Fields: { 'Content-Type': input.contentType, 'x-amz-checksum-sha256': checksum },
        Expires: input.expiresInSeconds,
      });
      return { url, fields, expiresAt: new Date(Date.now() + input.expiresInSeconds * 1000).toISOString() };
    },

    /** A presigned GET that downloads as a file named `filename`, with the verified type. */
    async presignDownload(input: {
      key: string;
      filename: string;
      contentType: string;
      expiresInSeconds: number;
    }): Promise<{ url: string; expiresAt: string }> {
      const url = await getSignedUrl(
        s3,
        new GetObjectCommand({
          Bucket: bucket,
          Key: input.key,
          ResponseContentDisposition: contentDisposition(input.filename),
          ResponseContentType: input.contentType,
        }),
        { expiresIn: input.expiresInSeconds },
      );
      return { url, expiresAt: new Date(Date.now() + input.expiresInSeconds * 1000).toISOString() };
    },

    /** What is stored under `key`, or undefined when nothing is. */
    async head(key: string): Promise<StoredObject | undefined> {
      try {
        const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        return { size: head.ContentLength ?? 0, contentType: head.ContentType, etag: head.ETag };
      } catch (error) {
        if (isMissing(error)) return undefined;
        throw error;
      }
    },

    /**
     * Streams the object through SHA-256 (constant memory whatever its size). `etag` pins the
     * version HEAD described: if it was replaced in between, S3 answers 412 and the job retries.
     */
    async digest(key: string, etag: string | undefined, signal?: AbortSignal) {
      const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, IfMatch: etag }), {
        abortSignal: signal,
      });
      const hash = createHash('sha256');
      let bytes = 0;
      for await (const chunk of object.Body as Readable) {
        hash.update(chunk as Buffer);
        bytes += (chunk as Buffer).length;
      }
      return { sha256: hash.digest('hex'), bytes };
    },

    /** Deleting what is not there succeeds too (S3's own semantics): safe to repeat. */
    async remove(key: string): Promise<void> {
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    },
  };
}

export type AttachmentStorage = ReturnType<typeof attachmentStorage>;
