import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';

/** The one place hoist computes digests: of rendered content, of cached files, of streams. */

export type HashAlgorithm = 'sha256' | 'sha512';

/** Hex sha256 of bytes or text held in memory. */
export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Hex digest of everything a stream yields. */
export function hashStream(stream: Readable, algorithm: HashAlgorithm = 'sha256'): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash(algorithm);
    stream.on('data', (chunk: Buffer | string) => h.update(chunk));
    stream.once('error', reject);
    stream.once('end', () => resolve(h.digest('hex')));
  });
}

/** Hex digest of a file, read in chunks so large tarballs are never held in memory. */
export function hashFile(path: string, algorithm: HashAlgorithm = 'sha256'): Promise<string> {
  return hashStream(createReadStream(path), algorithm);
}

export function sha256File(path: string): Promise<string> {
  return hashFile(path, 'sha256');
}

/** Hex sha256 and size of a file, as the artifact cache records them. */
export async function fileDigest(file: string): Promise<{ sha256: string; size: number }> {
  return { sha256: await sha256File(file), size: (await stat(file)).size };
}
