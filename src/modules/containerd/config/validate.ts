/**
 * Turns a host's containerd variables into a RuntimeConfig, reporting every problem by key path
 * (`registries.docker.io.mirrors[0].url`) so the engine can name the file, line and layer it
 * came from. Checks that depend on the target release (what its config.toml and hosts.toml
 * parsers accept) happen here too, so a playbook is rejected before any host is touched.
 */
import path from 'node:path';
import { addSecret } from '../../../util/redact.js';
import { InputError, InputErrors } from '../../../util/errors.js';
import { formatPath, isPlainObject, type Issue, type Path } from '../../../util/schema.js';
import { didYouMean } from '../../../util/suggest.js';
import { compareVersions, formatVersion, parseVersion, VersionParseError, type Version } from '../version.js';
import { CAPABILITIES, DEFAULT_MIRROR_CAPABILITIES, OLDEST_SUPPORTED, RUNTIME_DEFAULTS, Secret, type Capability, type MirrorConfig, type RegistryAuth, type RegistryConfig, type RuntimeConfig, type TlsFiles } from './types.js';
import { defaultSandboxImage, hostsTomlNeedsHostTable, supportsConfigPath, supportsDefaultHostsDir, supportsOverridePath } from './features.js';
import { endpointConfigs, sortedKeys } from './registry-paths.js';
import { hostPathProblem, normaliseHostPath } from '../../../util/path-guard.js';
import { resolveSecretRef, secretRefOf, secretRefProblem } from '../../../util/secret-ref.js';
import { HOIST_STATE_DIR } from '../../../host-paths.js';
import { CONTAINERD_ETC } from '../paths.js';

// ---------------------------------------------------------------------------------------------
// Validation.

const REGISTRY_KEYS = ['server', 'mirrors', 'ca', 'client_cert', 'client_key', 'skip_verify', 'username', 'password', 'auth', 'insecure_http'];
const MIRROR_KEYS = ['url', 'capabilities', 'ca', 'client_cert', 'client_key', 'skip_verify', 'override_path', 'headers'];

const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?';
const HOST_RE = new RegExp(`^(?:${LABEL}(?:\\.${LABEL})*|\\[[0-9A-Fa-f:.]+\\])(?::(\\d{1,5}))?$`);
// RFC 3986 path characters, so a URL never needs quoting or escaping anywhere containerd or a shell sees it.
const URL_PATH_RE = /^(?:\/[A-Za-z0-9._~!$&'()*+,;=:@%-]*)*$/;
const HEADER_NAME_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const BASENAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
// Control characters, and lone surrogates that no TOML or YAML file can carry.
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const SNAPSHOTTER_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

class Issues {
  readonly list: Issue[] = [];
  add(path: Path, message: string): void {
    this.list.push({ path, message });
  }
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return String(v);
  if (Array.isArray(v)) return 'an array';
  if (isPlainObject(v)) return 'a table';
  return JSON.stringify(v) ?? String(v);
}

function unknownKeys(obj: Record<string, unknown>, allowed: readonly string[], where: Path, issues: Issues): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) issues.add([...where, k], `unknown setting${didYouMean(k, allowed)} (known: ${allowed.join(', ')})`);
  }
}

function str(v: unknown, where: Path, issues: Issues): string | undefined {
  if (typeof v !== 'string') {
    issues.add(where, `must be a string, got ${show(v)}`);
    return undefined;
  }
  return v;
}

function bool(v: unknown, dflt: boolean, where: Path, issues: Issues): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') {
    issues.add(where, `must be true or false, got ${show(v)}`);
    return dflt;
  }
  return v;
}

function absPath(v: unknown, dflt: string, where: Path, issues: Issues): string {
  if (v === undefined) return dflt;
  const s = str(v, where, issues);
  if (s === undefined) return dflt;
  if (!s.startsWith('/')) issues.add(where, `${show(s)} must be an absolute path`);
  else if (CONTROL_RE.test(s)) issues.add(where, 'must not contain control characters');
  else if (s.split('/').some((seg) => seg === '..' || seg === '.')) issues.add(where, `${show(s)} must not contain "." or ".." segments`);
  else {
    const n = normaliseHostPath(s);
    const problem = hostPathProblem(n, OWN_DIRS);
    if (problem) issues.add(where, `${problem}; choose a directory of containerd's own (default ${dflt})`);
    return n;
  }
  return s;
}

