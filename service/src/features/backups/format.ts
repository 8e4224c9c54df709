import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  randomBytes,
  scrypt,
  timingSafeEqual,
  type CipherGCM,
  type DecipherGCM,
} from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/**
 * The encrypted envelope of a backup file:
 *
 *   offset  size  field
 *   0       8     magic "PARLEYBK"
 *   8       1     envelope version (1)
 *   9       1     key derivation (1 = scrypt)
 *   10      1     log2 of scrypt's N
 *   11      1     scrypt's r
 *   12      1     scrypt's p
 *   13      16    salt
 *   29      12    AES-256-GCM IV
 *   41      32    key check: HMAC-SHA256 of KEY_CHECK_LABEL under the derived check key
 *   73      …     ciphertext of the gzipped NDJSON
 *   end-16  16    GCM tag
 *
 * The whole header is the GCM additional data, so no byte of it can change unnoticed. scrypt's
 * output (64 bytes) is split in two: the AES key and a key that only makes the key check. The
 * check tells, right after the header, whether a passphrase is the one the file was written with,
 * so a wrong key is refused at once instead of after reading the whole object, and on restore it
 * picks which of the configured keys (the current one, the previous ones) fits.
 */
export const MAGIC = Buffer.from('PARLEYBK', 'ascii');
export const ENVELOPE_VERSION = 1;
const KDF_SCRYPT = 1;
const SALT_BYTES = 16;
const IV_BYTES = 12;
const CHECK_BYTES = 32;
export const TAG_BYTES = 16;
export const HEADER_BYTES = MAGIC.length + 5 + SALT_BYTES + IV_BYTES + CHECK_BYTES;
const KEY_CHECK_LABEL = 'parley backup key check v1';

export interface ScryptParams {
  log2N: number;
  r: number;
  p: number;
}

/** 128 × 2^15 × 8 bytes = 32 MiB of memory per derivation, on the libuv pool. */
export const DEFAULT_SCRYPT: ScryptParams = { log2N: 15, r: 8, p: 1 };

// A header is read before anything in it is authenticated: these bounds keep a forged one from
// asking scrypt for gigabytes or minutes.
const MAX_SCRYPT_MEMORY = 256 * 1024 * 1024;

/** A backup that must not be restored (tampered, wrong key, not empty target): nothing was written. */
export class BackupRejected extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'BackupRejected';
  }
}

interface Header {
  bytes: Buffer;
  scrypt: ScryptParams;
  salt: Buffer;
  iv: Buffer;
  keyCheck: Buffer;
}

interface DerivedKey {
  aesKey: Buffer;
  keyCheck: Buffer;
}

const scryptMemory = ({ log2N, r }: ScryptParams) => 128 * 2 ** log2N * r;

/** Always the callback form, run on the libuv pool: scryptSync would stall the event loop. */
function deriveKey(passphrase: string, salt: Buffer, params: ScryptParams): Promise<DerivedKey> {
  return new Promise((resolve, reject) =>
    scrypt(
      passphrase,
      salt,
      64,
      { N: 2 ** params.log2N, r: params.r, p: params.p, maxmem: scryptMemory(params) + 1024 * 1024 },
      (error, output) => {
        if (error) return reject(error);
        const checkKey = output.subarray(32);
        resolve({
          aesKey: output.subarray(0, 32),
          keyCheck: createHmac('sha256', checkKey).update(KEY_CHECK_LABEL).digest(),
        });
      },
    ),
  );
}

function encodeHeader(params: ScryptParams, salt: Buffer, iv: Buffer, keyCheck: Buffer): Buffer {
  const bytes = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(bytes, 0);
  let offset = MAGIC.length;
  for (const value of [ENVELOPE_VERSION, KDF_SCRYPT, params.log2N, params.r, params.p])
    bytes.writeUInt8(value, offset++);
  offset += salt.copy(bytes, offset);
  offset += iv.copy(bytes, offset);
  keyCheck.copy(bytes, offset);
  return bytes;
}

function decodeHeader(bytes: Buffer): Header {
  if (!bytes.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new BackupRejected('not a Parley backup: the file does not start with "PARLEYBK"');
  }
  const version = bytes.readUInt8(8);
  if (version !== ENVELOPE_VERSION) {
    throw new BackupRejected(
      `backup envelope version ${version} is not one this release reads (it reads ${ENVELOPE_VERSION})`,
    );
  }
  const kdf = bytes.readUInt8(9);
  const params: ScryptParams = { log2N: bytes.readUInt8(10), r: bytes.readUInt8(11), p: bytes.readUInt8(12) };
  if (
    kdf !== KDF_SCRYPT ||
    params.log2N < 10 ||
    params.r < 1 ||
    params.p < 1 ||
    params.p > 16 ||
    scryptMemory(params) > MAX_SCRYPT_MEMORY
  ) {
    throw new BackupRejected(
      'the backup header was altered: its key derivation parameters are out of bounds',
    );
  }
  const saltStart = MAGIC.length + 5;
  const ivStart = saltStart + SALT_BYTES;
  const checkStart = ivStart + IV_BYTES;
  return {
    bytes,
    scrypt: params,
    salt: bytes.subarray(saltStart, ivStart),
    iv: bytes.subarray(ivStart, checkStart),
    keyCheck: bytes.subarray(checkStart, checkStart + CHECK_BYTES),
  };
}

