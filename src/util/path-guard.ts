import path from 'node:path';

/**
 * Directories no variable may point hoist at: hoist creates files in the directories its variables
 * name and a reset deletes some of them, so one mistyped value must never reach `/etc` or `/`.
 * A path is refused when it is one of these or a parent of one.
 */
export const SYSTEM_DIRS: readonly string[] = [
  '/',
  '/bin',
  '/boot',
  '/dev',
  '/etc',
  '/home',
  '/media',
  '/mnt',
  '/opt',
  '/proc',
  '/root',
  '/run',
  '/sbin',
  '/srv',
  '/sys',
  '/tmp',
  '/usr',
  '/usr/bin',
  '/usr/sbin',
  '/usr/include',
  '/usr/libexec',
  '/usr/share',
  '/usr/src',
  '/usr/local',
  '/usr/local/bin',
  '/usr/local/sbin',
  '/usr/local/lib',
  '/usr/local/share',
  '/usr/local/etc',
  '/var',
  '/var/lib',
  '/var/log',
  '/var/cache',
  '/var/tmp',
  '/var/run',
  '/var/spool',
  '/var/mail',
  '/var/opt',
  '/var/local',
  '/etc/systemd',
  '/etc/systemd/system',
  '/etc/default',
  '/etc/ssh',
  '/etc/sudoers.d',
  '/etc/cni',
  '/run/systemd',
  '/run/user',
  '/var/lib/systemd',
  '/var/lib/dpkg',
  '/var/lib/rpm',
  '/opt/cni',
];

/** /lib, /lib64, /libx32, /usr/lib32 …: every multilib spelling. */
const LIB_DIR = /^\/(?:usr\/)?lib[^/]*$/;

/**
 * Why `p` can't be a directory hoist writes into or deletes, or undefined when it can.
 * `p` must already be absolute and normalised (no "." or ".." segments, no doubled or trailing
 * slash): a path that only becomes `/etc` once normalised is refused as not normalised.
 * `alsoProtected` adds directories a module keeps for something else, which this one must not be
 * or contain.
 */
export function hostPathProblem(p: string, alsoProtected: readonly { dir: string; what: string }[] = []): string | undefined {
  if (!p.startsWith('/')) return `${JSON.stringify(p)} must be an absolute path`;
  if (path.posix.normalize(p) !== p || (p.length > 1 && p.endsWith('/'))) {
    return `${JSON.stringify(p)} is not a normalised path (write ${JSON.stringify(normaliseHostPath(p))})`;
  }
  const inside = (dir: string) => dir === p || p === '/' || dir.startsWith(`${p}/`);
  const system = SYSTEM_DIRS.find(inside) ?? (LIB_DIR.test(p) ? p : undefined);
  if (system !== undefined) {
    return system === p
      ? `${JSON.stringify(p)} is a system directory; hoist writes into this path and a reset deletes from it`
      : `${JSON.stringify(p)} contains the system directory ${system}; hoist writes into this path and a reset deletes from it`;
  }
  const own = alsoProtected.find((o) => inside(o.dir));
  if (own !== undefined) {
    return own.dir === p ? `${JSON.stringify(p)} is ${own.what}` : `${JSON.stringify(p)} contains ${own.dir}, ${own.what}`;
  }
  return undefined;
}

/** `p` with doubled and trailing slashes and "." / ".." segments resolved, for the hint in a refusal. */
export function normaliseHostPath(p: string): string {
  const n = path.posix.normalize(p);
  return n.length > 1 ? n.replace(/\/+$/, '') : n;
}

/** A path variable as the host resolved it, as far as the guard needs it. */
export interface HostResolution {
  path: string;
  resolved: string;
  symlinks: readonly { link: string; target: string }[];
}

/** Whether `p` is a spelling a distribution itself links (/var/run → /run, /bin → /usr/bin under merged /usr). */
const isSystemSpelling = (p: string) => SYSTEM_DIRS.includes(p) || LIB_DIR.test(p);

/**
 * Why a path hoist writes under or deletes can't be used as the host resolves it, or undefined.
 * The guard applies to the resolved path and to the target of every symlink on the way: a link of
 * someone's own (`/srv/x -> /etc`) that leads into a protected directory is refused even where the
 * final path is a new directory below it. A distribution's own links between system directories
 * (`/var/run -> /run`) are not someone's redirection and pass.
 */
export function resolvedPathProblem(r: HostResolution, alsoProtected: readonly { dir: string; what: string }[] = []): string | undefined {
  if (r.resolved !== r.path) {
    const problem = hostPathProblem(r.resolved, alsoProtected);
    if (problem) return `resolves to ${r.resolved}: ${problem}`;
  }
  for (const l of r.symlinks) {
    if (isSystemSpelling(l.link) && isSystemSpelling(l.target)) continue;
    const problem = hostPathProblem(l.target, alsoProtected);
    if (problem) return `resolves to ${r.resolved} through the symlink ${l.link} -> ${l.target}: ${problem}`;
  }
  return undefined;
}

/** Whether `a` is `b` or lies inside it. */
export const within = (a: string, b: string) => a === b || b === '/' || a.startsWith(`${b}/`);

/**
 * The home of a user that `resolved` is, lies in or contains (a reset of it would delete someone's
 * files, `.ssh` among them), or undefined. Homes are compared as spelled and as resolved on the host.
 */
export function homeConflict(
  resolved: string,
  homes: readonly { user: string; home: string; resolved: string }[],
): { user: string; home: string; how: 'is' | 'in' | 'contains' } | undefined {
  for (const h of homes) {
    for (const home of new Set([h.resolved, h.home])) {
      if (!home.startsWith('/') || home === '/') continue;
      if (resolved === home) return { user: h.user, home, how: 'is' };
      if (within(resolved, home)) return { user: h.user, home, how: 'in' };
      if (within(home, resolved)) return { user: h.user, home, how: 'contains' };
    }
  }
  return undefined;
}