/**
 * No path variable may be or contain these: a config_path of /etc/containerd would put registry
 * directories beside config.toml, an imports_dir there would import config.toml into itself.
 */
export const OWN_DIRS = [
  { dir: HOIST_STATE_DIR, what: "hoist's own state directory" },
  { dir: CONTAINERD_ETC, what: "containerd's configuration directory (config.toml)" },
];

/**
 * The data directories are emptied by a reset with remove_data: neither may be or contain a
 * directory hoist writes configuration into.
 */
function dataDirChecks(dirs: Record<'root_dir' | 'state_dir', string>, others: Record<string, string | null>, issues: Issues): void {
  for (const [key, dir] of Object.entries(dirs)) {
    if (hostPathProblem(dir, OWN_DIRS)) continue;
    for (const [otherKey, other] of Object.entries(others)) {
      if (other === null) continue;
      if (other === dir || other.startsWith(`${dir}/`)) {
        issues.add([key], `${show(dir)} ${other === dir ? 'is' : 'contains'} ${otherKey} (${other}); a reset with remove_data empties ${key}, and would take ${otherKey} with it`);
      }
    }
  }
}

/** A controller-side file for a registry; its basename becomes the file name on the host. */
function controllerFile(v: unknown, where: Path, issues: Issues): string | null {
  if (v === undefined) return null;
  const s = str(v, where, issues);
  if (s === undefined) return null;
  if (s === '' || CONTROL_RE.test(s)) {
    issues.add(where, 'must be a non-empty path without control characters');
    return null;
  }
  const base = path.basename(s);
  if (!BASENAME_RE.test(base) || base === 'hosts.toml') {
    issues.add(where, `file name ${show(base)} can't be used on the host (letters, digits, ".", "_", "-"; not hosts.toml)`);
    return null;
  }
  return s;
}

