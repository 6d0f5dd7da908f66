import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { releaseCatalog } from '../../src/modules/containerd/catalog.js';
import type { Artifact } from '../../src/artifacts/artifact.js';
import { ChecksumError } from '../../src/artifacts/checksum-policy.js';
import {
  ChecksumMismatchError,
  DownloadError,
  OfflineMissError,
  CorruptCacheError,
  ensureArtifact,
  ensureArtifacts,
  type DownloadOptions,
} from '../../src/artifacts/download.js';
import { redact } from '../../src/util/redact.js';
import { loggingProxy } from '../support/logging-proxy.js';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

interface Route {
  body: Buffer;
  /** Answer this many requests with 500 first. */
  fail500?: number;
  /** Send half the body of the next response, then cut the connection. */
  dropOnce?: boolean;
  ignoreRange?: boolean;
  /** Send headers, then never any body. */
  stall?: boolean;
}

interface Hit {
  path: string;
  range?: string;
  status: number;
  bytes: number;
}

/** A real HTTP server on 127.0.0.1 serving release files the way a plain static server would. */
class ReleaseServer {
  readonly routes = new Map<string, Route>();
  readonly hits: Hit[] = [];
  private server = http.createServer((req, res) => this.handle(req, res));
  base = '';

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  set(url: string, body: Buffer | string, extra: Omit<Route, 'body'> = {}): void {
    this.routes.set(new URL(url).pathname, { body: Buffer.from(body), ...extra });
  }

  hitsFor(url: string): Hit[] {
    const p = new URL(url).pathname;
    return this.hits.filter((h) => h.path === p);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const p = new URL(req.url ?? '/', 'http://x').pathname;
    const hit: Hit = { path: p, range: req.headers.range, status: 0, bytes: 0 };
    this.hits.push(hit);
    const r = this.routes.get(p);
    const reply = (status: number) => {
      hit.status = status;
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(`${status}\n`);
    };
    if (!r) return reply(404);
    if (r.fail500 && r.fail500 > 0) {
      r.fail500--;
      return reply(500);
    }
    const len = r.body.length;
    let start = 0;
    const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/octet-stream', etag: `"${sha(r.body).slice(0, 16)}"` };
    let status = 200;
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (m && !r.ignoreRange) {
      start = Number(m[1]);
      if (start >= len) {
        hit.status = 416;
        res.writeHead(416, { 'content-range': `bytes */${len}` });
        return void res.end();
      }
      status = 206;
      headers['content-range'] = `bytes ${start}-${len - 1}/${len}`;
    }
    headers['content-length'] = len - start;
    hit.status = status;
    res.writeHead(status, headers);
    const slice = r.body.subarray(start);
    if (r.stall) return void res.flushHeaders();
    if (r.dropOnce) {
      r.dropOnce = false;
      const half = slice.subarray(0, Math.floor(slice.length / 2));
      hit.bytes = half.length;
      // Let the first half reach the client before the connection dies.
      res.write(half, () => setTimeout(() => res.socket?.destroy(), 50));
      return;
    }
    hit.bytes = slice.length;
    res.end(slice);
  }
}

interface Release {
  artifacts: Artifact[];
  content: Map<string, Buffer>;
}

/** Publishes a containerd 2.x release set on the server with each project's own checksum format. */
function publish(server: ReleaseServer, pinnedSha256?: Record<string, string>): Release {
  const artifacts = releaseCatalog({ containerdVersion: '2.1.4', releaseBaseUrl: server.base, pinnedSha256 });
  const content = new Map<string, Buffer>();
  for (const a of artifacts) {
    // Large enough to need many chunks, so a cut connection leaves a real partial file.
    const body = randomBytes(a.id === 'containerd' ? 1024 * 1024 : 64 * 1024 + 7);
    content.set(a.id, body);
    server.set(a.url, body);
    const hex = sha(body);
    switch (a.id) {
      case 'runc':
        server.set(
          a.checksumUrl,
          [
            '-----BEGIN PGP SIGNED MESSAGE-----',
            'Hash: SHA256',
            '',
            `${sha('arm64')}  runc.arm64`,
            `${hex}  runc.amd64`,
            `${sha('tarball')}  runc.tar.xz`,
            '-----BEGIN PGP SIGNATURE-----',
            '',
            'iQIzBAEBCAAdFiEEXYZ=',
            '-----END PGP SIGNATURE-----',
            '',
          ].join('\n'),
        );
        break;
      case 'crictl':
        server.set(a.checksumUrl, hex);
        break;
      default:
        server.set(a.checksumUrl, `${hex}  ${a.name}\n`);
    }
  }
  return { artifacts, content };
}

