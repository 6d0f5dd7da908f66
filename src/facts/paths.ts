import { quote } from '../ssh/quote.js';
import { DATA_DIR_RECORD } from '../host-paths.js';
import { HostError } from '../util/errors.js';

/*
 * Paths as the host has them. A path variable is a spelling on the controller; on the host each of
 * its components may be a symlink, so what hoist writes under or deletes is decided by what the path
 * resolves to there. The gathering round trip resolves every path variable, the symlinks on the way,
 * and the home of every user in one snippet (one realpath, one getent), so a run costs no extra trip.
 */

/** A path variable as the host resolves it. */
export interface ResolvedPath {
  /** As spelled in the variable. */
  path: string;
  /** `realpath -m`: every symlink followed, missing components kept. */
  resolved: string;
  exists: boolean;
  dir: boolean;
  /** Existing components on the way (the path itself included) that are symlinks, and what each resolves to. */
  symlinks: { link: string; target: string }[];
  /** For a listed directory: how many entries it holds, how many are neither the caller's own nor lost+found, and up to LISTED of those. */
  entryCount?: number;
  foreignCount?: number;
  foreign?: string[];
}

export interface UserHome {
  user: string;
  home: string;
  resolved: string;
}

/** hoist's record that it made (or took over) a data directory. */
export interface DataDirRecord {
  how: 'created' | 'adopted';
  /** When, as the host's clock said (ISO 8601). */
  time: string;
  /** The directory as resolved on the host. */
  path: string;
}

export interface HostPaths {
  paths: Map<string, ResolvedPath>;
  homes: UserHome[];
  records: DataDirRecord[];
}

/** How many entries of a directory the probe names: enough to show what is there, not a listing. */
export const LISTED = 8;

/**
 * The snippet: bash builtins find the symlinks and list the directories, one realpath resolves every
 * path at once, one getent reads the users (NSS included; /etc/passwd without getent). Output is
 * NUL-separated tokens, sections led by "@name" (see parseHostPaths).
 */
export function hostPathsScript(paths: readonly string[], listed: readonly string[], ownEntries: readonly string[] = []): string {
  const uniq = [...new Set(paths)];
  const list = new Set(listed);
  // A filesystem's own lost+found (a disk mounted at the data dir) is nobody's files.
  const own = ['lost+found', ...ownEntries].map(globWord).join('|');
  return [
    `paths=(${uniq.map(quote).join(' ')}); list=(${uniq.map((p) => (list.has(p) ? 1 : 0)).join(' ')})`,
    `links=(); users=(); homes=()`,
    `for p in "\${paths[@]}"; do q=; IFS=/ read -ra segs <<< "\${p#/}"; for s in "\${segs[@]}"; do q="$q/$s"; [ -L "$q" ] && links+=("$q"); done; done`,
    // A home of "/" (systemd's service users) would put every path in someone's home.
    `while IFS=: read -r u _ _ _ _ h _; do case "$h" in /?*) users+=("$u"); homes+=("$h");; esac; done < <(getent passwd 2>/dev/null || cat /etc/passwd)`,
    `mapfile -d '' real < <(realpath -m -z -- "\${paths[@]}" "\${links[@]}" "\${homes[@]}")`,
    `if [ \${#real[@]} -ne $(( \${#paths[@]} + \${#links[@]} + \${#homes[@]} )) ]; then echo "realpath could not resolve the paths (is coreutils' realpath installed?)"; exit 3; fi`,
    `printf '@links\\0'; [ \${#links[@]} -gt 0 ] && printf '%s\\0' "\${links[@]}"`,
    `printf '@users\\0'; [ \${#users[@]} -gt 0 ] && printf '%s\\0' "\${users[@]}"`,
    `printf '@homes\\0'; [ \${#homes[@]} -gt 0 ] && printf '%s\\0' "\${homes[@]}"`,
    `printf '@real\\0'; printf '%s\\0' "\${real[@]}"`,
    `shopt -s nullglob dotglob`,
    `for i in "\${!paths[@]}"; do r=\${real[i]}; if [ -d "$r" ]; then printf '@dir %d\\0' $i; if [ "\${list[i]}" = 1 ]; then e=("$r"/*); f=(); for x in "\${e[@]}"; do case "\${x##*/}" in ${own}) ;; *) f+=("\${x##*/}");; esac; done; printf '@entries %d %d %d\\0' $i \${#e[@]} \${#f[@]}; for x in "\${f[@]:0:${LISTED}}"; do printf '=%s\\0' "$x"; done; fi; elif [ -e "$r" ]; then printf '@file %d\\0' $i; fi; done`,
    `if [ -f ${DATA_DIR_RECORD} ]; then printf '@records\\0'; while IFS= read -r l; do printf '%s\\0' "$l"; done < ${DATA_DIR_RECORD}; fi`,
    // The section's end marker must start a line of its own.
    `printf '@end\\0\\n'`,
  ].join('\n');
}

