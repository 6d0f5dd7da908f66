import fs from 'node:fs/promises';
import type { Dispatcher } from 'undici';
import { ArtifactCache, defaultCacheDir, type CorruptBlob, type VerifiedBy } from './cache.js';
import { fileDigest } from '../util/hash.js';
import type { Artifact } from './artifact.js';
import { checksumDigest, expectedSha256 } from './checksum-policy.js';
import { DownloadError, displayUrl, downloadResumable, withDispatcher, type HttpOptions, type Net, type Progress } from './http.js';
import { withUrlLock } from './url-lock.js';
import { ControllerError } from '../util/errors.js';

export { DownloadError, displayUrl, proxyEnvironment } from './http.js';

export { defaultCacheDir } from './cache.js';
export type { VerifiedBy } from './cache.js';

export type ProgressCallback = (bytes: number, total: number | undefined, artifact: Artifact) => void;

export interface DownloadOptions extends HttpOptions {
  /** Default: $XDG_CACHE_HOME/hoist or ~/.cache/hoist. */
  cacheDir?: string;
  /** Never touch the network; anything not already cached is an error. */
  offline?: boolean;
  onProgress?: ProgressCallback;
}

export interface EnsuredArtifact {
  artifact: Artifact;
  /** Path of the verified file inside the cache (sha256/<hex>); never modify it. */
  path: string;
  sha256: string;
  size: number;
  fromCache: boolean;
  /** What the content was checked against when it entered the cache. */
  verifiedBy: VerifiedBy[];
}

/** The downloaded bytes don't hash to what was expected; the file has been removed from the cache. */
export class ChecksumMismatchError extends ControllerError {
  constructor(
    readonly file: string,
    readonly url: string,
    readonly expected: string,
    readonly actual: string,
    readonly source: VerifiedBy,
    readonly checksumUrl?: string,
  ) {
    const from = source === 'pinned' ? 'pinned_sha256' : `checksum file ${displayUrl(checksumUrl ?? '')}`;
    super(`sha256 mismatch for ${file} (${displayUrl(url)}): expected ${expected} (from ${from}), got ${actual}; ` + 'the file was removed from the cache');
    this.name = 'ChecksumMismatchError';
  }
}

/**
 * An offline run found a cached file whose bytes no longer hash to the digest it was verified
 * with; it has been removed, and only a run with network access can fetch it again.
 */
export class CorruptCacheError extends ChecksumMismatchError {
  constructor(file: string, url: string, cacheDir: string, expected: string, actual: string) {
    super(file, url, expected, actual, 'checksum-file');
    this.message =
      `${file} in the cache ${cacheDir} is corrupt: expected sha256 ${expected} (as verified when it was cached), got ${actual}; ` +
      'it was removed from the cache. Run `hoist fetch` on a machine with network access to the release URLs to fetch it again.';
    this.name = 'CorruptCacheError';
  }
}

export class OfflineMissError extends ControllerError {
  constructor(
    readonly missing: Artifact[],
    readonly cacheDir: string,
  ) {
    const lines = missing.map((a) => `  - ${a.id} ${a.version} (${a.name}): ${displayUrl(a.url)}`);
    super(
      `offline mode: ${missing.length === 1 ? 'this artifact is' : `${missing.length} artifacts are`} not in the cache ${cacheDir}:\n` +
        `${lines.join('\n')}\n` +
        'Run `hoist fetch` on a machine with network access to the release URLs to fill the cache first.',
    );
    this.name = 'OfflineMissError';
  }
}

interface Inflight {
  promise: Promise<EnsuredArtifact>;
  listeners: Set<ProgressCallback>;
}

// Keyed by cache dir + URL: two callers in one process never write the same partial file.
const inflight = new Map<string, Inflight>();

