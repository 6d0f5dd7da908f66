import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Dispatcher } from 'undici';
import { addSecret } from '../util/redact.js';
import { ArtifactCache, defaultCacheDir, type VerifiedBy } from './cache.js';
import { fileDigest } from '../util/hash.js';
import type { Artifact } from './artifact.js';
import { ChecksumError, expectedSha256 } from './checksum-format.js';

export { defaultCacheDir } from './cache.js';
export type { VerifiedBy } from './cache.js';

export type ProgressCallback = (bytes: number, total: number | undefined, artifact: Artifact) => void;

export interface DownloadOptions {
  /** Default: $XDG_CACHE_HOME/hoist or ~/.cache/hoist. */
  cacheDir?: string;
  /** Never touch the network; anything not already cached is an error. */
  offline?: boolean;
  onProgress?: ProgressCallback;
  /** Connect / response-headers / between-body-chunks inactivity timeout. Default 30 s. */
  timeoutMs?: number;
  /** Retries after a network error, timeout or retryable HTTP status (5xx, 408, 429). Default 4. */
  retries?: number;
  /** First backoff delay; doubles per consecutive failure. Default 1000 ms. */
  retryDelayMs?: number;
  /** Backoff ceiling. Default 30 s. */
  maxRetryDelayMs?: number;
  signal?: AbortSignal;
  /** Custom undici dispatcher (e.g. a proxy agent). Default: an Agent with `timeoutMs`. */
  dispatcher?: Dispatcher;
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
export class ChecksumMismatchError extends Error {
  constructor(
    readonly file: string,
    readonly url: string,
    readonly expected: string,
    readonly actual: string,
    readonly source: VerifiedBy,
    readonly checksumUrl?: string,
  ) {
    const from = source === 'pinned' ? 'pinned_sha256' : `checksum file ${displayUrl(checksumUrl ?? '')}`;
    super(
      `sha256 mismatch for ${file} (${displayUrl(url)}): expected ${expected} (from ${from}), got ${actual}; ` +
        'the file was removed from the cache',
    );
    this.name = 'ChecksumMismatchError';
  }
}

/** An HTTP or network failure that survived all retries, or a status that is never retried. */
export class DownloadError extends Error {
  constructor(
    message: string,
    readonly url: string,
    readonly status?: number,
    readonly attempts = 1,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'DownloadError';
  }
}

export class OfflineMissError extends Error {
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

/** URL as shown in messages: credentials of a mirror never appear. */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    if (!u.username && !u.password) return url;
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return url;
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

// undici costs a noticeable share of start-up; a run whose artifacts are all cached never loads it.
let undiciModule: Promise<typeof import('undici')> | undefined;
const undici = () => (undiciModule ??= import('undici'));

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
    const blob = e && (await cache.verifiedBlob(e.sha256));
    if (!blob) throw new OfflineMissError([artifact], cache.dir);
    return expectedSha256(await fs.readFile(blob.path, 'utf8'), artifact.checksumFormat, artifact.name, displayUrl(artifact.checksumUrl));
  }
  const hex = await withDispatcher(opts, (dispatcher) => checksumDigest(artifact, cache, { dispatcher, opts }));
  if (artifact.pinnedSha256 && artifact.pinnedSha256 !== hex) {
    throw new ChecksumMismatchError(artifact.name, artifact.url, artifact.pinnedSha256, hex, 'pinned', artifact.checksumUrl);
  }
  return hex;
}

async function withDispatcher<T>(opts: DownloadOptions, fn: (d: Dispatcher | undefined) => Promise<T>): Promise<T> {
  if (opts.offline || opts.dispatcher) return fn(opts.dispatcher);
  const t = opts.timeoutMs ?? 30_000;
  const { Agent } = await undici();
  const agent = new Agent({ headersTimeout: t, bodyTimeout: t, connect: { timeout: t } });
  try {
    return await fn(agent);
  } finally {
    await agent.close();
  }
}

type Progress = (bytes: number, total: number | undefined) => void;

/**
 * Two hoist processes sharing a cache must not write one partial file together: the first takes
 * a lock file (its pid inside) and downloads; the other waits, then finds the artifact cached.
 * A lock whose process is gone is taken over.
 */