function httpUrl(v: unknown, where: Path, issues: Issues): string | null {
  const s = str(v, where, issues);
  if (s === undefined) return null;
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(.*)$/.exec(s);
  if (!m) {
    issues.add(where, `${show(s)} has no scheme (http:// or https://)`);
    return null;
  }
  if (m[1] !== 'http' && m[1] !== 'https') {
    issues.add(where, `${show(s)} must use http:// or https://, not ${m[1]}://`);
    return null;
  }
  const rest = m[2];
  const slash = rest.indexOf('/');
  const authority = slash < 0 ? rest : rest.slice(0, slash);
  const p = slash < 0 ? '' : rest.slice(slash);
  if (authority.includes('@')) {
    issues.add(where, 'must not carry credentials in the URL; use username/password on the registry');
    return null;
  }
  const hm = HOST_RE.exec(authority);
  if (!hm || (hm[1] !== undefined && (Number(hm[1]) < 1 || Number(hm[1]) > 65535))) {
    issues.add(where, `${show(s)} has no valid host[:port]`);
    return null;
  }
  if (/[?#]/.test(p) || !URL_PATH_RE.test(p)) {
    issues.add(where, `${show(s)} must not have a query, fragment, or characters outside a URL path`);
    return null;
  }
  return s;
}

function registryHostError(host: string): string | null {
  if (host === '_default') return null;
  const m = HOST_RE.exec(host);
  if (!m) return 'is not a registry host (name or IP, optional :port, as in image references)';
  if (m[1] !== undefined && (Number(m[1]) < 1 || Number(m[1]) > 65535)) return 'has a port outside 1-65535';
  if (host.includes('://')) return 'must be a host, not a URL';
  return null;
}

function defaultServer(host: string, insecureHttp: boolean): string | null {
  if (host === '_default') return null;
  // Same endpoint containerd picks when hosts.toml names no server.
  if (host === 'docker.io') return insecureHttp ? 'http://registry-1.docker.io' : 'https://registry-1.docker.io';
  return `${insecureHttp ? 'http' : 'https'}://${host}`;
}

function tlsFiles(raw: Record<string, unknown>, where: Path, issues: Issues): TlsFiles {
  const ca = controllerFile(raw.ca, [...where, 'ca'], issues);
  const clientCert = controllerFile(raw.client_cert, [...where, 'client_cert'], issues);
  const clientKey = controllerFile(raw.client_key, [...where, 'client_key'], issues);
  if ((raw.client_cert === undefined) !== (raw.client_key === undefined)) {
    issues.add(where, 'client_cert and client_key must be set together');
  }
  return { ca, clientCert, clientKey, skipVerify: bool(raw.skip_verify, false, [...where, 'skip_verify'], issues) };
}

function capabilities(v: unknown, where: Path, issues: Issues): Capability[] {
  if (v === undefined) return [...DEFAULT_MIRROR_CAPABILITIES];
  if (!Array.isArray(v) || v.length === 0) {
    issues.add(where, `must be a non-empty array of ${CAPABILITIES.map((c) => `"${c}"`).join(', ')}`);
    return [...DEFAULT_MIRROR_CAPABILITIES];
  }
  const set = new Set<Capability>();
  v.forEach((c, i) => {
    if (typeof c === 'string' && (CAPABILITIES as readonly string[]).includes(c)) set.add(c as Capability);
    // containerd refuses the whole hosts.toml on an unknown capability.
    else issues.add([...where, i], `${show(c)} is not a capability (pull, resolve, push)`);
  });
  return CAPABILITIES.filter((c) => set.has(c));
}

function headers(v: unknown, where: Path, issues: Issues): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  if (v === undefined) return out;
  if (!isPlainObject(v)) {
    issues.add(where, `must be a table of header name = value, got ${show(v)}`);
    return out;
  }
  for (const [name, value] of Object.entries(v)) {
    const w: Path = [...where, name];
    if (!HEADER_NAME_RE.test(name)) {
      issues.add(w, 'is not a valid HTTP header name');
      continue;
    }
    const values = Array.isArray(value) ? value : [value];
    if (values.length === 0 || !values.every((x): x is string => typeof x === 'string')) {
      issues.add(w, 'must be a string or a non-empty array of strings');
      continue;
    }
    // Go's HTTP client refuses control characters (other than tab) in header values.
    if (values.some((x) => /[\u0000-\u0008\u000a-\u001f\u007f]/.test(x))) {
      issues.add(w, 'must not contain control characters (CR, LF, NUL, …)');
      continue;
    }
    if (isSensitiveHeader(name)) values.forEach((x) => addSecret(x));
    out[name] = values;
  }
  return out;
}

/** Header names whose values are credentials: files carrying them are written 0600 and values redacted. */
export function isSensitiveHeader(name: string): boolean {
  return /auth|token|cookie|secret|key|password/i.test(name);
}

function mirror(raw: unknown, where: Path, issues: Issues): MirrorConfig | null {
  // The string shorthand reports against the list entry itself, the table form against `.url`.
  const shorthand = typeof raw === 'string';
  if (shorthand) raw = { url: raw };
  else if (!isPlainObject(raw)) {
    issues.add(where, `must be a URL string or a table with url = "…", got ${show(raw)}`);
    return null;
  }
  const obj = raw as Record<string, unknown>;
  if (obj.url === undefined) {
    issues.add([...where, 'url'], 'is required');
    return null;
  }
  unknownKeys(obj, MIRROR_KEYS, where, issues);
  const url = httpUrl(obj.url, shorthand ? where : [...where, 'url'], issues);
  const tls = tlsFiles(obj, where, issues);
  return {
    url: url ?? '',
    capabilities: capabilities(obj.capabilities, [...where, 'capabilities'], issues),
    ...tls,
    overridePath: bool(obj.override_path, false, [...where, 'override_path'], issues),
    headers: headers(obj.headers, [...where, 'headers'], issues),
  };
}

