import { quote } from '../ssh/quote.js';

/*
 * Declarative reads: a task says which files and packages it needs to know about, and the gathering
 * round trip reads all of them at once (one stat, one sha256sum, one dpkg-query for the whole
 * playbook) instead of each probe starting its own processes. They run on every host of every run,
 * so the processes they save are what a no-op costs a fleet.
 */

/** A file as the host has it: what planning compares with the wanted file. */
export interface FileState {
  exists: boolean;
  sha256?: string;
  mode?: number;
  owner?: string;
  group?: string;
  /** Last content change, seconds since the epoch. */
  mtime?: number;
  /** Read when asked for: any bytes for a diff, or a small text file a task plans from. */
  content?: Buffer;
}

/**
 * 'text' reads the content with bash builtins (no process; for small text files such as hoist's own
 * records), 'bytes' through base64 (for --diff, where a file may be binary).
 */
export type ContentRead = 'none' | 'text' | 'bytes';

export interface FileRead {
  read: 'file';
  path: string;
  content: ContentRead;
}

export interface PackageRead {
  read: 'packages';
  names: string[];
}

export const fileRead = (path: string, content: ContentRead = 'none'): FileRead => ({ read: 'file', path, content });
export const packagesRead = (names: string[]): PackageRead => ({ read: 'packages', names });

/** The snippet that reads every file at once; its output is NUL-separated tokens (see parseFileBatch). */
export function fileBatchScript(reads: readonly FileRead[]): string {
  const paths = [...new Set(reads.map((r) => r.path))];
  const content = new Map<string, ContentRead>();
  for (const r of reads) {
    const had = content.get(r.path) ?? 'none';
    // 'bytes' serves a 'text' read too; never the other way round.
    content.set(r.path, had === 'bytes' || r.content === 'bytes' ? 'bytes' : had === 'text' || r.content === 'text' ? 'text' : 'none');
  }
  const lines = [
    `set -- ${paths.map(quote).join(' ')}; e=()`,
    `for f; do [ -f "$f" ] && e+=("$f"); done`,
    // Names end each stat record and sha256sum escapes the unusual ones, so results are matched by name,
    // whatever vanished in between.
    `if [ \${#e[@]} -gt 0 ]; then stat --printf 'S%a %U %G %Y %n\\0' -- "\${e[@]}" 2>/dev/null; printf '@sha\\0'; sha256sum -- "\${e[@]}" 2>/dev/null; printf '\\0'; fi`,
  ];
  paths.forEach((p, i) => {
    const how = content.get(p);
    if (how === 'none') return;
    const q = quote(p);
    const body = how === 'text' ? `{ IFS= read -r -d '' t; printf '%s' "$t"; } < ${q}` : `base64 -w0 < ${q}`;
    lines.push(`if [ -f ${q} ]; then printf '@content ${i}\\0'; ${body}; printf '\\0'; fi`);
  });
  lines.push('echo');
  return lines.join('\n');
}

/** What the batch found, by path: a path it has no record of does not exist (or could not be read). */
export function parseFileBatch(out: string, reads: readonly FileRead[]): Map<string, FileState> {
  const paths = [...new Set(reads.map((r) => r.path))];
  const found = new Map<string, FileState>();
  const tokens = out.split('\0');
  let i = 0;
  for (; i < tokens.length && tokens[i] !== '@sha'; i++) {
    const m = /^S([0-7]+) (\S+) (\S+) (\d+) ([^]*)$/.exec(tokens[i]);
    if (m && paths.includes(m[5])) found.set(m[5], { exists: true, mode: parseInt(m[1], 8), owner: m[2], group: m[3], mtime: Number(m[4]) });
  }
  for (const line of (tokens[i + 1] ?? '').split('\n')) {
    const m = /^(\\?)([0-9a-f]{64}) [ *]([^]*)$/.exec(line);
    if (!m) continue;
    const name = m[1] ? m[3].replace(/\\(.)/g, (_s, c: string) => (c === 'n' ? '\n' : c === 'r' ? '\r' : c)) : m[3];
    const st = found.get(name);
    if (st) st.sha256 = m[2];
  }
  for (let j = i + 2; j < tokens.length - 1; j++) {
    const m = /^@content (\d+)$/.exec(tokens[j]);
    if (!m) continue;
    const path = paths[Number(m[1])];
    const st = path === undefined ? undefined : found.get(path);
    if (!st) continue;
    const how = reads.find((r) => r.path === path && r.content === 'bytes') ? 'bytes' : 'text';
    st.content = how === 'bytes' ? Buffer.from(tokens[j + 1], 'base64') : Buffer.from(tokens[j + 1], 'utf8');
    j++;
  }
  for (const p of paths) if (!found.has(p)) found.set(p, { exists: false });
  return found;
}

/** Prints "name installed" for each installed package of `names`; exit 3 on a host without a package database. */
export function packageBatchScript(names: readonly string[]): string {
  const q = [...new Set(names)].map(quote).join(' ');
  return `if command -v dpkg-query >/dev/null; then dpkg-query -W -f='\${Package} \${db:Status-Status}\\n' ${q} 2>/dev/null; true
elif command -v rpm >/dev/null; then rpm -q --qf '%{NAME} installed\\n' ${q} 2>/dev/null; true
else echo "no package database (neither dpkg nor rpm)"; exit 3; fi`;
}

export function parsePackageBatch(out: string): Set<string> {
  const installed = new Set<string>();
  for (const line of out.split('\n')) {
    const m = /^(\S+) installed$/.exec(line.trim());
    if (m) installed.add(m[1]);
  }
  return installed;
}
