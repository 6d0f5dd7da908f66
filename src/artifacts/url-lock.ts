import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ArtifactCache } from './cache.js';
import { DownloadError, displayUrl } from './http.js';

/**
 * Two hoist processes sharing a cache must not write one partial file together: the first takes
 * a lock file (its pid inside) and downloads; the other waits, then finds the artifact cached.
 * A lock whose process is gone is taken over.
 */
export async function withUrlLock<T>(cache: ArtifactCache, url: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
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