/**
 * Encrypts what passes through: the header first, then the ciphertext, the tag last. The key is
 * derived before the first byte passes, from a fresh random salt; the IV is random too, and never
 * reused since each file has its own key.
 */
export class EncryptStream extends Transform {
  private cipher: CipherGCM | undefined;
  private readonly ready: Promise<void>;

  constructor(passphrase: string, params: ScryptParams = DEFAULT_SCRYPT) {
    super();
    const salt = randomBytes(SALT_BYTES);
    const iv = randomBytes(IV_BYTES);
    this.ready = deriveKey(passphrase, salt, params).then((key) => {
      const header = encodeHeader(params, salt, iv, key.keyCheck);
      this.cipher = createCipheriv('aes-256-gcm', key.aesKey, iv);
      this.cipher.setAAD(header);
      this.push(header);
    });
    // Surfaced by the first _transform or _flush; this keeps it from counting as unhandled before.
    this.ready.catch(() => undefined);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.cipher) return callback(null, this.cipher.update(chunk));
    this.ready.then(
      () => callback(null, this.cipher!.update(chunk)),
      (error: Error) => callback(error),
    );
  }

  override _flush(callback: TransformCallback): void {
    this.ready.then(
      () => {
        const last = this.cipher!.final();
        callback(null, Buffer.concat([last, this.cipher!.getAuthTag()]));
      },
      (error: Error) => callback(error),
    );
  }
}

export interface DecryptOptions {
  /** The passphrases to try, in order; the header's key check tells which one fits. */
  passphrases: readonly string[];
  /** Called once the header is read and a key fits: which one (its index in `passphrases`). */
  onKey?: (index: number) => void;
}

/**
 * Decrypts a backup file. GCM in Node checks the tag only in final(), and the tag is the file's
 * last 16 bytes: the last 16 bytes seen so far are always held back, and at the end they are the
 * tag. Plaintext flows out before the tag is checked, so a caller must treat everything it reads
 * as unverified until this stream has ended without an error (the restore's first pass writes
 * nothing for that reason).
 */
export class DecryptStream extends Transform {
  private headerBytes: Buffer[] = [];
  private headerLength = 0;
  private decipher: DecipherGCM | undefined;
  private held = Buffer.alloc(0);

  constructor(private readonly options: DecryptOptions) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.decipher) return callback(null, this.update(chunk));
    this.headerBytes.push(chunk);
    this.headerLength += chunk.length;
    if (this.headerLength < HEADER_BYTES) return callback();
    const all = Buffer.concat(this.headerBytes);
    this.headerBytes = [];
    this.openWith(all.subarray(0, HEADER_BYTES)).then(
      () => callback(null, this.update(all.subarray(HEADER_BYTES))),
      (error: Error) => callback(error),
    );
  }

  override _flush(callback: TransformCallback): void {
    if (!this.decipher || this.held.length < TAG_BYTES) {
      return callback(new BackupRejected('the backup is truncated: it ends before its authentication tag'));
    }
    this.decipher.setAuthTag(this.held);
    try {
      callback(null, this.decipher.final());
    } catch (cause) {
      callback(
        new BackupRejected(
          'the backup failed its integrity check (AES-GCM tag mismatch): it was altered or truncated',
          { cause },
        ),
      );
    }
  }

  private update(chunk: Buffer): Buffer {
    const joined = this.held.length === 0 ? chunk : Buffer.concat([this.held, chunk]);
    const release = Math.max(0, joined.length - TAG_BYTES);
    // A copy: a subarray would keep the whole incoming chunk alive for 16 bytes.
    this.held = Buffer.from(joined.subarray(release));
    return this.decipher!.update(joined.subarray(0, release));
  }

  private async openWith(headerBytes: Buffer): Promise<void> {
    const header = decodeHeader(headerBytes);
    // One after the other: each derivation takes scrypt's memory, and the first usually fits.
    for (const [index, passphrase] of this.options.passphrases.entries()) {
      const key = await deriveKey(passphrase, header.salt, header.scrypt);
      if (!timingSafeEqual(key.keyCheck, header.keyCheck)) continue;
      this.options.onKey?.(index);
      this.decipher = createDecipheriv('aes-256-gcm', key.aesKey, header.iv);
      this.decipher.setAAD(header.bytes);
      return;
    }
    throw new BackupRejected(
      `none of the ${this.options.passphrases.length} configured backup keys (BACKUP_ENCRYPTION_KEY, ` +
        'BACKUP_PREVIOUS_KEYS) opens this backup: it was written with another key, or its header was altered',
    );
  }
}
