import os from 'node:os';
import path from 'node:path';
import { InputError } from '../util/errors.js';
import { MAX_INCLUDE_DEPTH, expandGlob, includeBase, readSshConfigFile, type SshConfigFile, type SshConfigLine } from './ssh-config-file.js';

export interface SshConfigEntry {
  hostName?: string;
  user?: string;
  port?: number;
  identityFiles: string[];
  proxyJump?: string;
  proxyCommand?: string;
  identitiesOnly?: boolean;
}

/**
 * The files OpenSSH reads, in its order: the user's ~/.ssh/config, then /etc/ssh/ssh_config (each
 * with its Includes). `HOIST_SSH_CONFIG` is `ssh -F`: that file alone, the system file skipped.
 */
function configFiles(): SshConfigFile[] {
  const only = process.env.HOIST_SSH_CONFIG;
  if (only) return [readSshConfigFile(only, 'user')].filter((f) => f !== undefined);
  const system = process.env.HOIST_SSH_SYSTEM_CONFIG ?? '/etc/ssh/ssh_config';
  return [readSshConfigFile(path.join(os.homedir(), '.ssh', 'config'), 'user'), readSshConfigFile(system, 'system')].filter((f) => f !== undefined);
}

let cached: SshConfigFile[] | undefined;
const includeCache = new Map<string, SshConfigFile | undefined>();

/** What the ssh_config files say about a host, as OpenSSH computes it: the first value obtained for a keyword wins. */
export async function sshConfigFor(host: string, user?: string): Promise<SshConfigEntry> {
  cached ??= configFiles();
  return evaluateSshConfig(cached, host, user);
}

/** Forget the files read (tests change them between calls). */
export function clearSshConfigCache(): void {
  cached = undefined;
  includeCache.clear();
}

interface State {
  originalHost: string;
  /** The user given on the command line (the inventory's), which Match user sees before any User line. */
  cliUser?: string;
  values: Map<string, string[]>;
  identityFiles: string[];
  finalPass: boolean;
  wantFinal: boolean;
}

export function evaluateSshConfig(files: SshConfigFile[], host: string, user?: string): SshConfigEntry {
  const st: State = { originalHost: host.toLowerCase(), cliUser: user, values: new Map(), identityFiles: [], finalPass: false, wantFinal: false };
  for (const f of files) readFile(f, st, 0, true);
  // `Match final` asks for a second pass over everything; values from the first pass still win.
  if (st.wantFinal) {
    st.finalPass = true;
    for (const f of files) readFile(f, st, 0, true);
  }
  return entryOf(st, host);
}

function readFile(f: SshConfigFile, st: State, depth: number, enabled: boolean): void {
  let active = enabled;
  for (const l of f.lines) {
    if (l.keyword === 'host') {
      active = enabled && hostLineMatches(l.args, st.originalHost);
    } else if (l.keyword === 'match') {
      active = matchLineMatches(l, st, enabled);
    } else if (l.keyword === 'include') {
      if (depth >= MAX_INCLUDE_DEPTH) throw new InputError(`${l.file}:${l.line}: more than ${MAX_INCLUDE_DEPTH} nested Include directives`);
      // An Include in a block that doesn't apply still reads its files (their errors count) but applies nothing.
      for (const pattern of l.args) {
        for (const file of expandGlob(includeBase(pattern, f.kind))) {
          if (!includeCache.has(file)) includeCache.set(file, readSshConfigFile(file, f.kind));
          const inc = includeCache.get(file);
          if (inc) readFile({ ...inc, kind: f.kind }, st, depth + 1, active);
        }
      }
    } else if (active) {
      set(l, st);
    }
  }
}

function set(l: SshConfigLine, st: State): void {
  if (l.keyword === 'identityfile') {
    if (l.args[0] !== undefined) st.identityFiles.push(l.args[0]);
    return;
  }
  // ProxyJump and ProxyCommand exclude each other: whichever is obtained first wins (readconf.c).
  if ((l.keyword === 'proxycommand' && st.values.has('proxyjump')) || (l.keyword === 'proxyjump' && st.values.has('proxycommand'))) return;
  if (!st.values.has(l.keyword)) st.values.set(l.keyword, l.args);
}

/**
 * OpenSSH's pattern lists (`Host a b !c`, `Match host a,!c`): a match needs a positive pattern that
 * matches and no negated one that does.
 */
export function hostLineMatches(patterns: string[], value: string): boolean {
  let matched = false;
  for (const p of patterns) {
    if (p.startsWith('!')) {
      if (wildcardMatch(p.slice(1), value)) return false;
    } else if (wildcardMatch(p, value)) {
      matched = true;
    }
  }
  return matched;
}

