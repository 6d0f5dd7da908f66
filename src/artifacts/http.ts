/**
 * HTTP for release files: a retrying GET with backoff, resumable downloads into the cache's
 * partial file, small bodies (checksum files) read whole. Credentials in a mirror URL become a
 * Basic header and never appear in messages.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Dispatcher } from 'undici';
import { extraCa } from './extra-ca.js';
import { addSecret } from '../util/redact.js';
import type { ArtifactCache } from './cache.js';
import { ChecksumError } from '../util/checksum.js';
import { ControllerError } from '../util/errors.js';

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
export class DownloadError extends ControllerError {
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
  if (opts.offline) return fn(opts.dispatcher);
  const { Agent, EnvHttpProxyAgent, interceptors } = await undici();
  const t = opts.timeoutMs ?? 30_000;
  const proxy = proxyEnvironment();
  // Only when bin/hoist deferred NODE_EXTRA_CA_CERTS: one context, its certificates added to node's store.
  const { secureContext, problem } = opts.dispatcher ? {} : await extraCa();
  const tls = { timeout: t, ...(secureContext ? { secureContext } : {}) };
  const timeouts = { headersTimeout: t, bodyTimeout: t, connect: tls };
  // http:// through a proxy as absolute-form requests (what curl sends, and what a caching proxy
  // can cache); https:// through a CONNECT tunnel. Through a proxy, `connect` is not used: the
  // origin's TLS is `requestTls`, the proxy's own `proxyTls` (undici speaks TLS to an http proxy only
  // for an https URL, but to a SOCKS proxy whenever proxyTls is given).
  const socks = proxy && [proxy.httpProxy, proxy.httpsProxy].some((u) => u && /^socks/i.test(u));
  const agent = opts.dispatcher
    ? undefined
    : proxy
      ? new EnvHttpProxyAgent({ ...timeouts, ...proxy, proxyTunnel: false, requestTls: tls, ...(socks ? {} : { proxyTls: tls }) })
      : new Agent(timeouts);
  // request() does not follow redirects by itself (release hosts redirect to their storage).
  const dispatcher = (opts.dispatcher ?? agent!).compose(interceptors.redirect({ maxRedirections: 10 }));
  const stop = catchClientCrashes(agent ?? opts.dispatcher!);
  try {
    return await fn(dispatcher);
  } catch (e) {
    // Node only warns about a CA file it cannot use; a certificate check that then fails says why.
    if (problem && failedCertificateCheck(e)) {
      try {
        (e as Error).message += ` (${problem})`;
      } catch {
        // A message that is only a getter (an abort's DOMException) stays as it is.
      }
    }
    throw e;
  } finally {
    stop();
    await agent?.close().catch(() => undefined);
  }
}

/** OpenSSL's verification failures, as node names them, anywhere in the error's causes. */
function failedCertificateCheck(e: unknown): boolean {
  for (let c = e, depth = 0; c instanceof Error && depth < 8; c = c.cause, depth++) {
    const code = (c as NodeJS.ErrnoException).code ?? '';
    if (/^(UNABLE_TO_|SELF_SIGNED_CERT|DEPTH_ZERO_SELF_SIGNED_CERT|CERT_|ERR_TLS_CERT_ALTNAME_INVALID)/.test(code)) return true;
  }
  return false;
}

const crashGuards = new Set<(e: unknown) => boolean>();

/**
 * An exception thrown by the HTTP client from a socket event (out of any request's reach) would end
 * the process with a stack trace. While downloads run, one that comes from undici fails them
 * instead: the dispatcher is destroyed with the cause, every request in flight rejects with it.
 */
function catchClientCrashes(d: Dispatcher): () => void {
  const guard = (e: unknown): boolean => {
    if (!(e instanceof Error) || !/[\\/]undici[\\/]/.test(e.stack ?? '')) return false;
    void d.destroy(new HttpClientCrash(e)).catch(() => undefined);
    return true;
  };
  if (crashGuards.size === 0) process.on('uncaughtException', onUncaught);
  crashGuards.add(guard);
  return () => {
    crashGuards.delete(guard);
    if (crashGuards.size === 0) process.off('uncaughtException', onUncaught);
  };
}

function onUncaught(e: unknown): void {
  for (const g of crashGuards) if (g(e)) return;
  // Not the HTTP client's: what Node would have done without a handler.
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
}

export interface Net {
  dispatcher: Dispatcher | undefined;
  opts: HttpOptions;
}

class HttpStatusError extends DownloadError {
  constructor(
    url: string,
    status: number,
    /** The server's Retry-After, in ms, when it sent one (503, 429). */
    readonly retryAfterMs?: number,
  ) {
    super(`GET ${displayUrl(url)} failed: HTTP ${status}`, url, status);
    this.name = 'HttpStatusError';
  }
}

/** Retry-After as seconds or an HTTP date, in ms from now; undefined when absent or unreadable. */
export function parseRetryAfter(v: string | string[] | undefined, now = Date.now()): number | undefined {
  const t = (Array.isArray(v) ? v[0] : v)?.trim();
  if (!t) return undefined;
  if (/^\d+$/.test(t)) return Number(t) * 1000;
  const d = Date.parse(t);
  return Number.isNaN(d) ? undefined : Math.max(0, d - now);
}

/**
 * A failure inside the HTTP client itself (an assertion in its parser), not the network's: what
 * arrived can't be trusted, so the partial file goes, and the run stops with the cause.
 */