export async function ensureArtifact(artifact: Artifact, opts: DownloadOptions = {}): Promise<EnsuredArtifact> {
  const cache = new ArtifactCache(opts.cacheDir ?? defaultCacheDir());
  const key = `${cache.dir}\n${artifact.url}`;
  let entry = inflight.get(key);
  if (entry) {
    if (opts.onProgress) entry.listeners.add(opts.onProgress);
  } else {
    const listeners = new Set<ProgressCallback>();
    if (opts.onProgress) listeners.add(opts.onProgress);
    const fresh: Inflight = {
      listeners,
      promise: withDispatcher(opts, (dispatcher) => {
        const work = () =>
          ensureOne(artifact, cache, opts, dispatcher, (b, t) => {
            for (const l of listeners) l(b, t, artifact);
          });
        // Offline runs only read the cache; anything else may write it, one process per URL.
        return opts.offline ? work() : withUrlLock(cache, artifact.url, opts.signal, work);
      }).finally(() => inflight.delete(key)),
    };
    inflight.set(key, fresh);
    entry = fresh;
  }
  const result = await entry.promise;
  // A caller that joined someone else's download may have pinned a different digest.
  if (artifact.pinnedSha256 && result.sha256 !== artifact.pinnedSha256) {
    throw new ChecksumMismatchError(artifact.name, artifact.url, artifact.pinnedSha256, result.sha256, 'pinned');
  }
  return { ...result, artifact, verifiedBy: [...result.verifiedBy] };
}

/**
 * Ensures every artifact is cached and verified, in parallel. In offline mode all missing
 * artifacts are reported together in one OfflineMissError.
 */
export async function ensureArtifacts(list: Artifact[], opts: DownloadOptions = {}): Promise<EnsuredArtifact[]> {
  const settled = await Promise.allSettled(list.map((a) => ensureArtifact(a, opts)));
  const failures = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected').map((s) => s.reason as unknown);
  if (failures.length > 0) {
    if (failures.every((f) => f instanceof OfflineMissError)) {
      const misses = failures as OfflineMissError[];
      throw new OfflineMissError(
        misses.flatMap((m) => m.missing),
        misses[0].cacheDir,
      );
    }
    throw failures.find((f) => !(f instanceof OfflineMissError)) ?? failures[0];
  }
  return settled.map((s) => (s as PromiseFulfilledResult<EnsuredArtifact>).value);
}

/**
 * The digest of an artifact already in the cache, from the index alone (no re-hash): enough to
 * plan a run. Whatever is pushed to a host goes through ensureArtifact first, which re-verifies.
 */
export async function cachedDigest(artifact: Artifact, opts: DownloadOptions = {}): Promise<{ sha256: string; size: number } | undefined> {
  const cache = new ArtifactCache(opts.cacheDir ?? defaultCacheDir());
  const e = await cache.lookup(artifact.url);
  if (!e) return undefined;
  const st = await fs.stat(cache.blobPath(e.sha256)).catch(() => undefined);
  if (!st || st.size !== e.size) return undefined;
  if (artifact.pinnedSha256 && artifact.pinnedSha256 !== e.sha256) return undefined;
  return { sha256: e.sha256, size: e.size };
}

/** The sha256 the published checksum file gives for an artifact, without downloading the artifact (download = "host"). */
export async function fetchExpectedSha256(artifact: Artifact, opts: DownloadOptions = {}): Promise<string> {
  const cache = new ArtifactCache(opts.cacheDir ?? defaultCacheDir());
  if (opts.offline) {
    const e = await cache.lookup(artifact.checksumUrl);
    const seen: CorruptBlob = {};
    const blob = e && (await cache.verifiedBlob(e.sha256, seen));
    if (seen.expected && seen.actual)
      throw new CorruptCacheError(
        artifact.checksumUrl.slice(artifact.checksumUrl.lastIndexOf('/') + 1),
        artifact.checksumUrl,
        cache.dir,
        seen.expected,
        seen.actual,
      );
    if (!blob) throw new OfflineMissError([artifact], cache.dir);
    return expectedSha256(await fs.readFile(blob.path, 'utf8'), artifact.checksumFormat, artifact.name, displayUrl(artifact.checksumUrl));
  }
  const hex = await withDispatcher(opts, (dispatcher) => checksumDigest(artifact, cache, { dispatcher, opts }));
  if (artifact.pinnedSha256 && artifact.pinnedSha256 !== hex) {
    throw new ChecksumMismatchError(artifact.name, artifact.url, artifact.pinnedSha256, hex, 'pinned', artifact.checksumUrl);
  }
  return hex;
}

