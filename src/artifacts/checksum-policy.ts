/**
 * Which digest a release file must have: the one its published checksum file records (fetched
 * once and cached), and the one the operator pinned, when there is one, as well.
 */
import fs from 'node:fs/promises';
import { findChecksum } from '../util/checksum.js';
import type { Artifact, ChecksumFormat } from './artifact.js';
import type { ArtifactCache } from './cache.js';
import { displayUrl, fetchSmall, retrying, type Net } from './http.js';

export { ChecksumError } from '../util/checksum.js';

/**
 * The lower-case sha256 hex that `text` records for `assetName`. `source` (the checksum file's
 * URL or name) goes into error messages. Throws ChecksumError when the file is malformed or does
 * not mention the asset.
 */
export function expectedSha256(text: string, _format: ChecksumFormat, assetName: string, source?: string): string {
  return findChecksum(text, assetName, { algorithm: 'sha256', source });
}

/** The digest the published checksum file records for the artifact (checksum file cached too). */
export async function checksumDigest(artifact: Artifact, cache: ArtifactCache, net: Net): Promise<string> {
  const parse = (text: string): string => expectedSha256(text, artifact.checksumFormat, artifact.name, displayUrl(artifact.checksumUrl));

  const indexed = await cache.lookup(artifact.checksumUrl);
  if (indexed) {
    const blob = await cache.verifiedBlob(indexed.sha256);
    if (blob) {
      try {
        return parse(await fs.readFile(blob.path, 'utf8'));
      } catch {
        // Fall through and fetch a fresh copy.
      }
    }
    await cache.forget(artifact.checksumUrl);
  }

  const body = await retrying(artifact.checksumUrl, net, () => fetchSmall(artifact.checksumUrl, net));
  const hex = parse(body.toString('utf8'));
  // Cached only once it parsed, so an error page served with 200 never sticks.
  const stored = await cache.storeBytes(body);
  await cache.record({ url: artifact.checksumUrl, sha256: stored.sha256, size: body.length, verifiedBy: [] });
  return hex;
}
