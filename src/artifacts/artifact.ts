/**
 * Shape of the checksum file published next to a release asset:
 *  - 'sha256sum':             `<hex>  <name>` lines (containerd `.sha256sum`, CNI `.tgz.sha256`)
 *  - 'sha256sum-clearsigned': the same lines inside a PGP clear-signed message (runc `runc.sha256sum`)
 *  - 'bare-hex':              only the hex digest, no file name (cri-tools `.tar.gz.sha256`)
 * The parser in util/checksum recognises all three by content; the format is recorded on each
 * artifact so callers and messages can tell what upstream publishes.
 */
export type ChecksumFormat = 'sha256sum' | 'sha256sum-clearsigned' | 'bare-hex';

/** One file downloaded from a release page, with where its published checksum lives. */
export interface Artifact {
  /** What the file is to the module that asked for it (a bundle, a binary). */
  id: string;
  /** Asset file name as published (also the name looked up in the checksum file). */
  name: string;
  /** Version of the component this asset belongs to, without a leading "v". */
  version: string;
  url: string;
  checksumUrl: string;
  checksumFormat: ChecksumFormat;
  /** Lower-case hex sha256 the user pinned for this asset; checked in addition to the checksum file. */
  pinnedSha256?: string;
}