function registry(host: string, raw: unknown, where: Path, issues: Issues): RegistryConfig | null {
  const hostErr = registryHostError(host);
  if (hostErr) {
    issues.add(where, `${show(host)} ${hostErr}`);
    return null;
  }
  if (!isPlainObject(raw)) {
    issues.add(where, `must be a table, got ${show(raw)}`);
    return null;
  }
  unknownKeys(raw, REGISTRY_KEYS, where, issues);
  const insecureHttp = bool(raw.insecure_http, false, [...where, 'insecure_http'], issues);
  let server = defaultServer(host, insecureHttp);
  if (raw.server !== undefined) {
    if (host === '_default') issues.add([...where, 'server'], '_default applies to every registry and cannot name a server');
    else {
      const s = httpUrl(raw.server, [...where, 'server'], issues);
      if (s) {
        if (insecureHttp && s.startsWith('https://')) issues.add([...where, 'server'], `${show(s)} is https:// but insecure_http = true asks for plain http`);
        server = s;
      }
    }
  }
  const mirrors: MirrorConfig[] = [];
  if (raw.mirrors !== undefined) {
    if (!Array.isArray(raw.mirrors)) issues.add([...where, 'mirrors'], `must be an array, got ${show(raw.mirrors)}`);
    else {
      const seen = new Set<string>();
      raw.mirrors.forEach((m, i) => {
        const parsed = mirror(m, [...where, 'mirrors', i], issues);
        if (!parsed) return;
        if (parsed.url && seen.has(parsed.url)) issues.add([...where, 'mirrors', i], `${show(parsed.url)} is listed twice`);
        seen.add(parsed.url);
        mirrors.push(parsed);
      });
    }
  }
  const tls = tlsFiles(raw, where, issues);
  let auth: RegistryAuth | null = null;
  const hasUser = raw.username !== undefined || raw.password !== undefined;
  if (hasUser && raw.auth !== undefined) issues.add(where, 'set either username/password or auth, not both');
  else if (hasUser) {
    // Never echo these values: they are credentials.
    const password = credential(raw.password, [...where, 'password'], issues);
    if (typeof raw.username !== 'string' || raw.username === '' || /[:\u0000-\u001f\u007f]/.test(raw.username)) {
      issues.add([...where, 'username'], 'must be a non-empty string without ":" or control characters');
    } else if (password === null) {
      issues.add([...where, 'password'], 'must be a non-empty string, or a reference ({ env = "NAME" }, { file = "path" }, { command = "…" }), when username is set');
    } else if (password !== undefined) {
      auth = { kind: 'basic', username: raw.username, password: new Secret(password) };
    }
  } else if (raw.auth !== undefined) {
    const a = credential(raw.auth, [...where, 'auth'], issues);
    if (a === undefined) {
      // The reference's own problem is reported.
    } else if (a === null || !/^[A-Za-z0-9+/]+={0,2}$/.test(a) || !Buffer.from(a, 'base64').toString('utf8').includes(':')) {
      issues.add([...where, 'auth'], 'must be base64 of "username:password" (as in a docker config.json), written or referenced');
    } else {
      auth = { kind: 'auth', auth: new Secret(a) };
    }
  }
  if (auth && host === '_default') {
    issues.add(where, 'credentials cannot be set on _default: they would be sent to every registry');
    auth = null;
  }
  // Two controller files with one basename would overwrite each other in the registry directory.
  const byBase = new Map<string, string>();
  for (const [w, f] of [
    [[], tls.ca],
    [[], tls.clientCert],
    [[], tls.clientKey],
    ...mirrors.flatMap((m, i) => [
      [['mirrors', i], m.ca],
      [['mirrors', i], m.clientCert],
      [['mirrors', i], m.clientKey],
    ]),
  ] as [Path, string | null][]) {
    if (!f) continue;
    const base = path.basename(f);
    const prev = byBase.get(base);
    if (prev !== undefined && prev !== f) issues.add([...where, ...w], `${show(f)} and ${show(prev)} would both be pushed as ${base}; rename one`);
    byBase.set(base, f);
  }
  return { host, server, mirrors, ...tls, insecureHttp, auth };
}

