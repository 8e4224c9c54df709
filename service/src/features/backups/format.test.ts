import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { BackupRejected, DecryptStream, EncryptStream, HEADER_BYTES, MAGIC, TAG_BYTES } from './format.js';

const KEY = 'correct horse battery staple';
const OTHER_KEY = 'another passphrase, not this one';

async function collect(source: Readable, transform: NodeJS.ReadWriteStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  await pipeline(source, transform, async (output: AsyncIterable<string | Buffer>) => {
    for await (const chunk of output) chunks.push(Buffer.from(chunk));
  });
  return Buffer.concat(chunks);
}

/** Splits a buffer into uneven chunks, as a network read would deliver it. */
function chunked(bytes: Buffer, size = 1_000): Readable {
  const parts: Buffer[] = [];
  for (let offset = 0; offset < bytes.length; offset += size)
    parts.push(bytes.subarray(offset, offset + size));
  return Readable.from(parts, { objectMode: false });
}

const encrypt = (plaintext: Buffer, key = KEY) => collect(chunked(plaintext, 4_096), new EncryptStream(key));
const decrypt = (file: Buffer, keys = [KEY], onKey?: (index: number) => void) =>
  collect(chunked(file, 777), new DecryptStream({ passphrases: keys, onKey }));

describe('backup encryption envelope', () => {
  const plaintext = randomBytes(100_000);

  it('round-trips, with the header in front and the tag at the end', async () => {
    const file = await encrypt(plaintext);
    expect(file.subarray(0, MAGIC.length).toString()).toBe('PARLEYBK');
    expect(file.length).toBe(HEADER_BYTES + plaintext.length + TAG_BYTES);
    expect((await decrypt(file)).equals(plaintext)).toBe(true);
  });

  it('round-trips an empty plaintext', async () => {
    expect((await decrypt(await encrypt(Buffer.alloc(0)))).length).toBe(0);
  });

  it('uses a fresh salt and IV each time: the same plaintext never encrypts the same way', async () => {
    const [a, b] = [await encrypt(plaintext), await encrypt(plaintext)];
    expect(a.subarray(13, 41).equals(b.subarray(13, 41))).toBe(false);
    expect(a.subarray(HEADER_BYTES).equals(b.subarray(HEADER_BYTES))).toBe(false);
  });

  it('refuses a wrong key from the header alone, before any plaintext', async () => {
    const file = await encrypt(plaintext);
    const output: Buffer[] = [];
    const decrypting = pipeline(
      chunked(file),
      new DecryptStream({ passphrases: [OTHER_KEY] }),
      async (source: AsyncIterable<string | Buffer>) => {
        for await (const chunk of source) output.push(Buffer.from(chunk));
      },
    );
    await expect(decrypting).rejects.toThrow(/none of the 1 configured backup keys/);
    expect(output).toEqual([]);
  });

  it('tries the configured keys in turn and says which one fits', async () => {
    const file = await encrypt(plaintext, OTHER_KEY);
    let used = -1;
    expect((await decrypt(file, [KEY, OTHER_KEY], (index) => (used = index))).equals(plaintext)).toBe(true);
    expect(used).toBe(1);
  });

  it.each([
    ['the magic', 0],
    ['the envelope version', 8],
    ['the scrypt parameters', 10],
    ['the salt', 20],
    ['the IV', 30],
    ['the key check', 50],
    ['the first byte of ciphertext', HEADER_BYTES],
    ['a byte in the middle', HEADER_BYTES + 50_000],
    ['the last byte of ciphertext', HEADER_BYTES + 100_000 - 1],
    ['the tag', HEADER_BYTES + 100_000 + 3],
  ])('refuses a file with one flipped bit in %s', async (_where, offset) => {
    const file = await encrypt(plaintext);
    const tampered = Buffer.from(file);
    tampered[offset]! ^= 0x01;
    await expect(decrypt(tampered)).rejects.toBeInstanceOf(BackupRejected);
  });

  it('refuses a truncated file, and one with bytes appended', async () => {
    const file = await encrypt(plaintext);
    await expect(decrypt(file.subarray(0, file.length - 1))).rejects.toThrow(/integrity check/);
    await expect(decrypt(file.subarray(0, HEADER_BYTES + 10))).rejects.toThrow(/truncated|integrity/);
    await expect(decrypt(file.subarray(0, 40))).rejects.toThrow(/truncated/);
    await expect(decrypt(Buffer.concat([file, Buffer.from([0])]))).rejects.toThrow(/integrity check/);
  });

  it('refuses a header that asks scrypt for more memory than it allows, without deriving', async () => {
    const file = await encrypt(plaintext);
    const greedy = Buffer.from(file);
    greedy[10] = 30; // N = 2^30
    await expect(decrypt(greedy)).rejects.toThrow(/out of bounds/);
  });
});