export class HttpClientCrash extends ControllerError {
  constructor(readonly crash: unknown) {
    super(`the HTTP client failed internally: ${crash instanceof Error ? crash.message.split('\n')[0] : String(crash)}`);
    this.name = 'HttpClientCrash';
  }
}

const NON_RETRYABLE_FS_CODES = new Set(['ENOSPC', 'EDQUOT', 'EACCES', 'EPERM', 'EROFS', 'EISDIR', 'ENOTDIR']);

function isRetryable(err: unknown, net: Net): boolean {
  if (net.opts.signal?.aborted) return false;
  if (err instanceof HttpStatusError) {
    const s = err.status ?? 0;
    return s >= 500 || s === 408 || s === 429;
  }
  if (err instanceof ChecksumError || err instanceof HttpClientCrash) return false;
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
      let delay = Math.min(max, base * 2 ** (consecutive - 1));
      // A server that says when to come back is believed, within the backoff ceiling.
      const after = err instanceof HttpStatusError ? err.retryAfterMs : undefined;
      if (after !== undefined && after <= max) delay = Math.max(delay, after * 2);
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

/**
 * One GET with undici's request(): its body is a Node stream that hoist reads as fast as it arrives.
 * (fetch()'s body stream makes the client pause its parser between reads, and a server that closes
 * the connection at that moment, as Python's http.server does, crashed it: undici's `assert(!this.paused)`.)
 */
async function get(url: string, headers: Record<string, string>, net: Net): Promise<Dispatcher.ResponseData> {
  const { request } = await undici();
  return request(url, { method: 'GET', headers, dispatcher: net.dispatcher, signal: net.opts.signal });
}

const header = (h: Dispatcher.ResponseData['headers'], name: string): string | null => {
  const v = h[name];
  return v === undefined ? null : Array.isArray(v) ? v[0] : v;
};

/** Drops a body hoist won't read (without the "Request aborted" error destroy() would raise). */
const discard = (res: Dispatcher.ResponseData) => void res.body.dump().catch(() => undefined);

async function failStatus(url: string, res: Dispatcher.ResponseData): Promise<never> {
  discard(res);
  throw new HttpStatusError(url, res.statusCode, parseRetryAfter(res.headers['retry-after']));
}

export async function fetchSmall(url: string, net: Net): Promise<Buffer> {
  const p = prepare(url);
  const res = await get(p.url, p.headers, net);
  if (res.statusCode < 200 || res.statusCode > 299) return failStatus(url, res);
  const buf = Buffer.from(await res.body.arrayBuffer());
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
  try {
    await retrying(
      url,
      net,
      async () => {
        sizeBefore = await fileSize(partial);
        await transferOnce(url, cache, net, progress, sizeBefore > 0);
      },
      async () => (await fileSize(partial)) > sizeBefore,
    );
  } catch (e) {
    // A network failure leaves the partial file to resume from; a crash of the client leaves nothing.
    if (e instanceof Error && e.cause instanceof HttpClientCrash) await cache.removePartial(url);
    throw e;
  }
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

  const res = await get(p.url, headers, net);
  if (res.statusCode === 416 && offset > 0) {
    // The partial is as long as (or longer than) the file: it can't be trusted, start over.
    discard(res);
    await cache.removePartial(url);
    return transferOnce(url, cache, net, progress, false);
  }
  if (res.statusCode < 200 || res.statusCode > 299) return failStatus(url, res);

  let start = 0;
  let total: number | undefined;
  if (res.statusCode === 206 && offset > 0) {
    const range = parseContentRange(header(res.headers, 'content-range'));
    if (!range || range.start !== offset) {
      discard(res);
      await cache.removePartial(url);
      return transferOnce(url, cache, net, progress, false);
    }
    start = offset;
    total = range.total;
  } else {
    // 200: a fresh download, or a server that ignores Range and sends everything again.
    const len = header(res.headers, 'content-length');
    total = len !== null && /^\d+$/.test(len) ? Number(len) : undefined;
    await cache.writePartialMeta({
      url,
      etag: header(res.headers, 'etag') ?? undefined,
      lastModified: header(res.headers, 'last-modified') ?? undefined,
    });
  }

  const fh = await fs.open(partial, start > 0 ? 'a' : 'w', 0o644);
  let bytes = start;
  try {
    // Flowing: every chunk is taken as it arrives and written in order behind the ones before, so
    // the client never holds its parser paused for hoist (see get()).
    await new Promise<void>((resolve, reject) => {
      let writes = Promise.resolve();
      let failed = false;
      const fail = (e: unknown) => {
        if (failed) return;
        failed = true;
        res.body.destroy();
        // Whatever was already queued lands first: the partial file stays a clean prefix to resume.
        writes.then(
          () => reject(e),
          () => reject(e),
        );
      };
      res.body.on('data', (chunk: Buffer) => {
        if (failed) return;
        writes = writes.then(async () => {
          await fh.write(chunk);
          bytes += chunk.byteLength;
          progress(bytes, total);
        });
        writes.catch(fail);
      });
      res.body.on('error', fail);
      res.body.once('end', () => writes.then(resolve, fail));
    });
  } finally {
    await fh.close();
  }
  if (total !== undefined && bytes !== total) {
    // Counts as a network failure: the next attempt resumes from what arrived.
    throw new ControllerError(`connection closed after ${bytes} of ${total} bytes`);
  }
}
