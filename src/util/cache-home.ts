import os from 'node:os';
import path from 'node:path';

/**
 * The user's cache directory: $XDG_CACHE_HOME when it is an absolute path, else ~/.cache. The XDG
 * spec says a relative value is invalid and must be ignored; followed, it would make hoist's caches
 * (compiled code among them) whatever the current directory holds under that name.
 */
export function cacheHome(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CACHE_HOME;
  return xdg && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), '.cache');
}
