import { closeSync, constants, existsSync, fsyncSync, lstatSync, mkdirSync, openSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';

/** notPrivate's answer for a path that isn't there (callers may then create it). */
export const MISSING = 'does not exist';

/**
 * Why `p` is not a directory of this user's that no one else can write (not a symlink), or null when
 * it is. hoist loads code from such directories (the single executable's unpacked files, the
 * compiled-code cache), so a copy someone else made in a shared cache, or a symlink to one, is refused.
 */
export function notPrivate(p: string): string | null {
  let st;
  try {
    st = lstatSync(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return MISSING;
    throw e;
  }
  if (st.isSymbolicLink()) return 'is a symbolic link; hoist keeps its files only in a directory of your own';
  if (!st.isDirectory()) return 'is not a directory';
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) return `belongs to uid ${st.uid}, not to you (uid ${uid}); hoist loads code from it, so it must be yours`;
  if (st.mode & 0o022) return `is writable by others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}); chmod go-w it or remove it`;
  return null;
}

/** Whether process `pid` exists (one of another user's counts): a temporary file named for a live writer is left alone. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Why hoist must not create `dir` (and what is missing above it), or null. The nearest directory that
 * exists must be this user's or root's: `sudo -E hoist` keeps the invoking user's HOME, and root's
 * directories in that user's ~/.cache would lock the user out of their own cache.
 */
export function foreignTree(dir: string): string | null {
  let existing = dir;
  while (!existsSync(existing)) existing = path.dirname(existing);
  const uid = process.getuid?.();
  const owner = statSync(existing).uid;
  if (uid === undefined || owner === uid || owner === 0) return null;
  return `${existing} belongs to uid ${owner}, not to you (uid ${uid}): hoist creates no directories in another user's files (sudo -E keeps the invoking user's HOME)`;
}

/** Why `dir` or the directory above it isn't private (notPrivate), or null; a missing one is fine (it can be made). */
export function privateTreeProblem(dir: string): string | null {
  for (const d of [path.dirname(dir), dir]) {
    const p = notPrivate(d);
    if (p === MISSING) return null;
    if (p !== null) return `${d} ${p}`;
  }
  return null;
}

/**
 * Makes `dir` (0700, with what is missing above it) unless that would create directories in another
 * user's files (foreignTree), then checks it and the directory above are private. Why not, or null.
 */
export function makePrivateDir(dir: string): string | null {
  const foreign = foreignTree(dir);
  if (foreign) return foreign;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return privateTreeProblem(dir);
}

/**
 * Writes `file` (0600) atomically and synchronously: the parts go to a temporary file beside it,
 * created exclusively and never through a symlink (a name someone guessed makes the write fail), are
 * synced and renamed into place. A killed process or a lost machine leaves the old file or the new
 * one, never half of one; two writers each write a whole one. Synchronous, so a signal handler that
 * exits the process can't run between the write and the rename.
 */
export function writePrivateFile(file: string, parts: Uint8Array[]): void {
  const tmp = `${file}.tmp-${process.pid}-${Math.floor(Math.random() * 0xffffffff).toString(16)}`;
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    try {
      // writeSync may write less than it was given: each part is written to its end.
      for (const part of parts) for (let at = 0; at < part.length;) at += writeSync(fd, part, at, part.length - at);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
