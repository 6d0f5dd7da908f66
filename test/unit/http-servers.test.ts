// Downloads from every well-behaved HTTP/1.x server: Python's http.server (HTTP/1.0, closes after
// each response), and Node servers with keep-alive or not, chunked or with a length, or neither
// (the end of the body is the end of the connection). Each download runs in a process of its own
// (test/support/download-once.ts) with a consumer slower than the network: a crash of the HTTP
// client would end that process, not the test.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseRetryAfter } from '../../src/artifacts/http.js';

const CHILD = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../support/download-once.ts');
const SIZE = 6 * 1024 * 1024;
let dir: string;
let sha: string;
let python: ChildProcess | undefined;
let pythonUrl: string | undefined;
const servers: http.Server[] = [];

async function once(url: string, stallMs: number): Promise<{ code: number | null; out: string; cache: string }> {
  const cache = await mkdtemp(path.join(dir, 'cache-'));
  return new Promise((resolve) => {
    const c = spawn(process.execPath, ['--import', 'tsx', CHILD, url, cache, String(stallMs)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d));
    c.stderr.on('data', (d: Buffer) => (out += d));
    c.on('close', (code) => resolve({ code, out, cache }));
  });
}

/** A Node server framing the body as asked. */
async function nodeServer(mode: 'keep-alive-length' | 'keep-alive-chunked' | 'close-length' | 'close-no-length'): Promise<string> {
  const file = path.join(dir, 'www', 'f.bin');
  const srv = http.createServer((req, res) => {
    if (req.url!.endsWith('.sha256')) return res.end(`${sha}\n`);
    const headers: Record<string, string | number> = { 'content-type': 'application/octet-stream' };
    if (mode.endsWith('-length')) headers['content-length'] = SIZE;
    if (mode.startsWith('close')) headers.connection = 'close';
    res.writeHead(200, headers);
    if (mode === 'close-no-length') res.socket!.setNoDelay(true);
    createReadStream(file).pipe(res);
  });
  if (mode === 'close-no-length') {
    // No length and no chunking: HTTP/1.0-style, the body ends with the connection.
    srv.on('request', (_req, res) => (res.useChunkedEncodingByDefault = false));
  }
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(srv.address() as AddressInfo).port}/f.bin`;
}

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'hoist-http-'));
  const www = path.join(dir, 'www');
  await import('node:fs/promises').then((fs) => fs.mkdir(www));
  const body = randomBytes(SIZE);
  sha = createHash('sha256').update(body).digest('hex');
  await writeFile(path.join(www, 'f.bin'), body);
  await writeFile(path.join(www, 'f.bin.sha256'), `${sha}\n`);
  if (spawnSync('python3', ['--version']).status === 0) {
    python = spawn('python3', ['-m', 'http.server', '0', '--bind', '127.0.0.1', '--directory', www], { stdio: ['ignore', 'pipe', 'pipe'] });
    pythonUrl = await new Promise<string>((resolve, reject) => {
      let seen = '';
      const on = (d: Buffer) => {
        seen += d.toString();
        const m = /port (\d+)/.exec(seen);
        if (m) resolve(`http://127.0.0.1:${m[1]}/f.bin`);
      };
      python!.stdout!.on('data', on);
      python!.stderr!.on('data', on);
      python!.once('exit', () => reject(new Error(`python3 -m http.server exited: ${seen}`)));
    });
  }
});

after(async () => {
  python?.kill();
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  for (const s of servers) s.closeAllConnections();
});

describe('downloads survive every well-behaved server', () => {
  test("Python's http.server, with a consumer slower than the network", async (t) => {
    if (!pythonUrl) return t.skip('no python3');
    // The crash was a race (about half the downloads from such a mirror): several tries.
    for (let i = 0; i < 4; i++) {
      const r = await once(pythonUrl, 150);
      assert.equal(r.code, 0, `try ${i + 1}: ${r.out}`);
      assert.equal(r.out.trim(), sha);
      assert.doesNotMatch(r.out, /AssertionError|assert\(/);
    }
  });

  for (const mode of ['keep-alive-length', 'keep-alive-chunked', 'close-length', 'close-no-length'] as const) {
    test(`node http server, ${mode}`, async () => {
      const url = await nodeServer(mode);
      const r = await once(url, 150);
      assert.equal(r.code, 0, r.out);
      assert.equal(r.out.trim(), sha);
    });
  }
});

test('a crash inside the HTTP client fails the download (exit 3, the cause named) and leaves no partial file', async () => {
  // The server sends part of the body and then nothing: the download is in flight when the client
  // "crashes" (an exception thrown out of undici's code, from an event, as its assertion was).
  const srv = http.createServer((req, res) => {
    if (req.url!.endsWith('.sha256')) return res.end(`${'0'.repeat(64)}\n`);
    res.writeHead(200, { 'content-length': SIZE });
    res.write(Buffer.alloc(64 * 1024));
  });
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/f.bin`;
  const cache = await mkdtemp(path.join(dir, 'crash-'));
  const download = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/artifacts/download.ts');
  const script = `
    const { ensureArtifact } = await import(${JSON.stringify(download)});
    let thrown = false;
    const crash = () => {
      if (thrown) return;
      thrown = true;
      setImmediate(() => {
        const e = new Error('The expression evaluated to a falsy value: assert(!this.paused)');
        e.stack = e.message + '\\n    at Parser.finish (/app/node_modules/undici/lib/dispatcher/client-h1.js:375:5)';
        throw e;
      });
    };
    try {
      await ensureArtifact({ id: 'f', name: 'f.bin', version: '1', url: ${JSON.stringify(url)}, checksumUrl: ${JSON.stringify(`${url}.sha256`)}, checksumFormat: 'bare-hex' },
        { cacheDir: ${JSON.stringify(cache)}, retries: 2, retryDelayMs: 10, onProgress: crash });
      console.log('no error');
    } catch (e) { console.log('error: ' + e.message); process.exitCode = 3; }
  `;
  // Not spawnSync: the server answers from this process's event loop.
  const r = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    const c = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d));
    c.stderr.on('data', (d: Buffer) => (stderr += d));
    c.on('close', (status) => resolve({ status, stdout, stderr }));
  });
  assert.equal(r.status, 3, r.stdout + r.stderr);
  assert.match(r.stdout, /error: GET .*f\.bin failed: the HTTP client failed internally: The expression evaluated to a falsy value: assert\(!this\.paused\)/);
  assert.doesNotMatch(r.stderr, /at Parser\.finish/, 'a stack trace reached the terminal');
  const partials = await readdir(path.join(cache, 'partial')).catch(() => []);
  assert.deepEqual(
    partials.filter((f) => !f.endsWith('.json')),
    [],
    'a partial file was left in the cache',
  );
});

test('Retry-After: seconds or a date', () => {
  assert.equal(parseRetryAfter('3'), 3000);
  assert.equal(parseRetryAfter(['2']), 2000);
  assert.equal(parseRetryAfter(new Date(10_000).toUTCString(), 4_000), 6000);
  assert.equal(parseRetryAfter('soon'), undefined);
  assert.equal(parseRetryAfter(undefined), undefined);
});