function versionChecks(v: Version, configPath: string, regs: Record<string, RegistryConfig>, issues: Issues): void {
  const ver = formatVersion(v);
  for (const host of sortedKeys(regs)) {
    const reg = regs[host];
    const where: Path = ['registries', host];
    if (host === '_default') {
      if (!supportsDefaultHostsDir(v)) issues.add(where, `_default needs containerd 1.6.17 or later (target ${ver})`);
      else if (hostsTomlNeedsHostTable(v) && reg.mirrors.length === 0) {
        issues.add([...where, 'mirrors'], `containerd ${ver} ignores a _default hosts.toml without mirrors; add at least one`);
      }
    }
    reg.mirrors.forEach((m, i) => {
      const w: Path = [...where, 'mirrors', i];
      if (m.overridePath && !supportsOverridePath(v)) issues.add([...w, 'override_path'], `needs containerd 1.6 or later (target ${ver})`);
      if (!supportsConfigPath(v)) {
        // 1.4 only has registry.mirrors endpoints: no per-mirror capabilities, headers or path handling.
        if (!m.capabilities.includes('pull') || !m.capabilities.includes('resolve')) {
          issues.add([...w, 'capabilities'], `containerd ${ver} uses every mirror for pull and resolve; it cannot restrict capabilities`);
        }
        if (Object.keys(m.headers).length) issues.add([...w, 'headers'], `per-mirror headers need containerd 1.5 or later (target ${ver})`);
        if (urlPath(m.url) !== '') issues.add(w, `a URL path needs containerd 1.5 or later (target ${ver}); 1.4 treats the path as the API root`);
      }
    });
  }
  if (!supportsConfigPath(v)) {
    for (const c of endpointConfigs({ configPath, registries: regs }, true).conflicts) issues.add(c.path, c.message);
  } else if (v.major === 1) {
    for (const c of endpointConfigs({ configPath, registries: regs }, false).conflicts) issues.add(c.path, c.message);
  }
}

