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
  const content = contentByPath(reads);
  const paths = [...content.keys()];
  const lines = [
    `set -- ${paths.map(quote).join(' ')}; e=()`,
    `for f; do [ -f "$f" ] && e+=("$f"); done`,
    // Every field is its own NUL-terminated token (an owner may hold a space, a name anything but NUL),
    // and sha256sum escapes the unusual names: results are matched by name, whatever vanished in between.
    `if [ \${#e[@]} -gt 0 ]; then stat --printf 'S%a\\0%U\\0%G\\0%Y\\0%n\\0' -- "\${e[@]}" 2>/dev/null; printf '@sha\\0'; sha256sum -- "\${e[@]}" 2>/dev/null; printf '\\0'; fi`,
  ];
  paths.forEach((p, i) => {
    const how = content.get(p);
    if (how === 'none') return;
    const q = quote(p);
    // A file that can't be opened says so instead of passing its error message off as its content.
    const body =
      how === 'text'
        ? `if { exec 3< ${q}; } 2>/dev/null; then t=; IFS= read -r -d '' t <&3; exec 3<&-; printf '@content ${i}\\0%s\\0' "$t"; else printf '@unreadable ${i}\\0'; fi`
        : `if c=$(base64 -w0 < ${q} 2>/dev/null); then printf '@content ${i}\\0%s\\0' "$c"; else printf '@unreadable ${i}\\0'; fi`;
    lines.push(`if [ -f ${q} ]; then ${body}; fi`);
  });
  lines.push('echo');
  return lines.join('\n');
}

/**
 * Each path once, in the order first asked for, with the content read that serves every read of it:
 * 'bytes' serves a 'text' read too, never the other way round. The script and its parser index paths alike.
 */
function contentByPath(reads: readonly FileRead[]): Map<string, ContentRead> {
  const content = new Map<string, ContentRead>();
  for (const r of reads) {
    const had = content.get(r.path) ?? 'none';
    content.set(r.path, had === 'bytes' || r.content === 'bytes' ? 'bytes' : had === 'text' || r.content === 'text' ? 'text' : 'none');
  }
  return content;
}

/** A file that exists but could not be read: planning must not guess its state. */
export interface UnreadableFile {
  error: string;
}

/** What the batch found, by path: a path it has no record of does not exist. */
export function parseFileBatch(out: string, reads: readonly FileRead[]): Map<string, FileState | UnreadableFile> {
  const content = contentByPath(reads);
  const paths = [...content.keys()];
  const found = new Map<string, FileState>();
  const unreadable = new Set<string>();
  const tokens = out.split('\0');
  let i = 0;
  for (; i + 4 < tokens.length && /^S[0-7]+$/.test(tokens[i]); i += 5) {
    const [mode, owner, group, mtime, name] = tokens.slice(i, i + 5);
    if (paths.includes(name) && /^\d+$/.test(mtime)) found.set(name, { exists: true, mode: parseInt(mode.slice(1), 8), owner, group, mtime: Number(mtime) });
  }
  if (tokens[i] === '@sha') {
    for (const line of tokens[i + 1].split('\n')) {
      const m = /^(\\?)([0-9a-f]{64}) [ *]([^]*)$/.exec(line);
      if (!m) continue;
      const name = m[1] ? m[3].replace(/\\(.)/g, (_s, c: string) => (c === 'n' ? '\n' : c === 'r' ? '\r' : c)) : m[3];
      const st = found.get(name);
      if (st) st.sha256 = m[2];
    }
    i += 2;
  }
  for (; i < tokens.length; i++) {
    const m = /^@(content|unreadable) (\d+)$/.exec(tokens[i]);
    const path = m ? paths[Number(m[2])] : undefined;
    if (!m || path === undefined) continue;
    if (m[1] === 'unreadable') {
      unreadable.add(path);
      continue;
    }
    const st = found.get(path);
    if (st) st.content = Buffer.from(tokens[i + 1], content.get(path) === 'bytes' ? 'base64' : 'utf8');
    i++;
  }
  const result = new Map<string, FileState | UnreadableFile>();
  for (const p of paths) {
    const st = found.get(p);
    // stat saw it but sha256sum (or the content read) could not read it.
    if (st && (!st.sha256 || unreadable.has(p))) result.set(p, { error: `cannot read ${p} (it exists)` });
    else result.set(p, st ?? { exists: false });
  }
  return result;
}

/** Prints "name installed" for each installed package of `names`; exit 3 on a host without a package database. */
export function packageBatchScript(names: readonly string[]): string {
  const q = [...new Set(names)].map(quote).join(' ');
  // Each installed package prints every name it answers to (name, name:arch / name.arch, with
  // version and release for rpm): a task may ask for any of them.
  return `if command -v dpkg-query >/dev/null; then dpkg-query -W -f='\${db:Status-Status} \${Package} \${binary:Package} \${Package}:\${Architecture}\\n' ${q} 2>/dev/null; true
elif command -v rpm >/dev/null; then rpm -q --qf 'installed %{NAME} %{NAME}.%{ARCH} %{NAME}-%{VERSION} %{NAME}-%{VERSION}-%{RELEASE} %{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}\\n' ${q} 2>/dev/null; true
else echo "no package database (neither dpkg nor rpm)"; exit 3; fi`;
}

/** Every name an installed package answers to ("package X is not installed" lines are rpm's for the others). */
export function parsePackageBatch(out: string): Set<string> {
  const installed = new Set<string>();
  for (const line of out.split('\n')) {
    const [status, ...names] = line.trim().split(/\s+/);
    if (status === 'installed') for (const n of names) installed.add(n);
  }
  return installed;
}