const byId = (rel: Release, id: string): Artifact => {
  const a = rel.artifacts.find((x) => x.id === id);
  assert.ok(a, `no artifact ${id}`);
  return a;
};

async function listDir(dir: string): Promise<string[]> {
  try {
    return await fs.readdir(dir);
  } catch {
    return [];
  }
}

let server: ReleaseServer;
let cacheDir: string;
let opts: DownloadOptions;

beforeEach(async () => {
  server = new ReleaseServer();
  await server.start();
  cacheDir = await fs.mkdtemp(path.join(os.tmpdir(), 'hoist-cache-'));
  opts = { cacheDir, retryDelayMs: 5, maxRetryDelayMs: 20, timeoutMs: 5000 };
});

afterEach(async () => {
  await server.close();
  await fs.rm(cacheDir, { recursive: true, force: true });
});

describe('ensureArtifacts', () => {
  it('downloads and verifies a whole 2.x release set in every checksum format', async () => {
    const rel = publish(server);
    const progress = new Map<string, [number, number | undefined]>();
    const results = await ensureArtifacts(rel.artifacts, {
      ...opts,
      onProgress: (bytes, total, a) => progress.set(a.id, [bytes, total]),
    });
    assert.equal(results.length, 4);
    for (const r of results) {
      const body = rel.content.get(r.artifact.id);
      assert.ok(body);
      assert.equal(r.fromCache, false);
      assert.equal(r.sha256, sha(body));
      assert.equal(r.size, body.length);
      assert.equal(r.path, path.join(cacheDir, 'sha256', sha(body)));
      assert.deepEqual(await fs.readFile(r.path), body);
      assert.deepEqual(r.verifiedBy, ['checksum-file']);
      assert.deepEqual(progress.get(r.artifact.id), [body.length, body.length]);
    }
    assert.deepEqual(await listDir(path.join(cacheDir, 'partial')), [], 'no partial files left behind');
  });

  it('serves a cached artifact with the server gone, online and offline', async () => {
    const rel = publish(server);
    const a = byId(rel, 'runc');
    const first = await ensureArtifact(a, opts);
    await server.close();
    const again = await ensureArtifact(a, opts);
    assert.equal(again.fromCache, true);
    assert.equal(again.path, first.path);
    assert.equal(again.sha256, first.sha256);
    const offline = await ensureArtifact(a, { ...opts, offline: true });
    assert.equal(offline.fromCache, true);
    assert.equal(offline.sha256, sha(rel.content.get('runc') ?? ''));
    // A fresh server object so afterEach has something to close.
    server = new ReleaseServer();
    await server.start();
  });

  it('re-downloads a cached blob whose content was corrupted on disk', async () => {
    const rel = publish(server);
    const a = byId(rel, 'cni');
    const first = await ensureArtifact(a, opts);
    await fs.writeFile(first.path, 'garbage');
    const again = await ensureArtifact(a, opts);
    assert.equal(again.fromCache, false);
    assert.deepEqual(await fs.readFile(again.path), rel.content.get('cni'));
    assert.equal(server.hitsFor(a.url).length, 2);
  });

  it('hashes a cached blob once per process, and again once it was rewritten in place with the same size', async () => {
    const rel = publish(server);
    const a = byId(rel, 'cni');
    const first = await ensureArtifact(a, opts);
    await ensureArtifact(a, { ...opts, offline: true });
    // Same inode, same size, different bytes: only its mtime and ctime say it changed.
    const content = rel.content.get('cni')!;
    const handle = await fs.open(first.path, 'r+');
    await handle.write(Buffer.from([content[0] ^ 0xff]), 0, 1, 0);
    await handle.close();
    await assert.rejects(ensureArtifact(a, { ...opts, offline: true }), (e: unknown) => e instanceof CorruptCacheError);
  });

  it('offline, a corrupted cached blob is named corrupt with both digests and the fix, never as missing', async () => {
    const rel = publish(server);
    const a = byId(rel, 'cni');
    const first = await ensureArtifact(a, opts);
    await fs.appendFile(first.path, 'x');
    const actual = sha(Buffer.concat([rel.content.get('cni') ?? Buffer.alloc(0), Buffer.from('x')]));
    await assert.rejects(ensureArtifacts([a, byId(rel, 'runc')], { ...opts, offline: true }), (e: unknown) => {
      assert.ok(e instanceof CorruptCacheError, String(e));
      assert.equal(
        e.message,
        `${a.name} in the cache ${cacheDir} is corrupt: expected sha256 ${first.sha256} (as verified when it was cached), got ${actual}; ` +
          'it was removed from the cache. Run `hoist fetch` on a machine with network access to the release URLs to fetch it again.',
      );
      return true;
    });
    await assert.rejects(fs.stat(first.path), /ENOENT/);
    // Online, the same damage is repaired by downloading again.
    assert.deepEqual(await fs.readFile((await ensureArtifact(a, opts)).path), rel.content.get('cni'));
  });

  it('resumes with a Range request after the connection drops mid-body', async () => {
    const rel = publish(server);
    const a = byId(rel, 'containerd');
    const body = rel.content.get('containerd');
    assert.ok(body);
    server.set(a.url, body, { dropOnce: true });
    const r = await ensureArtifact(a, opts);
    assert.equal(r.sha256, sha(body));
    const hits = server.hitsFor(a.url);
    assert.equal(hits.length, 2);
    assert.equal(hits[0].range, undefined);
    const m = /^bytes=(\d+)-$/.exec(hits[1].range ?? '');
    assert.ok(m, `second request should be a Range request, got ${hits[1].range}`);
    assert.ok(Number(m[1]) > 0 && Number(m[1]) <= body.length / 2);
    assert.equal(hits[1].status, 206);
    assert.equal(hits[1].bytes, body.length - Number(m[1]), 'only the missing tail was sent again');
  });

  it('starts over when the server ignores Range and answers 200', async () => {
    const rel = publish(server);
    const a = byId(rel, 'containerd');
    const body = rel.content.get('containerd');
    assert.ok(body);
    server.set(a.url, body, { dropOnce: true, ignoreRange: true });
    const r = await ensureArtifact(a, opts);
    assert.equal(r.sha256, sha(body));
    assert.deepEqual(await fs.readFile(r.path), body);
    const hits = server.hitsFor(a.url);
    assert.equal(hits.length, 2);
    assert.match(hits[1].range ?? '', /^bytes=\d+-$/);
    assert.equal(hits[1].status, 200);
  });

  it('retries 500 responses with backoff, then succeeds', async () => {
    const rel = publish(server);
    const a = byId(rel, 'crictl');
    server.set(a.url, rel.content.get('crictl') ?? '', { fail500: 2 });
    const r = await ensureArtifact(a, opts);
    assert.equal(r.sha256, sha(rel.content.get('crictl') ?? ''));
    assert.deepEqual(
      server.hitsFor(a.url).map((h) => h.status),
      [500, 500, 200],
    );
  });

  it('gives up on persistent 500s after the configured retries', async () => {
    const rel = publish(server);
    const a = byId(rel, 'crictl');
    server.set(a.url, 'x', { fail500: 100 });
    await assert.rejects(ensureArtifact(a, { ...opts, retries: 2 }), (e: unknown) => {
      assert.ok(e instanceof DownloadError);
      assert.equal(e.status, 500);
      assert.equal(e.attempts, 3);
      return true;
    });
    assert.equal(server.hitsFor(a.url).length, 3);
  });

  it('does not retry a 404', async () => {
    const rel = publish(server);
    const a = byId(rel, 'cni');
    server.routes.delete(new URL(a.url).pathname);
    await assert.rejects(ensureArtifact(a, opts), (e: unknown) => {
      assert.ok(e instanceof DownloadError);
      assert.equal(e.status, 404);
      assert.match(e.message, /HTTP 404/);
      assert.ok(e.message.includes(a.url));
      return true;
    });
    assert.equal(server.hitsFor(a.url).length, 1);
  });

  it('times out a server that stops sending, and retries', async () => {
    const rel = publish(server);
    const a = byId(rel, 'cni');
    server.set(a.url, rel.content.get('cni') ?? '', { stall: true });
    await assert.rejects(ensureArtifact(a, { ...opts, timeoutMs: 300, retries: 1 }), DownloadError);
    assert.equal(server.hitsFor(a.url).length, 2);
  });

  it('refuses a file whose hash differs from the checksum file and keeps it out of the cache', async () => {
    const rel = publish(server);
    const a = byId(rel, 'containerd');
    const wrong = sha('something else');
    server.set(a.checksumUrl, `${wrong}  ${a.name}\n`);
    const actual = sha(rel.content.get('containerd') ?? '');
    await assert.rejects(ensureArtifact(a, opts), (e: unknown) => {
      assert.ok(e instanceof ChecksumMismatchError);
      assert.equal(e.file, a.name);
      assert.equal(e.expected, wrong);
      assert.equal(e.actual, actual);
      assert.equal(e.source, 'checksum-file');
      assert.ok(e.message.includes(a.name) && e.message.includes(wrong) && e.message.includes(actual));
      return true;
    });
    assert.ok(!(await listDir(path.join(cacheDir, 'sha256'))).includes(actual), 'bad file must not be in the store');
    assert.deepEqual(await listDir(path.join(cacheDir, 'partial')), []);
    await assert.rejects(ensureArtifact(a, { ...opts, offline: true }), OfflineMissError);

    // Once upstream fixes its checksum file the next run fetches it again and succeeds.
    server.set(a.checksumUrl, `${actual}  ${a.name}\n`);
    const ok = await ensureArtifact(a, opts);
    assert.equal(ok.sha256, actual);
    assert.equal(server.hitsFor(a.checksumUrl).length, 2);
  });

  it('refuses a file that matches the checksum file but not the pinned digest', async () => {
    const pinned = sha('pinned build');
    const rel = publish(server, { 'runc.amd64': pinned });
    const a = byId(rel, 'runc');
    const actual = sha(rel.content.get('runc') ?? '');
    await assert.rejects(ensureArtifact(a, opts), (e: unknown) => {
      assert.ok(e instanceof ChecksumMismatchError);
      assert.equal(e.source, 'pinned');
      assert.equal(e.expected, pinned);
      assert.equal(e.actual, actual);
      assert.match(e.message, /pinned_sha256/);
      return true;
    });
    assert.ok(!(await listDir(path.join(cacheDir, 'sha256'))).includes(actual));
  });

  it('uses the pinned digest when the checksum file cannot be fetched, and requires one otherwise', async () => {
    const rel = publish(server);
    const a = byId(rel, 'runc');
    server.routes.delete(new URL(a.checksumUrl).pathname);
    await assert.rejects(ensureArtifact(a, opts), (e: unknown) => e instanceof DownloadError && e.url === a.checksumUrl);
    assert.equal(server.hitsFor(a.url).length, 0, 'nothing downloaded without a digest to check');

    const pinned = sha(rel.content.get('runc') ?? '');
    const r = await ensureArtifact({ ...a, pinnedSha256: pinned }, opts);
    assert.equal(r.sha256, pinned);
    assert.deepEqual(r.verifiedBy, ['pinned']);
  });

  it('refuses an unparsable checksum file without downloading or caching it', async () => {
    const rel = publish(server);
    const a = byId(rel, 'cni');
    server.set(a.checksumUrl, '<html>\n<body>rate limited</body>\n</html>\n');
    for (let i = 0; i < 2; i++) {
      await assert.rejects(
        ensureArtifact(a, opts),
        (e: unknown) => e instanceof ChecksumError && e.message.includes(a.checksumUrl) && e.message.includes('no checksum lines'),
      );
    }
    assert.equal(server.hitsFor(a.checksumUrl).length, 2, 'a bad checksum file is fetched again, never cached');
    assert.equal(server.hitsFor(a.url).length, 0);
  });

  it('in offline mode names every missing artifact and its URL, and never connects', async () => {
    const rel = publish(server);
    await ensureArtifact(byId(rel, 'containerd'), opts);
    const hitsBefore = server.hits.length;
    await assert.rejects(ensureArtifacts(rel.artifacts, { ...opts, offline: true }), (e: unknown) => {
      assert.ok(e instanceof OfflineMissError);
      assert.deepEqual(
        e.missing.map((m) => m.id),
        ['runc', 'cni', 'crictl'],
      );
      for (const id of ['runc', 'cni', 'crictl']) assert.ok(e.message.includes(byId(rel, id).url), `message names ${id} URL`);
      assert.ok(!e.message.includes(byId(rel, 'containerd').url), 'cached artifact is not reported');
      assert.match(e.message, /hoist fetch/);
      return true;
    });
    assert.equal(server.hits.length, hitsBefore);
  });

  it('shares one transfer between concurrent calls for the same URL', async () => {
    const rel = publish(server);
    const a = byId(rel, 'containerd');
    const seen: number[] = [];
    const [r1, r2] = await Promise.all([ensureArtifact(a, opts), ensureArtifact(a, { ...opts, onProgress: (b) => seen.push(b) })]);
    assert.equal(server.hitsFor(a.url).length, 1);
    assert.equal(server.hitsFor(a.checksumUrl).length, 1);
    assert.equal(r1.sha256, r2.sha256);
    assert.equal(r1.path, r2.path);
    assert.ok(seen.length > 0, 'the joining caller also gets progress');
  });
});