/** A glob as a bash case-pattern word: its * and ? stay patterns, everything else is literal. */
function globWord(g: string): string {
  return g
    .split(/([*?])/)
    .map((part) => (part === '*' || part === '?' ? part : part ? quote(part) : ''))
    .join('');
}

/** What hostPathsScript printed, for the paths it was given. */
export function parseHostPaths(out: string, paths: readonly string[]): HostPaths {
  const uniq = [...new Set(paths)];
  const tokens = out.split('\0');
  const sections = new Map<string, string[]>();
  const dirs = new Set<number>();
  const files = new Set<number>();
  const entries = new Map<number, { count: number; foreign: number; names: string[] }>();
  let current: string[] | undefined;
  // Entry names are printed behind "=", so a file called "@end" stays a name.
  let entryNames: string[] | undefined;
  for (const t of tokens) {
    const m = /^@(links|users|homes|real|records|end|dir|file|entries)(?: (\d+))?(?: (\d+))?(?: (\d+))?$/.exec(t);
    if (!m) {
      current?.push(current === entryNames ? t.slice(1) : t);
      continue;
    }
    const [, name, a, b, c] = m;
    current = undefined;
    if (name === 'dir') dirs.add(Number(a));
    else if (name === 'file') files.add(Number(a));
    else if (name === 'entries') {
      const e = { count: Number(b), foreign: Number(c), names: [] as string[] };
      entries.set(Number(a), e);
      current = entryNames = e.names;
    } else if (name !== 'end') sections.set(name, (current = []));
  }
  if (!sections.has('real') || !tokens.includes('@end'))
    throw new HostError(`the host's paths could not be read: ${out.replace(/\0/g, ' ').trim().slice(0, 300)}`);
  const links = sections.get('links') ?? [];
  const users = sections.get('users') ?? [];
  const real = sections.get('real')!;
  if (real.length !== uniq.length + links.length + users.length)
    throw new HostError(`the host's paths could not be read: realpath gave ${real.length} answers for ${uniq.length + links.length + users.length} paths`);
  const linkTargets = links.map((link, i) => ({ link, target: real[uniq.length + i] }));
  const result = new Map<string, ResolvedPath>();
  uniq.forEach((p, i) => {
    const e = entries.get(i);
    result.set(p, {
      path: p,
      resolved: real[i],
      exists: dirs.has(i) || files.has(i),
      dir: dirs.has(i),
      symlinks: linkTargets.filter((l) => p === l.link || p.startsWith(`${l.link}/`)),
      ...(e ? { entryCount: e.count, foreign: e.names, foreignCount: e.foreign } : {}),
    });
  });
  const spelled = sections.get('homes') ?? [];
  const homes = users.map((user, i) => ({ user, home: spelled[i] ?? '', resolved: real[uniq.length + links.length + i] }));
  return { paths: result, homes, records: parseRecords(sections.get('records') ?? []) };
}

/** Record lines: "created|adopted TAB time TAB path"; anything else is ignored. */
export function parseRecords(lines: readonly string[]): DataDirRecord[] {
  const out: DataDirRecord[] = [];
  for (const l of lines) {
    const [how, time, ...rest] = l.split('\t');
    const path = rest.join('\t');
    if ((how === 'created' || how === 'adopted') && time && path.startsWith('/')) out.push({ how, time, path });
  }
  return out;
}

/**
 * Bash lines run first in every command a host's actions send once its paths are pinned: each path
 * must still resolve to what planning found, or the command writes nothing and exits 97. A symlink
 * swapped in between planning and applying is found here, in the script that would have followed it.
 */
export function pinCheckScript(pins: readonly { variable: string; path: string; resolved: string }[]): string {
  if (pins.length === 0) return '';
  const lines = [`mapfile -d '' __hoist_pin < <(realpath -m -z -- ${pins.map((p) => quote(p.path)).join(' ')} 2>/dev/null)`];
  pins.forEach((p, i) => {
    const msg = `${p.variable} = ${p.path} resolved to ${p.resolved} when the host was planned and now resolves to `;
    lines.push(
      `if [ "\${__hoist_pin[${i}]-}" != ${quote(p.resolved)} ]; then printf '%s%s%s\\n' ${quote(msg)} "\${__hoist_pin[${i}]-(unresolvable)}" ${quote(': a symlink on the way changed since; nothing was written. Check the path on the host, then run again.')} >&2; exit 97; fi`,
    );
  });
  lines.push('unset __hoist_pin');
  return lines.join('\n');
}

/** The exit code of a command refused by pinCheckScript. */
export const PIN_EXIT = 97;
