import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';

const ROOT = path.resolve(import.meta.dirname, '../..');

test('two hoist processes downloading the same artifact into one cache both get the verified file', async () => {
  const body = randomBytes(3 * 1024 * 1024);
  const hex = createHash('sha256').update(body).digest('hex');
  let transfers = 0;
  // Slow enough that the two processes overlap.
  const server = http.createServer((req, res) => {
    if (req.url!.endsWith('.sha256sum')) return res.end(`${hex}  art.tar.gz\n`);
    transfers++;
    res.writeHead(200, { 'content-length': body.length });
    let off = 0;
    const tick = setInterval(() => {
      res.write(body.subarray(off, off + 256 * 1024));
      off += 256 * 1024;
      if (off >= body.length) {
        clearInterval(tick);
        res.end();
      }
    }, 40);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/art.tar.gz`;
  const cacheDir = await mkdtemp(path.join(os.tmpdir(), 'hoist-dl-'));
  const script = `
    const { ensureArtifact } = await import(${JSON.stringify(path.join(ROOT, 'src/artifacts/download.ts'))});
    const r = await ensureArtifact({ id: 'bundle', name: 'art.tar.gz', version: '1.0.0', url: ${JSON.stringify(url)}, checksumUrl: ${JSON.stringify(url + '.sha256sum')}, checksumFormat: 'sha256sum' }, { cacheDir: ${JSON.stringify(cacheDir)}, retries: 0 });
    console.log(r.sha256);`;
  const runOne = () =>
    new Promise<{ code: number; out: string }>((resolve) => {
      const c = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT });
      let out = '';
      c.stdout.on('data', (d: Buffer) => (out += d.toString()));
      c.stderr.on('data', (d: Buffer) => (out += d.toString()));
      c.on('close', (code) => resolve({ code: code ?? -1, out }));
    });
  try {
    const [a, b] = await Promise.all([runOne(), runOne()]);
    assert.equal(a.code, 0, a.out);
    assert.equal(b.code, 0, b.out);
    assert.equal(a.out.trim(), hex);
    assert.equal(b.out.trim(), hex);
    assert.equal(transfers, 1, 'the second process waited and used the cached file');
  } finally {
    server.close();
  }
});