async function withUrlLock<T>(cache: ArtifactCache, url: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
  const lock = `${cache.partialPath(url)}.lock`;
  await fs.mkdir(path.dirname(lock), { recursive: true });
  for (;;) {
    try {
      await fs.writeFile(lock, String(process.pid), { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number(await fs.readFile(lock, 'utf8').catch(() => ''));
      let alive = Number.isInteger(holder) && holder > 0 && holder !== process.pid;
      if (alive) {
        try {
          process.kill(holder, 0);
        } catch {
          alive = false;
        }
      }
      if (!alive) {
        await fs.rm(lock, { force: true });
        continue;
      }
      if (signal?.aborted) throw new DownloadError(`download of ${displayUrl(url)} aborted`, url);
      await sleep(250);
    }
  }
  try {
    return await fn();
  } finally {
    await fs.rm(lock, { force: true });
  }
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
  if (indexed) {
    const blob = await cache.verifiedBlob(indexed.sha256);
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
    const blob = await cache.verifiedBlob(pinned);
    if (blob) {
      await cache.record({ url: artifact.url, sha256: pinned, size: blob.size, verifiedBy: ['pinned'] });
      progress(blob.size, blob.size);
      return { artifact, path: blob.path, sha256: pinned, size: blob.size, fromCache: true, verifiedBy: ['pinned'] };
    }
  }

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

/** The digest the published checksum file records for the artifact (checksum file cached too). */
async function checksumDigest(artifact: Artifact, cache: ArtifactCache, net: Net): Promise<string> {
  const parse = (text: string): string =>
    expectedSha256(text, artifact.checksumFormat, artifact.name, displayUrl(artifact.checksumUrl));

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

interface Net {
  dispatcher: Dispatcher | undefined;
  opts: DownloadOptions;
}

class HttpStatusError extends DownloadError {
  constructor(url: string, status: number) {
    super(`GET ${displayUrl(url)} failed: HTTP ${status}`, url, status);
    this.name = 'HttpStatusError';
  }
}

const NON_RETRYABLE_FS_CODES = new Set(['ENOSPC', 'EDQUOT', 'EACCES', 'EPERM', 'EROFS', 'EISDIR', 'ENOTDIR']);

function isRetryable(err: unknown, net: Net): boolean {
  if (net.opts.signal?.aborted) return false;
  if (err instanceof HttpStatusError) {
    const s = err.status ?? 0;
    return s >= 500 || s === 408 || s === 429;
  }
  if (err instanceof ChecksumError) return false;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code && NON_RETRYABLE_FS_CODES.has(code)) return false;
  // Everything else is the network: refused/reset connections, timeouts, bodies cut short.
  return true;
}

async function retrying<T>(url: string, net: Net, attempt: (n: number) => Promise<T>, madeProgress?: () => Promise<boolean>): Promise<T> {
  const retries = net.opts.retries ?? 4;
  const base = net.opts.retryDelayMs ?? 1000;
  const max = net.opts.maxRetryDelayMs ?? 30_000;
  // A transfer that keeps advancing is allowed more attempts than one that fails on the spot,
  // but not an unbounded number.
  const hardCap = (retries + 1) * 5;
  let consecutive = 0;
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (err) {
      if (!isRetryable(err, net)) {
        if (err instanceof DownloadError || err instanceof ChecksumError) throw err;
        throw new DownloadError(`GET ${displayUrl(url)} failed: ${describe(err)}`, url, undefined, n, { cause: err });
      }
      consecutive = madeProgress && (await madeProgress()) ? 1 : consecutive + 1;
      if (consecutive > retries || n >= hardCap) {
        const status = err instanceof HttpStatusError ? err.status : undefined;
        throw new DownloadError(`GET ${displayUrl(url)} failed after ${n} attempts: ${describe(err)}`, url, status, n, { cause: err });
      }
      const delay = Math.min(max, base * 2 ** (consecutive - 1));
      // Jitter spreads out many hosts/processes retrying against the same mirror.
      await sleep(delay / 2 + Math.random() * (delay / 2), undefined, { signal: net.opts.signal });
    }
  }
}

function describe(err: unknown): string {
  if (err instanceof HttpStatusError) return `HTTP ${err.status}`;
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
    return `${err.message}${cause}`;
  }
  return String(err);
}

interface Prepared {
  url: string;
  headers: Record<string, string>;
}

/** WHATWG fetch refuses URLs with credentials; a mirror's user:pass becomes a Basic header. */
function prepare(url: string): Prepared {
  const u = new URL(url);
  const headers: Record<string, string> = { 'accept-encoding': 'identity', 'user-agent': 'hoist' };
  if (u.username || u.password) {
    const user = decodeURIComponent(u.username);
    const pass = decodeURIComponent(u.password);
    addSecret(pass);
    const token = Buffer.from(`${user}:${pass}`).toString('base64');
    addSecret(token);
    headers.authorization = `Basic ${token}`;
    u.username = '';
    u.password = '';
  }
  return { url: u.toString(), headers };
}

const MAX_CHECKSUM_FILE = 1024 * 1024;

async function fetchSmall(url: string, net: Net): Promise<Buffer> {
  const p = prepare(url);
  const res = await (await undici()).fetch(p.url, { headers: p.headers, dispatcher: net.dispatcher, signal: net.opts.signal });
  if (!res.ok) {
    await res.body?.cancel().catch(() => {});
    throw new HttpStatusError(url, res.status);
  }
  const buf = Buffer.from(await res.arrayBuffer());
  if (buf.length > MAX_CHECKSUM_FILE) {
    throw new ChecksumError(`${displayUrl(url)}: ${buf.length} bytes is far too large for a checksum file`);
  }
  return buf;
}

async function fileSize(file: string): Promise<number> {
  try {
    return (await fs.stat(file)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
}

/** Downloads `url` into the cache's partial file, resuming what an earlier attempt left there. */
async function downloadResumable(url: string, cache: ArtifactCache, net: Net, progress: Progress): Promise<void> {
  const partial = cache.partialPath(url);
  await fs.mkdir(path.dirname(partial), { recursive: true });
  let sizeBefore = 0;
  await retrying(
    url,
    net,
    async () => {
      sizeBefore = await fileSize(partial);
      await transferOnce(url, cache, net, progress, sizeBefore > 0);
    },
    async () => (await fileSize(partial)) > sizeBefore,
  );
}

function parseContentRange(v: string | null): { start: number; total?: number } | undefined {
  const m = v ? /^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/i.exec(v.trim()) : null;
  if (!m) return undefined;
  return { start: Number(m[1]), total: m[3] === '*' ? undefined : Number(m[3]) };
}

async function transferOnce(url: string, cache: ArtifactCache, net: Net, progress: Progress, mayResume: boolean): Promise<void> {
  const partial = cache.partialPath(url);
  const offset = mayResume ? await fileSize(partial) : 0;
  const p = prepare(url);
  const headers = { ...p.headers };
  if (offset > 0) {
    headers.range = `bytes=${offset}-`;
    // If-Range makes the server send the whole (new) file instead of splicing a changed one onto
    // the old bytes. Weak ETags are not allowed in If-Range.
    const meta = await cache.readPartialMeta(url);
    if (meta?.etag && !meta.etag.startsWith('W/')) headers['if-range'] = meta.etag;
    else if (meta?.lastModified) headers['if-range'] = meta.lastModified;
  }

  const res = await (await undici()).fetch(p.url, { headers, dispatcher: net.dispatcher, signal: net.opts.signal });
  if (res.status === 416 && offset > 0) {
    // The partial is as long as (or longer than) the file: it can't be trusted, start over.
    await res.body?.cancel().catch(() => {});
    await cache.removePartial(url);
    return transferOnce(url, cache, net, progress, false);
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => {});
    throw new HttpStatusError(url, res.status);
  }

  let start = 0;
  let total: number | undefined;
  if (res.status === 206 && offset > 0) {
    const range = parseContentRange(res.headers.get('content-range'));
    if (!range || range.start !== offset) {
      await res.body?.cancel().catch(() => {});
      await cache.removePartial(url);
      return transferOnce(url, cache, net, progress, false);
    }
    start = offset;
    total = range.total;
  } else {
    // 200: a fresh download, or a server that ignores Range and sends everything again.
    const len = res.headers.get('content-length');
    total = len !== null && /^\d+$/.test(len) ? Number(len) : undefined;
    await cache.writePartialMeta({
      url,
      etag: res.headers.get('etag') ?? undefined,
      lastModified: res.headers.get('last-modified') ?? undefined,
    });
  }

  const fh = await fs.open(partial, start > 0 ? 'a' : 'w', 0o644);
  let bytes = start;
  try {
    if (res.body) {
      for await (const chunk of res.body) {
        const buf = chunk as Uint8Array;
        await fh.write(buf);
        bytes += buf.byteLength;
        progress(bytes, total);
      }
    }
  } finally {
    await fh.close();
  }
  if (total !== undefined && bytes !== total) {
    // Counts as a network failure: the next attempt resumes from what arrived.
    throw new Error(`connection closed after ${bytes} of ${total} bytes`);
  }
}