function urlPath(url: string): string {
  const rest = url.replace(/^[a-z]+:\/\//i, '');
  const i = rest.indexOf('/');
  return i < 0 ? '' : rest.slice(i).replace(/\/+$/, '');
}

/**
 * Turns a host's variables into a RuntimeConfig. Variables this file doesn't own are ignored;
 * inside `registries` every key must be known. Every problem is returned, each with its key path.
 */
export function checkRuntimeConfig(vars: Record<string, unknown>): { value?: RuntimeConfig; issues: Issue[] } {
  const issues = new Issues();

  let version: Version | null = null;
  if (vars.containerd_version === undefined) issues.add(['containerd_version'], 'is required (e.g. "1.7.34" or "2.1.9")');
  else if (typeof vars.containerd_version !== 'string') issues.add(['containerd_version'], `must be a string, got ${show(vars.containerd_version)}`);
  else {
    try {
      const v = parseVersion(vars.containerd_version);
      if (compareVersions(v, OLDEST_SUPPORTED) < 0 || v.major > 2) {
        issues.add(['containerd_version'], `${show(vars.containerd_version)} is not supported (1.4 to 2.x)`);
      } else version = v;
    } catch (err) {
      issues.add(['containerd_version'], err instanceof VersionParseError ? `${show(vars.containerd_version)} is not a version (X.Y.Z)` : String(err));
    }
  }

  const systemdCgroup = bool(vars.systemd_cgroup, RUNTIME_DEFAULTS.systemd_cgroup, ['systemd_cgroup'], issues);

  let sandboxImage = version ? defaultSandboxImage(version) : '';
  if (vars.sandbox_image !== undefined) {
    const s = str(vars.sandbox_image, ['sandbox_image'], issues);
    if (s !== undefined) {
      if (s === '' || /\s/.test(s) || CONTROL_RE.test(s)) issues.add(['sandbox_image'], `${show(s)} is not an image reference`);
      else sandboxImage = s;
    }
  }

  const rootDir = absPath(vars.root_dir, RUNTIME_DEFAULTS.root_dir, ['root_dir'], issues);
  const stateDir = absPath(vars.state_dir, RUNTIME_DEFAULTS.state_dir, ['state_dir'], issues);

  let oomScore: number = RUNTIME_DEFAULTS.oom_score;
  if (vars.oom_score !== undefined) {
    const o = vars.oom_score;
    const n = typeof o === 'bigint' ? Number(o) : o;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < -1000 || n > 1000) issues.add(['oom_score'], `must be an integer from -1000 to 1000, got ${show(o)}`);
    else oomScore = n;
  }

  const restrictOomScoreAdj = bool(vars.restrict_oom_score_adj, RUNTIME_DEFAULTS.restrict_oom_score_adj, ['restrict_oom_score_adj'], issues);

  let snapshotter: string = RUNTIME_DEFAULTS.snapshotter;
  if (vars.snapshotter !== undefined) {
    const s = str(vars.snapshotter, ['snapshotter'], issues);
    if (s !== undefined) {
      if (!SNAPSHOTTER_RE.test(s)) issues.add(['snapshotter'], `${show(s)} is not a snapshotter name (e.g. overlayfs, native, btrfs, zfs)`);
      else snapshotter = s;
    }
  }

  const cniBinDir = absPath(vars.cni_bin_dir, RUNTIME_DEFAULTS.cni_bin_dir, ['cni_bin_dir'], issues);
  const cniConfDir = absPath(vars.cni_conf_dir, RUNTIME_DEFAULTS.cni_conf_dir, ['cni_conf_dir'], issues);

  let importsDir: string | null = RUNTIME_DEFAULTS.imports_dir;
  if (vars.imports_dir === '' || vars.imports_dir === false) importsDir = null;
  else if (vars.imports_dir !== undefined) {
    importsDir = absPath(vars.imports_dir, RUNTIME_DEFAULTS.imports_dir, ['imports_dir'], issues);
    // containerd globs import paths; metacharacters in the directory would change what matches.
    if (/[*?[\]\\]/.test(importsDir)) issues.add(['imports_dir'], `${show(importsDir)} must not contain glob characters (* ? [ ] \\)`);
  }

  const configPath = absPath(vars.config_path, RUNTIME_DEFAULTS.config_path, ['config_path'], issues);
  if (configPath.includes(':')) issues.add(['config_path'], 'must be one directory (containerd splits config_path on ":")');
  dataDirChecks({ root_dir: rootDir, state_dir: stateDir }, { config_path: configPath, imports_dir: importsDir, cni_bin_dir: cniBinDir, cni_conf_dir: cniConfDir }, issues);

  const registries: Record<string, RegistryConfig> = {};
  if (vars.registries !== undefined) {
    if (!isPlainObject(vars.registries)) issues.add(['registries'], `must be a table keyed by registry host, got ${show(vars.registries)}`);
    else {
      for (const host of sortedKeys(vars.registries)) {
        const r = registry(host, vars.registries[host], ['registries', host], issues);
        if (r) registries[host] = r;
      }
    }
  }
  if (version) versionChecks(version, configPath, registries, issues);

  if (issues.list.length || !version) return { issues: issues.list };
  const value: RuntimeConfig = {
    containerdVersion: formatVersion(version),
    version: version,
    systemdCgroup,
    sandboxImage,
    rootDir,
    stateDir,
    oomScore,
    restrictOomScoreAdj,
    snapshotter,
    cniBinDir,
    cniConfDir,
    importsDir,
    configPath,
    registries,
  };
  return { value, issues: [] };
}

/** checkRuntimeConfig for callers without a file to point at: every problem in one error, each led by its key path. */
export function validateRuntimeConfig(vars: Record<string, unknown>): RuntimeConfig {
  const { value, issues } = checkRuntimeConfig(vars);
  if (!value) throw new InputErrors(issues.map((i) => new InputError(`${formatPath(i.path)}: ${i.message}`)));
  return value;
}


/**
 * A credential written in place or referenced: its value; undefined when a reference failed (the
 * problem is reported, naming the reference, never a value); null when it is neither.
 */
function credential(v: unknown, where: Path, issues: Issues): string | null | undefined {
  if (typeof v === 'string') return v === '' ? null : v;
  const ref = secretRefOf(v);
  if (!ref) {
    const problem = secretRefProblem(v);
    if (problem) {
      issues.add(where, problem);
      return undefined;
    }
    return null;
  }
  try {
    return resolveSecretRef(ref);
  } catch (e) {
    issues.add(where, (e as Error).message);
    return undefined;
  }
}
