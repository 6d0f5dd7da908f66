// One download in a process of its own, for tests where the HTTP client may crash the process.
// Usage: download-once.ts URL CACHE_DIR STALL_MS → prints the sha256 and exits 0, or the error and exits 3.
import { ensureArtifact } from '../../src/artifacts/download.js';

const [url, cacheDir, stall] = process.argv.slice(2);
let calls = 0;
try {
  const r = await ensureArtifact(
    { id: 'f', name: 'f.bin', version: '1', url, checksumUrl: `${url}.sha256`, checksumFormat: 'bare-hex' },
    {
      cacheDir,
      retries: 1,
      retryDelayMs: 10,
      // A consumer slower than the network (a busy event loop, a slow disk): the client holds back.
      onProgress: () => {
        if (calls++ < 3) {
          const until = Date.now() + Number(stall);
          while (Date.now() < until);
        }
      },
    },
  );
  process.stdout.write(`${r.sha256}\n`);
} catch (e) {
  process.stdout.write(`error: ${(e as Error).message}\n`);
  process.exitCode = 3;
}