function wildcardMatch(pattern: string, value: string): boolean {
  const re = new RegExp(
    `^${pattern
      .toLowerCase()
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
    's',
  );
  return re.test(value.toLowerCase());
}

/** Criteria whose answer depends on something hoist doesn't do (run a command, canonicalise, look at local interfaces). */
const UNSUPPORTED = new Set(['exec', 'localnetwork', 'tagged', 'version', 'sessiontype', 'command']);

function matchLineMatches(l: SshConfigLine, st: State, enabled: boolean): boolean {
  const args = [...l.args];
  let result = enabled;
  while (args.length) {
    const raw = args.shift() as string;
    const negate = raw.startsWith('!');
    const crit = (negate ? raw.slice(1) : raw).toLowerCase();
    let ok: boolean;
    if (crit === 'all') ok = true;
    else if (crit === 'final') {
      st.wantFinal = true;
      ok = st.finalPass;
    } else if (crit === 'canonical')
      ok = false; // hoist never canonicalises a host name
    else if (UNSUPPORTED.has(crit)) {
      // As OpenSSH skips an exec once the line can't match, only a criterion that would decide is refused.
      if (!result) {
        args.shift();
        continue;
      }
      throw new InputError(
        `${l.file}:${l.line}: "Match ${crit}" is not supported by hoist; set this host's connection in the inventory (user, port, jump, identity_file) or point HOIST_SSH_CONFIG at a file without it`,
      );
    } else {
      const arg = args.shift();
      if (arg === undefined) throw new InputError(`${l.file}:${l.line}: "Match ${crit}" needs an argument`);
      const value =
        crit === 'host'
          ? currentHostName(st)
          : crit === 'originalhost'
            ? st.originalHost
            : crit === 'user'
              ? currentUser(st)
              : crit === 'localuser'
                ? os.userInfo().username
                : undefined;
      if (value === undefined) throw new InputError(`${l.file}:${l.line}: unknown Match criterion "${crit}"`);
      ok = hostLineMatches(arg.split(','), value);
    }
    if (negate) ok = !ok;
    // Every criterion is read (their errors count), as OpenSSH does; all must hold.
    if (!ok) result = false;
  }
  return result;
}

function currentHostName(st: State): string {
  const h = st.values.get('hostname')?.[0];
  return h === undefined ? st.originalHost : expandHostName(h, st.originalHost);
}

function currentUser(st: State): string {
  return st.cliUser ?? st.values.get('user')?.[0] ?? os.userInfo().username;
}

function expandHostName(h: string, original: string): string {
  return h.replace(/%(%|h)/g, (_m, c: string) => (c === '%' ? '%' : original));
}

function entryOf(st: State, host: string): SshConfigEntry {
  const one = (k: string) => st.values.get(k)?.[0];
  const hostName = one('hostname');
  const port = one('port');
  const jump = one('proxyjump');
  const proxy = one('proxycommand');
  const only = one('identitiesonly');
  const expandedHost = hostName === undefined ? undefined : expandHostName(hostName, host);
  const remoteUser = st.cliUser ?? one('user') ?? os.userInfo().username;
  return {
    hostName: expandedHost,
    user: one('user'),
    port: port ? Number(port) : undefined,
    identityFiles: st.identityFiles.map((f) => expandIdentityPath(f, expandedHost ?? host, remoteUser)),
    proxyJump: jump && jump.toLowerCase() !== 'none' ? jump : undefined,
    proxyCommand: proxy && proxy.toLowerCase() !== 'none' ? proxy : undefined,
    identitiesOnly: only === undefined ? undefined : /^(yes|true)$/i.test(only),
  };
}

/** `~`, %d (home), %u (local user), %h (host name), %r (remote user), %% in an IdentityFile. */
function expandIdentityPath(f: string, host: string, remoteUser: string): string {
  const home = os.homedir();
  const tilde = f === '~' ? home : f.startsWith('~/') ? path.join(home, f.slice(2)) : f;
  return tilde.replace(/%([%dhru])/g, (_m, c: string) =>
    c === '%' ? '%' : c === 'd' ? home : c === 'h' ? host : c === 'r' ? remoteUser : os.userInfo().username,
  );
}

/** "[user@]host[:port]", the ProxyJump form. */
export function parseJumpSpec(spec: string): { user?: string; host: string; port?: number } {
  const m = /^(?:([^@]+)@)?(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(spec.trim());
  if (!m) throw new InputError(`invalid jump host "${spec}": expected [user@]host[:port]`);
  return { user: m[1], host: m[2].replace(/^\[|\]$/g, ''), port: m[3] ? Number(m[3]) : undefined };
}