async function ensureOne(
  artifact: Artifact,
  cache: ArtifactCache,
  opts: DownloadOptions,
  dispatcher: Dispatcher | undefined,
  progress: Progress,
): Promise<EnsuredArtifact> {
  const pinned = artifact.pinnedSha256;

  const indexed = await cache.lookup(artifact.url);
  const seen: CorruptBlob = {};
  if (indexed) {
    const blob = await cache.verifiedBlob(indexed.sha256, seen);
    if (blob) {
      if (pinned && pinned !== indexed.sha256) {
        await cache.removeBlob(indexed.sha256);
        await cache.forget(artifact.url);
        throw new ChecksumMismatchError(artifact.name, artifact.url, pinned, indexed.sha256, 'pinned');
      }
      progress(blob.size, blob.size);
      return { artifact, path: blob.path, sha256: indexed.sha256, size: blob.size, fromCache: true, verifiedBy: indexed.verifiedBy };
    }
    await cache.forget(artifact.url);
  }

  // The same bytes may already be cached under another URL (a mirror, a renamed base URL).
  if (pinned) {
    const blob = await cache.verifiedBlob(pinned, seen);
    if (blob) {
      await cache.record({ url: artifact.url, sha256: pinned, size: blob.size, verifiedBy: ['pinned'] });
      progress(blob.size, blob.size);
      return { artifact, path: blob.path, sha256: pinned, size: blob.size, fromCache: true, verifiedBy: ['pinned'] };
    }
  }

  if (opts.offline && seen.expected && seen.actual) throw new CorruptCacheError(artifact.name, artifact.url, cache.dir, seen.expected, seen.actual);
  if (opts.offline) throw new OfflineMissError([artifact], cache.dir);
  const net: Net = { dispatcher, opts };

  let fromFile: string | undefined;
  try {
    fromFile = await checksumDigest(artifact, cache, net);
  } catch (err) {
    // Only an unreachable checksum file may be replaced by the pin; a file that is reachable but
    // wrong or unparsable is a red flag and stops the install.
    if (!(pinned && err instanceof DownloadError)) throw err;
  }

  if (fromFile && (!pinned || pinned === fromFile)) {
    const blob = await cache.verifiedBlob(fromFile);
    if (blob) {
      const verifiedBy: VerifiedBy[] = pinned ? ['checksum-file', 'pinned'] : ['checksum-file'];
      await cache.record({ url: artifact.url, sha256: fromFile, size: blob.size, verifiedBy });
      progress(blob.size, blob.size);
      return { artifact, path: blob.path, sha256: fromFile, size: blob.size, fromCache: true, verifiedBy };
    }
  }

  const partial = cache.partialPath(artifact.url);
  await downloadResumable(artifact.url, cache, net, progress);
  const actual = await fileDigest(partial);

  if (pinned && actual.sha256 !== pinned) {
    await cache.removePartial(artifact.url);
    throw new ChecksumMismatchError(artifact.name, artifact.url, pinned, actual.sha256, 'pinned');
  }
  if (fromFile && actual.sha256 !== fromFile) {
    await cache.removePartial(artifact.url);
    // The cached checksum file may be the stale party; fetch it again next time.
    await cache.forget(artifact.checksumUrl);
    throw new ChecksumMismatchError(artifact.name, artifact.url, fromFile, actual.sha256, 'checksum-file', artifact.checksumUrl);
  }
  const verifiedBy: VerifiedBy[] = [];
  if (fromFile) verifiedBy.push('checksum-file');
  if (pinned) verifiedBy.push('pinned');

  const stored = await cache.storeBlob(partial, actual.sha256);
  await cache.removePartial(artifact.url);
  await cache.record({ url: artifact.url, sha256: actual.sha256, size: actual.size, verifiedBy });
  return { artifact, path: stored, sha256: actual.sha256, size: actual.size, fromCache: false, verifiedBy };
}
