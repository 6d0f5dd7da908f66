import { randomBytes } from 'node:crypto';
import type { Stats } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileDigest, sha256 } from '../util/hash.js';
import { cacheHome } from '../util/cache-home.js';

/**
 * On-disk layout of the artifact cache:
 *   sha256/<hex>              verified file contents, named by their digest
 *   index/<sha256(url)>.json  url → digest, so a cached artifact is found without any network
 *   partial/<sha256(url)>     an unfinished download, resumed with a Range request
 *   partial/<sha256(url)>.json validators (ETag/Last-Modified) of the response the partial came from
 * One index file per URL (instead of one shared index) keeps every update a single atomic rename,
 * so parallel downloads, even from two hoist processes, never lose each other's entries.
 */

export type VerifiedBy = 'checksum-file' | 'pinned';

export interface IndexEntry {
  url: string;
  sha256: string;
  size: number;
  /** How the content was verified when it entered the cache. */
  verifiedBy: VerifiedBy[];
  storedAt: string;
}

export interface PartialMeta {
  url: string;
  etag?: string;
  lastModified?: string;
}

export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(cacheHome(env), 'hoist');
}

async function writeAtomic(file: string, data: string | Buffer): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await fs.writeFile(tmp, data, { mode: 0o644 });
  await fs.rename(tmp, file);
}

async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as T;
  } catch {
    // Missing or torn (crash mid-write before the rename existed) both mean "not cached".
    return undefined;
  }
}

/** A blob found corrupt: the digest it is stored under and the one its bytes have. */
export interface CorruptBlob {
  expected?: string;
  actual?: string;
}

export class ArtifactCache {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = path.resolve(dir);
  }

  blobPath(hex: string): string {
    return path.join(this.dir, 'sha256', hex);
  }

  partialPath(url: string): string {
    return path.join(this.dir, 'partial', sha256(url));
  }

  private indexPath(url: string): string {
    return path.join(this.dir, 'index', `${sha256(url)}.json`);
  }

  async lookup(url: string): Promise<IndexEntry | undefined> {
    const e = await readJson<IndexEntry>(this.indexPath(url));
    if (!e || e.url !== url || typeof e.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(e.sha256)) return undefined;
    return e;
  }

  async record(entry: Omit<IndexEntry, 'storedAt'>): Promise<void> {
    const full: IndexEntry = { ...entry, storedAt: new Date().toISOString() };
    await writeAtomic(this.indexPath(entry.url), `${JSON.stringify(full, null, 2)}\n`);
  }

  async forget(url: string): Promise<void> {
    await fs.rm(this.indexPath(url), { force: true });
  }

  /**
   * Path of the blob for `hex` if it exists and its content still hashes to `hex`. A corrupted
   * blob (disk error, someone editing the cache) is deleted so it can't be installed; its digests
   * go to `seen`, for a caller that can't fetch it again to say so.
   */
  async verifiedBlob(hex: string, seen?: CorruptBlob): Promise<{ path: string; size: number } | undefined> {
    const p = this.blobPath(hex);
    let actual: { sha256: string; size: number };
    let st: Stats;
    try {
      st = await fs.stat(p);
      const known = verifiedStats.get(p);
      if (known && sameFile(known, st)) return { path: p, size: st.size };
      actual = await fileDigest(p);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    if (actual.sha256 !== hex) {
      verifiedStats.delete(p);
      await fs.rm(p, { force: true });
      if (seen) Object.assign(seen, { expected: hex, actual: actual.sha256 });
      return undefined;
    }
    verifiedStats.set(p, st);
    return { path: p, size: actual.size };
  }

  async removeBlob(hex: string): Promise<void> {
    await fs.rm(this.blobPath(hex), { force: true });
  }

  /** Moves a fully downloaded, verified file into the content-addressed store. */
  async storeBlob(file: string, hex: string): Promise<string> {
    const dest = this.blobPath(hex);
    await fs.mkdir(path.dirname(dest), { recursive: true });
    await fs.chmod(file, 0o644);
    await fs.rename(file, dest);
    return dest;
  }

  async storeBytes(data: Buffer): Promise<{ path: string; sha256: string }> {
    const hex = sha256(data);
    const dest = this.blobPath(hex);
    await writeAtomic(dest, data);
    return { path: dest, sha256: hex };
  }

  async readPartialMeta(url: string): Promise<PartialMeta | undefined> {
    const m = await readJson<PartialMeta>(`${this.partialPath(url)}.json`);
    return m && m.url === url ? m : undefined;
  }

  async writePartialMeta(meta: PartialMeta): Promise<void> {
    await writeAtomic(`${this.partialPath(meta.url)}.json`, JSON.stringify(meta));
  }

  async removePartial(url: string): Promise<void> {
    const p = this.partialPath(url);
    await fs.rm(p, { force: true });
    await fs.rm(`${p}.json`, { force: true });
  }
}

/**
 * Blobs this process has hashed, with what stat said then. A run pushes the same archive to many
 * hosts and checks it before each push; hashing 70 MB again each time costs the controller a third
 * of a second per host. A file rewritten since (a new inode, size, mtime or ctime) is hashed again.
 */
const verifiedStats = new Map<string, Stats>();

function sameFile(a: Stats, b: Stats): boolean {
  return a.ino === b.ino && a.dev === b.dev && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;
}
