import { existsSync, lstatSync, statSync } from 'node:fs';
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
