import { findChecksum } from '../util/checksum.js';

/**
 * Shape of the checksum file published next to a release asset:
 *  - 'sha256sum':             `<hex>  <name>` lines (containerd `.sha256sum`, CNI `.tgz.sha256`)
 *  - 'sha256sum-clearsigned': the same lines inside a PGP clear-signed message (runc `runc.sha256sum`)
 *  - 'bare-hex':              only the hex digest, no file name (cri-tools `.tar.gz.sha256`)
 * The parser in util/checksum recognises all three by content; the format is recorded on each
 * artifact so callers and messages can tell what upstream publishes.
 */
export type ChecksumFormat = 'sha256sum' | 'sha256sum-clearsigned' | 'bare-hex';

export { ChecksumError } from '../util/checksum.js';

/**
 * The lower-case sha256 hex that `text` records for `assetName`. `source` (the checksum file's
 * URL or name) goes into error messages. Throws ChecksumError when the file is malformed or does
 * not mention the asset.
 */
export function expectedSha256(text: string, _format: ChecksumFormat, assetName: string, source?: string): string {
  return findChecksum(text, assetName, { algorithm: 'sha256', source });
}