describe('downloads through a proxy (HTTP_PROXY / HTTPS_PROXY / NO_PROXY)', () => {
  const saved = { ...process.env };
  afterEach(() => {
    for (const k of ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'NO_PROXY', 'no_proxy']) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  });

  it('every file and checksum goes through the proxy the environment names, with its credentials, which stay secret', async () => {
    const rel = publish(server);
    const proxy = await loggingProxy();
    try {
      const withCreds = proxy.url.replace('http://', 'http://ops:pr0xy-S3cret@');
      process.env.HTTP_PROXY = withCreds;
      const results = await ensureArtifacts(rel.artifacts, opts);
      assert.equal(results.length, 4);
      for (const a of rel.artifacts) {
        assert.ok(proxy.log.includes(`GET ${a.url}`), `${a.url} did not pass the proxy: ${proxy.log.join(', ')}`);
        assert.ok(proxy.log.includes(`GET ${a.checksumUrl}`), `${a.checksumUrl} did not pass the proxy`);
      }
      assert.ok(proxy.auth.every((h) => h === `Basic ${Buffer.from('ops:pr0xy-S3cret').toString('base64')}`));
      assert.equal(redact(`via ${withCreds}`).includes('pr0xy-S3cret'), false);
    } finally {
      await proxy.close();
    }
  });

  it('NO_PROXY sends a matching host around the proxy', async () => {
    const rel = publish(server);
    const proxy = await loggingProxy();
    try {
      process.env.http_proxy = proxy.url;
      process.env.no_proxy = 'localhost,127.0.0.1';
      await ensureArtifacts(rel.artifacts, opts);
      assert.deepEqual(proxy.log, []);
      assert.ok(server.hits.length >= 8);
    } finally {
      await proxy.close();
    }
  });
});
