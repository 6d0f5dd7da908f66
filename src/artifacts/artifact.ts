import type { ChecksumFormat } from './checksum-policy.js';

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
