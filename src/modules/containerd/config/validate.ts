/**
 * Turns a host's containerd variables into a RuntimeConfig, reporting every problem by key path
 * (`registries.docker.io.mirrors[0].url`) so the engine can name the file, line and layer it
 * came from. What one value answers alone is its schema's (runtime-schema.ts, registry-schema.ts);
 * here are the rules across keys and those of the target release (what its config.toml and
 * hosts.toml parsers accept), so a playbook is rejected before any host is touched.
 */
import path from 'node:path';
import { addSecret } from '../../../util/redact.js';
import { registryCredentialsIn } from './registry-credentials.js';
import { InputError, InputErrors } from '../../../util/errors.js';
import { formatPath, isPlainObject, parseFields, parseWith, type Issue, type Path } from '../../../util/schema.js';
import { formatVersion, parseVersion, type Version } from '../version.js';
import { RUNTIME_DEFAULTS, Secret, type MirrorConfig, type RegistryAuth, type RegistryConfig, type RuntimeConfig, type TlsFiles } from './types.js';
import { defaultSandboxImage, hostsTomlNeedsHostTable, supportsConfigPath, supportsDefaultHostsDir, supportsOverridePath } from './features.js';
import { endpointConfigs, sortedKeys } from './registry-paths.js';
import { resolveSecretRef, type SecretRef } from '../../../util/secret-ref.js';
import type { MirrorVars, RegistryVars } from './registry-schema.js';
import { runtimeVariables } from './runtime-schema.js';
import { HOIST_STATE_DIR } from '../../../host-paths.js';
import { CONTAINERD_ETC } from '../paths.js';
import { hostPathProblem } from '../../../util/path-guard.js';

class Issues {
  readonly list: Issue[] = [];
  add(path: Path, message: string): void {
    this.list.push({ path, message });
  }
}

const show = (v: string) => JSON.stringify(v);

/**
 * No path variable may be or contain these: a config_path of /etc/containerd would put registry
 * directories beside config.toml, an imports_dir there would import config.toml into itself.
 */
export const OWN_DIRS = [
  { dir: HOIST_STATE_DIR, what: "hoist's own state directory" },
  { dir: CONTAINERD_ETC, what: "containerd's configuration directory (config.toml)" },
];

/**
 * A directory hoist writes into and a reset deletes from must be containerd's own: not a system
 * directory, not hoist's state, not /etc/containerd. Undefined when refused (or its schema did).
 */
function ownDir(dir: string | undefined, key: keyof typeof RUNTIME_DEFAULTS, issues: Issues): string | undefined {
  if (dir === undefined) return undefined;
  const problem = hostPathProblem(dir, OWN_DIRS);
  if (!problem) return dir;
  issues.add([key], `${problem}; choose a directory of containerd's own (default ${RUNTIME_DEFAULTS[key]})`);
  return undefined;
}

/**
 * The data directories are emptied by a reset with remove_data: neither may be or contain a
 * directory hoist writes configuration into.
 */
function dataDirChecks(dirs: Record<'root_dir' | 'state_dir', string | undefined>, others: Record<string, string | null | undefined>, issues: Issues): void {
  for (const [key, dir] of Object.entries(dirs)) {
    // A directory validate.ts refused is reported already (one this schema refused arrives as the default).
    if (dir === undefined) continue;
    for (const [otherKey, other] of Object.entries(others)) {
      if (other === null || other === undefined) continue;
      if (other === dir || other.startsWith(`${dir}/`)) {
        issues.add(
          [key],
          `${show(dir)} ${other === dir ? 'is' : 'contains'} ${otherKey} (${other}); a reset with remove_data empties ${key}, and would take ${otherKey} with it`,
        );
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

function mirror(raw: MirrorVars, where: Path, issues: Issues): MirrorConfig {
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
      if (insecureHttp && raw.server.startsWith('https://'))
        issues.add([...where, 'server'], `${show(raw.server)} is https:// but insecure_http = true asks for plain http`);
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
      issues.add(
        [...where, 'password'],
        'must be a non-empty string, or a reference ({ env = "NAME" }, { file = "path" }, { command = "…" }), when username is set',
      );
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
 * Turns a host's variables into a RuntimeConfig: each variable is checked by its schema
 * (runtime-schema.ts, registry-schema.ts), then what depends on several of them or on the target
 * release. Variables this file doesn't own are ignored. Every problem is returned, each with its
 * key path, rules across keys included when one value is bad.
 */
export function checkRuntimeConfig(vars: Record<string, unknown>): { value?: RuntimeConfig; issues: Issue[] } {
  // Before any check: a credential beside a mistake is a secret all the same.
  for (const c of registryCredentialsIn(vars)) addSecret(c);
  const { registries: registriesSchema, ...scalars } = runtimeVariables;
  const parsed = parseFields(scalars, vars);
  const v = parsed.value;
  const issues = new Issues();
  issues.list.push(...parsed.issues);

  const version = v.containerd_version === undefined ? null : parseVersion(v.containerd_version);
  const dirs = {
    root_dir: ownDir(v.root_dir, 'root_dir', issues),
    state_dir: ownDir(v.state_dir, 'state_dir', issues),
    config_path: ownDir(v.config_path, 'config_path', issues),
    imports_dir: v.imports_dir === '' || v.imports_dir === false ? null : ownDir(v.imports_dir, 'imports_dir', issues),
    cni_bin_dir: ownDir(v.cni_bin_dir, 'cni_bin_dir', issues),
    cni_conf_dir: ownDir(v.cni_conf_dir, 'cni_conf_dir', issues),
  };
  const { root_dir, state_dir, ...others } = dirs;
  dataDirChecks({ root_dir, state_dir }, others, issues);

  // Registry by registry, so one with a bad key doesn't keep the rules across keys of the others unreported.
  const registries: Record<string, RegistryConfig> = {};
  const raw = vars.registries;
  const hosts = isPlainObject(raw) ? sortedKeys(raw) : [];
  if (raw !== undefined && !isPlainObject(raw)) issues.list.push(...parseWith(registriesSchema, raw, ['registries']).issues);
  for (const host of hosts) {
    const one = parseWith(registriesSchema, { [host]: (raw as Record<string, unknown>)[host] }, ['registries']);
    issues.list.push(...one.issues);
    if (one.value) registries[host] = registry(host, one.value[host], ['registries', host], issues);
  }
  if (version && dirs.config_path !== undefined) versionChecks(version, dirs.config_path, registries, issues);

  if (issues.list.length || !version) return { issues: issues.list };
  const value: RuntimeConfig = {
    containerdVersion: formatVersion(version),
    version,
    systemdCgroup: v.systemd_cgroup!,
    sandboxImage: v.sandbox_image ?? defaultSandboxImage(version),
    rootDir: root_dir!,
    stateDir: state_dir!,
    oomScore: v.oom_score!,
    restrictOomScoreAdj: v.restrict_oom_score_adj!,
    snapshotter: v.snapshotter!,
    cniBinDir: dirs.cni_bin_dir!,
    cniConfDir: dirs.cni_conf_dir!,
    importsDir: dirs.imports_dir ?? null,
    configPath: dirs.config_path!,
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
