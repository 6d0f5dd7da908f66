/**
 * HTTP for release files: a retrying GET with backoff, resumable downloads into the cache's
 * partial file, small bodies (checksum files) read whole. Credentials in a mirror URL become a
 * Basic header and never appear in messages.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Dispatcher } from 'undici';
import { addSecret } from '../util/redact.js';
import type { ArtifactCache } from './cache.js';
import { ChecksumError } from '../util/checksum.js';

/** How downloads talk to the network. */
export interface HttpOptions {
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

export type Progress = (bytes: number, total: number | undefined) => void;


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

// undici costs a noticeable share of start-up; a run whose artifacts are all cached never loads it.
let undiciModule: Promise<typeof import('undici')> | undefined;
// undici is CommonJS: its exports are the namespace's `default` when bundled, named ones otherwise.
const undici = () => (undiciModule ??= import('undici').then((m) => (m as unknown as { default?: typeof m }).default ?? m));

/**
 * The proxy settings of the environment, as curl and most tools read them: HTTPS_PROXY for https
 * (falling back to HTTP_PROXY), HTTP_PROXY for http, NO_PROXY for hosts to reach directly; the
 * lower-case spellings too. Undefined when none is set.
 */
export function proxyEnvironment(env: NodeJS.ProcessEnv = process.env): { httpProxy?: string; httpsProxy?: string; noProxy?: string } | undefined {
  const get = (k: string) => env[k.toLowerCase()] || env[k] || undefined;
  const httpProxy = get('HTTP_PROXY');
  const httpsProxy = get('HTTPS_PROXY') ?? httpProxy;
  if (!httpProxy && !httpsProxy) return undefined;
  for (const u of [httpProxy, httpsProxy]) {
    // A proxy URL may carry a password; it is a secret like any other.
    try {
      if (u) addSecret(decodeURIComponent(new URL(u).password));
    } catch {
      // Not a URL: undici refuses it with its own message.
    }
  }
  return { httpProxy, httpsProxy, noProxy: get('NO_PROXY') };
}

export async function withDispatcher<T>(opts: HttpOptions & { offline?: boolean }, fn: (d: Dispatcher | undefined) => Promise<T>): Promise<T> {
  if (opts.offline || opts.dispatcher) return fn(opts.dispatcher);
  const t = opts.timeoutMs ?? 30_000;
  const { Agent, EnvHttpProxyAgent } = await undici();
  const proxy = proxyEnvironment();
  const timeouts = { headersTimeout: t, bodyTimeout: t, connect: { timeout: t } };
  // http:// through the proxy as absolute-form requests (what curl sends, and what a caching proxy
  // can cache); https:// through a CONNECT tunnel.
  const agent = proxy ? new EnvHttpProxyAgent({ ...timeouts, ...proxy, proxyTunnel: false }) : new Agent(timeouts);
  try {
    return await fn(agent);
  } finally {
    await agent.close();
  }
}

export interface Net {
  dispatcher: Dispatcher | undefined;
  opts: HttpOptions;
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

export async function retrying<T>(url: string, net: Net, attempt: (n: number) => Promise<T>, madeProgress?: () => Promise<boolean>): Promise<T> {
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

export async function fetchSmall(url: string, net: Net): Promise<Buffer> {
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
export async function downloadResumable(url: string, cache: ArtifactCache, net: Net, progress: Progress): Promise<void> {
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
