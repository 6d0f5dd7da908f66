/**
 * Turns a host's containerd variables into a RuntimeConfig, reporting every problem by key path
 * (`registries.docker.io.mirrors[0].url`) so the engine can name the file, line and layer it
 * came from. Checks that depend on the target release (what its config.toml and hosts.toml
 * parsers accept) happen here too, so a playbook is rejected before any host is touched.
 */
import path from 'node:path';
import { addSecret } from '../../../util/redact.js';
import { InputError, InputErrors } from '../../../util/errors.js';
import { formatPath, isPlainObject, parseWith, type Issue, type Path } from '../../../util/schema.js';
import { compareVersions, formatVersion, parseVersion, VersionParseError, type Version } from '../version.js';
import { OLDEST_SUPPORTED, RUNTIME_DEFAULTS, Secret, type MirrorConfig, type RegistryAuth, type RegistryConfig, type RuntimeConfig, type TlsFiles } from './types.js';
import { defaultSandboxImage, hostsTomlNeedsHostTable, supportsConfigPath, supportsDefaultHostsDir, supportsOverridePath } from './features.js';
import { endpointConfigs, sortedKeys } from './registry-paths.js';
import { hostPathProblem, normaliseHostPath } from '../../../util/path-guard.js';
import { resolveSecretRef, type SecretRef } from '../../../util/secret-ref.js';
import { isCredentialName } from '../../../util/credential-names.js';
import { CONTROL_RE, registriesSchema, type MirrorVars, type RegistryVars } from './registry-schema.js';
import { HOIST_STATE_DIR } from '../../../host-paths.js';
import { CONTAINERD_ETC } from '../paths.js';

// ---------------------------------------------------------------------------------------------
// Validation.

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

function defaultServer(host: string, insecureHttp: boolean): string | null {
  if (host === '_default') return null;
  // Same endpoint containerd picks when hosts.toml names no server.
  if (host === 'docker.io') return insecureHttp ? 'http://registry-1.docker.io' : 'https://registry-1.docker.io';
  return `${insecureHttp ? 'http' : 'https'}://${host}`;
}

function tlsFiles(raw: RegistryVars | MirrorVars, where: Path, issues: Issues): TlsFiles {
  if ((raw.client_cert === undefined) !== (raw.client_key === undefined)) {
    issues.add(where, 'client_cert and client_key must be set together');
  }
  return { ca: raw.ca ?? null, clientCert: raw.client_cert ?? null, clientKey: raw.client_key ?? null, skipVerify: raw.skip_verify };
}

/** Header names whose values are credentials: files carrying them are written 0600 and values redacted. */
export function isSensitiveHeader(name: string): boolean {
  return isCredentialName(name, 'header');
}

function mirror(raw: MirrorVars, where: Path, issues: Issues): MirrorConfig {
  for (const [name, values] of Object.entries(raw.headers)) if (isSensitiveHeader(name)) values.forEach((x) => addSecret(x));
  return {
    url: raw.url,
    capabilities: raw.capabilities,
    ...tlsFiles(raw, where, issues),
    overridePath: raw.override_path,
    headers: raw.headers,
  };
}

/** A registry's settings as the schema read them, with what depends on several keys: its server, its credentials, its files. */
function registry(host: string, raw: RegistryVars, where: Path, issues: Issues): RegistryConfig {
  const insecureHttp = raw.insecure_http;
  let server = defaultServer(host, insecureHttp);
  if (raw.server !== undefined) {
    if (host === '_default') issues.add([...where, 'server'], '_default applies to every registry and cannot name a server');
    else {
      if (insecureHttp && raw.server.startsWith('https://')) issues.add([...where, 'server'], `${show(raw.server)} is https:// but insecure_http = true asks for plain http`);
      server = raw.server;
    }
  }
  const mirrors: MirrorConfig[] = [];
  const seen = new Set<string>();
  raw.mirrors.forEach((m, i) => {
    const parsed = mirror(m, [...where, 'mirrors', i], issues);
    if (seen.has(parsed.url)) issues.add([...where, 'mirrors', i], `${show(parsed.url)} is listed twice`);
    seen.add(parsed.url);
    mirrors.push(parsed);
  });
  const tls = tlsFiles(raw, where, issues);
  let auth: RegistryAuth | null = null;
  const hasUser = raw.username !== undefined || raw.password !== undefined;
  if (hasUser && raw.auth !== undefined) issues.add(where, 'set either username/password or auth, not both');
  else if (hasUser) {
    // Never echo these values: they are credentials.
    const password = credential(raw.password, [...where, 'password'], issues);
    if (raw.username === undefined || raw.username === '' || /[:\u0000-\u001f\u007f]/.test(raw.username)) {
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
    const parsed = parseWith(registriesSchema, vars.registries, ['registries']);
    issues.list.push(...parsed.issues);
    for (const host of sortedKeys(parsed.value ?? {})) registries[host] = registry(host, parsed.value![host], ['registries', host], issues);
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

/** checkRuntimeConfig for a module's settings: each problem goes to `report` with its key path, like every other setting's. */
export function runtimeConfig(vars: Record<string, unknown>, report: (issue: Issue) => void): RuntimeConfig | undefined {
  const { value, issues } = checkRuntimeConfig(vars);
  issues.forEach(report);
  return value;
}

/** checkRuntimeConfig for callers without a file to point at: every problem in one error, each led by its key path. */
export function validateRuntimeConfig(vars: Record<string, unknown>): RuntimeConfig {
  const { value, issues } = checkRuntimeConfig(vars);
  if (!value) throw new InputErrors(issues.map((i) => new InputError(`${formatPath(i.path)}: ${i.message}`)));
  return value;
}


/**
 * A credential the schema accepted, written in place or referenced: its value; undefined when a
 * reference failed (the problem is reported, naming the reference, never a value); null when empty.
 */
function credential(v: string | SecretRef | undefined, where: Path, issues: Issues): string | null | undefined {
  if (v === undefined || v === '') return null;
  if (typeof v === 'string') return v;
  try {
    return resolveSecretRef(v);
  } catch (e) {
    issues.add(where, (e as Error).message);
    return undefined;
  }
}
