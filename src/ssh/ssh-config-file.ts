import { readFileSync, readdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import picomatch from 'picomatch';
import { InputError } from '../util/errors.js';

/** One directive of an ssh_config file, with where it was read (for messages). */
export interface SshConfigLine {
  keyword: string;
  /** The arguments, split as OpenSSH splits them (quotes, backslashes). */
  args: string[];
  /** Everything after the keyword, as written: ProxyCommand and its kin take it whole. */
  rest: string;
  file: string;
  line: number;
}

/** A file's directives, with its `Include`s left in place for the evaluator (they depend on the block they sit in). */
export interface SshConfigFile {
  file: string;
  /** User files resolve relative includes in ~/.ssh, system ones in /etc/ssh (ssh_config(5), Include). */
  kind: 'user' | 'system';
  lines: SshConfigLine[];
}

/** OpenSSH's limit on nested includes (readconf.c READCONF_MAX_DEPTH). */
export const MAX_INCLUDE_DEPTH = 16;

/** Keywords whose value is the rest of the line, given to a shell (readconf.c takes it verbatim). */
const WHOLE_LINE = /^(proxycommand|localcommand|remotecommand|knownhostscommand)$/;

/**
 * Reads a config file, or undefined when it doesn't exist (OpenSSH skips a missing file, also an
 * included one). An unreadable file that exists is an error: it would change how hosts are reached.
 */
export function readSshConfigFile(file: string, kind: 'user' | 'system'): SshConfigFile | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new InputError(`ssh config ${file} can't be read: ${(e as Error).message}`);
  }
  return { file, kind, lines: parseSshConfig(text, file) };
}

export function parseSshConfig(text: string, file: string): SshConfigLine[] {
  const out: SshConfigLine[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '').trim();
    if (line === '' || line.startsWith('#')) return;
    // "Keyword value", "Keyword=value" or "Keyword = value".
    const m = /^([^\s=]+)\s*(?:=\s*|\s+)?(.*)$/.exec(line);
    if (!m) return;
    const keyword = m[1].toLowerCase();
    const rest = m[2].trim();
    const args = WHOLE_LINE.test(keyword) ? [rest] : splitArgs(rest, file, i + 1);
    out.push({ keyword, args, rest, file, line: i + 1 });
  });
  return out;
}

/** OpenSSH's argv_split: whitespace separates, "double" and 'single' quotes group, backslash escapes a quote or backslash; an unquoted # starts a comment. */
export function splitArgs(s: string, file: string, line: number): string[] {
  const args: string[] = [];
  let cur = '';
  let inArg = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (!quote && /\s/.test(c)) {
      if (inArg) args.push(cur);
      cur = '';
      inArg = false;
      continue;
    }
    if (!quote && c === '#' && !inArg) break;
    inArg = true;
    if (c === '\\' && i + 1 < s.length && (s[i + 1] === '"' || s[i + 1] === "'" || s[i + 1] === '\\' || (s[i + 1] === ' ' && !quote))) {
      cur += s[++i];
    } else if (quote && c === quote) {
      quote = undefined;
    } else if (!quote && (c === '"' || c === "'")) {
      quote = c;
    } else {
      cur += c;
    }
  }
  if (quote) throw new InputError(`${file}:${line}: unterminated quoted argument`);
  if (inArg) args.push(cur);
  return args;
}

/** `~`, `~/x` and relative paths of an Include, as ssh_config(5) resolves them. */
export function includeBase(p: string, kind: 'user' | 'system'): string {
  if (p === '~') return os.homedir();
  if (p.startsWith('~/')) return path.join(os.homedir(), p.slice(2));
  if (p.startsWith('/')) return p;
  return kind === 'user' ? path.join(os.homedir(), '.ssh', p) : path.join('/etc/ssh', p);
}

/** The files a glob names, sorted as glob(3) sorts them; `*` doesn't match a leading dot. Nothing matched is no files, as in OpenSSH. */
export function expandGlob(pattern: string): string[] {
  const parts = pattern.split('/').filter((p, i) => p !== '' || i === 0);
  let found = [parts[0] === '' ? '/' : parts[0]];
  for (const part of parts.slice(1)) {
    const next: string[] = [];
    for (const dir of found) {
      if (!picomatch.scan(part).isGlob) {
        next.push(path.join(dir, part));
        continue;
      }
      let entries: string[];
      try {
        entries = readdirSync(dir);
      } catch {
        continue;
      }
      const isMatch = picomatch(part, { dot: false });
      for (const e of entries.sort()) if (isMatch(e)) next.push(path.join(dir, e));
    }
    found = next;
  }
  return found.filter((f) => {
    try {
      return statSync(f).isFile();
    } catch {
      return false;
    }
  });
}
