/**
 * The containerd runtime configuration a playbook asks for, validated and typed.
 *
 * Playbook vars arrive as untyped TOML values; validateRuntimeConfig() turns them into a
 * RuntimeConfig or reports every problem at once, each naming the variable it concerns.
 * Checks that depend on the target containerd release (what its config.toml and hosts.toml
 * parsers accept) happen here too, so a playbook is rejected before any host is touched.
 */
import path from 'node:path';
import { InputError, InputErrors } from '../util/errors.js';
import { addSecret } from '../util/redact.js';
import { isPlainObject } from '../util/schema.js';
import { didYouMean } from '../util/suggest.js';
import { compareVersions, formatVersion, parseVersion, VersionParseError, type Version } from './version.js';

export type Capability = 'pull' | 'resolve' | 'push';
export const CAPABILITIES: readonly Capability[] = ['pull', 'resolve', 'push'];
export const DEFAULT_MIRROR_CAPABILITIES: readonly Capability[] = ['pull', 'resolve'];

/** A credential; printing, logging or JSON-serialising it yields a placeholder, never the value. */
export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
    addSecret(value);
  }
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return '***';
  }
  toJSON(): string {
    return '***';
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return 'Secret(***)';
  }
}

export interface TlsFiles {
  /** CA bundle, a path on the controller; hoist pushes it (see registryFiles). */
  ca: string | null;
  /** Client certificate and key for mutual TLS, controller paths; both or neither. */
  clientCert: string | null;
  clientKey: string | null;
  skipVerify: boolean;
}

export interface MirrorConfig extends TlsFiles {
  /** http:// or https:// URL, kept exactly as written. */
  url: string;
  /** Canonical order (pull, resolve, push), no duplicates. */
  capabilities: Capability[];
  overridePath: boolean;
  /** Header name → values; a single value renders as a string. */
  headers: Record<string, string[]>;
}

export type RegistryAuth =
  | { kind: 'basic'; username: string; password: Secret }
  /** A docker-config style `auth`: base64 of "user:password". */
  | { kind: 'auth'; auth: Secret };

export interface RegistryConfig extends TlsFiles {
  /** The registry host as it appears in image references: `docker.io`, `registry.example:5000`, or `_default`. */
  host: string;
  /**
   * The upstream endpoint tried after the mirrors. Defaults to what containerd itself would use
   * (https://registry-1.docker.io for docker.io, otherwise https:// or, with insecure_http,
   * http:// plus the host). Null only for `_default`, which stands for every registry.
   */
  server: string | null;
  mirrors: MirrorConfig[];
  insecureHttp: boolean;
  auth: RegistryAuth | null;
}

export interface RuntimeConfig {
  /** Canonical X.Y.Z[-pre] form. */
  containerdVersion: string;
  version: Version;
  systemdCgroup: boolean;
  sandboxImage: string;
  rootDir: string;
  stateDir: string;
  oomScore: number;
  snapshotter: string;
  cniBinDir: string;
  cniConfDir: string;
  /** Drop-in directory imported as `<dir>/*.toml`; null disables imports. */
  importsDir: string | null;
  /** Registry hosts directory (hosts.toml per registry); pushed cert files live below it too. */
  configPath: string;
  registries: Record<string, RegistryConfig>;
}

/** The parts of a RuntimeConfig that decide how registry files are written; a RuntimeConfig satisfies it. */
export interface RegistryTarget {
  version: Version;
  configPath: string;
}

export const RUNTIME_DEFAULTS = {
  systemd_cgroup: true,
  root_dir: '/var/lib/containerd',
  state_dir: '/run/containerd',
  oom_score: 0,
  snapshotter: 'overlayfs',
  cni_bin_dir: '/opt/cni/bin',
  cni_conf_dir: '/etc/cni/net.d',
  imports_dir: '/etc/containerd/conf.d',
  config_path: '/etc/containerd/certs.d',
} as const;

export const OLDEST_SUPPORTED = '1.4.0';

// ---------------------------------------------------------------------------------------------
// Version-dependent facts, read from containerd's source at the release tags.

function atLeast(v: Version, min: string): boolean {
  return compareVersions(v, min) >= 0;
}

/**
 * The pause image each line's CRI plugin defaults to. Lines that shipped with k8s.gcr.io
 * (1.4, early 1.5/1.6) get the same tag from registry.k8s.io, because k8s.gcr.io is frozen.
 */
export function defaultSandboxImage(v: Version): string {
  const line = `${v.major}.${v.minor}`;
  const tags: Record<string, string> = {
    '1.4': '3.2',
    '1.5': '3.5',
    '1.6': '3.6',
    '1.7': '3.8',
    '2.0': '3.10',
    '2.1': '3.10',
    '2.2': '3.10.1',
  };
  return `registry.k8s.io/pause:${tags[line] ?? '3.10.2'}`;
}

/** CRI `registry.config_path` (hosts.toml directories) arrived in 1.5; 1.4 only knows registry.mirrors/configs. */
export function supportsConfigPath(v: Version): boolean {
  return atLeast(v, '1.5.0');
}

/** `override_path` in hosts.toml is parsed from 1.6 on; 1.5 ignores it silently. */
export function supportsOverridePath(v: Version): boolean {
  return atLeast(v, '1.6.0');
}

/** The `_default` hosts directory is consulted from 1.6.17 and in every 1.7+. */
export function supportsDefaultHostsDir(v: Version): boolean {
  return atLeast(v, '1.6.17');
}

/**
 * Before 1.7.32 (and in no 2.x) hosts.toml parsing fails with "invalid `host` tree" when the file
 * has no `[host."…"]` table, and containerd then silently ignores the file.
 */
export function hostsTomlNeedsHostTable(v: Version): boolean {
  return compareVersions(v, '1.7.32') < 0;
}

/** 2.1 replaced the CNI `bin_dir` string with the `bin_dirs` array (setting both is an error). */
export function usesCniBinDirs(v: Version): boolean {
  return atLeast(v, '2.1.0');
}

// ---------------------------------------------------------------------------------------------
// Where pushed files land on the host.

/**
 * The directory name containerd looks up for a registry host. For `host:port` every release since
 * 1.5 tries `host_port_` first and `host:port` second, so `host_port_` is found everywhere and
 * keeps colons out of paths.
 */
export function hostsDirName(host: string): string {
  const idx = host.lastIndexOf(':');
  return idx > 0 ? `${host.slice(0, idx)}_${host.slice(idx + 1)}_` : host;
}

/** Host-side directory of one registry: `<config_path>/<hostsDirName>`. */
export function registryDir(configPath: string, registryHost: string): string {
  return path.posix.join(configPath, hostsDirName(registryHost));
}

/** Where a controller file for a registry is pushed: `<config_path>/<hostsDirName>/<basename>`. */
export function registryFilePath(configPath: string, registryHost: string, controllerPath: string): string {
  return path.posix.join(registryDir(configPath, registryHost), path.basename(controllerPath));
}

export interface RegistryFile {
  registry: string;
  /** Path on the controller. */
  source: string;
  /** Path on the host. */
  dest: string;
  /** Private keys are 0600, certificates 0644. */
  mode: 0o600 | 0o644;
}

/** Every CA/client file hoist must push, deduplicated, sorted by destination. */
export function registryFiles(cfg: Pick<RuntimeConfig, 'configPath' | 'registries'>): RegistryFile[] {
  const byDest = new Map<string, RegistryFile>();
  for (const host of sortedKeys(cfg.registries)) {
    const reg = cfg.registries[host];
    for (const t of [reg, ...reg.mirrors] as TlsFiles[]) {
      for (const [file, mode] of [
        [t.ca, 0o644],
        [t.clientCert, 0o644],
        [t.clientKey, 0o600],
      ] as const) {
        if (!file) continue;
        const dest = registryFilePath(cfg.configPath, host, file);
        const prev = byDest.get(dest);
        // A file used both as a key and as something else stays private.
        if (!prev || (mode === 0o600 && prev.mode !== 0o600)) byDest.set(dest, { registry: host, source: file, dest, mode });
      }
    }
  }
  return [...byDest.values()].sort((a, b) => cmp(a.dest, b.dest));
}

/** Authority (host[:port]) of an http(s) URL exactly as written, which is what containerd keys per-host settings by. */
export function urlAuthority(url: string): string {
  const m = /^[a-z]+:\/\/([^/?#]*)/i.exec(url);
  return m ? m[1] : '';
}

export function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function sortedKeys(o: Record<string, unknown>): string[] {
  return Object.keys(o).sort(cmp);
}

// ---------------------------------------------------------------------------------------------
// Legacy (config.toml) per-endpoint settings, shared by validation and rendering.

export interface EndpointTls {
  caFile: string | null;
  certFile: string | null;
  keyFile: string | null;
  insecureSkipVerify: boolean;
}

export interface EndpointConfig {
  /** Endpoint authority (host[:port]) the CRI plugin keys `registry.configs` by. */
  endpoint: string;
  tls: EndpointTls | null;
  auth: RegistryAuth | null;
}

/**
 * CRI's `registry.configs."<host>"` keys settings by the authority of the URL being requested,
 * not by the registry name, so settings of different registries can land on the same key.
 * With `withTls` false (config_path in use) only credentials go there; TLS lives in hosts.toml.
 */
export function endpointConfigs(cfg: Pick<RuntimeConfig, 'configPath' | 'registries'>, withTls: boolean): { configs: EndpointConfig[]; conflicts: string[] } {
  const out = new Map<string, EndpointConfig>();
  const owner = new Map<string, string>();
  const conflicts: string[] = [];
  const tlsOf = (host: string, t: TlsFiles): EndpointTls | null => {
    if (!t.ca && !t.clientCert && !t.skipVerify) return null;
    const p = (f: string | null) => (f ? registryFilePath(cfg.configPath, host, f) : null);
    return { caFile: p(t.ca), certFile: p(t.clientCert), keyFile: p(t.clientKey), insecureSkipVerify: t.skipVerify };
  };
  const add = (where: string, endpoint: string, tls: EndpointTls | null, auth: RegistryAuth | null) => {
    if (!withTls) tls = null;
    if (!tls && !auth) return;
    const prev = out.get(endpoint);
    if (!prev) {
      out.set(endpoint, { endpoint, tls, auth });
      owner.set(endpoint, where);
      return;
    }
    if (tls) {
      if (prev.tls && JSON.stringify(prev.tls) !== JSON.stringify(tls)) {
        conflicts.push(`${where}: TLS settings for ${endpoint} differ from those of ${owner.get(endpoint)}; containerd keeps one set per endpoint host`);
      } else prev.tls = tls;
    }
    if (auth) {
      if (prev.auth && !sameAuth(prev.auth, auth)) {
        conflicts.push(`${where}: credentials for ${endpoint} differ from those of ${owner.get(endpoint)}; containerd keeps one set per endpoint host`);
      } else prev.auth = auth;
    }
  };
  for (const host of sortedKeys(cfg.registries)) {
    const reg = cfg.registries[host];
    reg.mirrors.forEach((m, i) => add(`registries.${host}.mirrors[${i}]`, urlAuthority(m.url), tlsOf(host, m), null));
    if (reg.server) add(`registries.${host}`, urlAuthority(reg.server), tlsOf(host, reg), reg.auth);
  }
  return { configs: [...out.values()].sort((a, b) => cmp(a.endpoint, b.endpoint)), conflicts };
}

function sameAuth(a: RegistryAuth, b: RegistryAuth): boolean {
  if (a.kind === 'basic' && b.kind === 'basic') return a.username === b.username && a.password.reveal() === b.password.reveal();
  if (a.kind === 'auth' && b.kind === 'auth') return a.auth.reveal() === b.auth.reveal();
  return false;
}

// ---------------------------------------------------------------------------------------------
// Validation.

const TOP_KEYS = [
  'containerd_version',
  'systemd_cgroup',
  'sandbox_image',
  'root_dir',
  'state_dir',
  'oom_score',
  'snapshotter',
  'cni_bin_dir',
  'cni_conf_dir',
  'imports_dir',
  'config_path',
  'registries',
] as const;

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
  readonly list: string[] = [];
  add(where: string, message: string): void {
    this.list.push(`${where}: ${message}`);
  }
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return String(v);
  if (Array.isArray(v)) return 'an array';
  if (isPlainObject(v)) return 'a table';
  return JSON.stringify(v) ?? String(v);
}

function unknownKeys(obj: Record<string, unknown>, allowed: readonly string[], where: string, issues: Issues): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) issues.add(`${where}.${k}`, `unknown setting${didYouMean(k, allowed)} (known: ${allowed.join(', ')})`);
  }
}

function str(v: unknown, where: string, issues: Issues): string | undefined {
  if (typeof v !== 'string') {
    issues.add(where, `must be a string, got ${show(v)}`);
    return undefined;
  }
  return v;
}

function bool(v: unknown, dflt: boolean, where: string, issues: Issues): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') {
    issues.add(where, `must be true or false, got ${show(v)}`);
    return dflt;
  }
  return v;
}

function absPath(v: unknown, dflt: string, where: string, issues: Issues): string {
  if (v === undefined) return dflt;
  const s = str(v, where, issues);
  if (s === undefined) return dflt;
  if (!s.startsWith('/')) issues.add(where, `${show(s)} must be an absolute path`);
  else if (CONTROL_RE.test(s)) issues.add(where, 'must not contain control characters');
  else if (s.split('/').some((seg) => seg === '..' || seg === '.')) issues.add(where, `${show(s)} must not contain "." or ".." segments`);
  else if (s.length > 1 && s.endsWith('/')) return s.replace(/\/+$/, '');
  return s.replace(/\/{2,}/g, '/');
}

/** A controller-side file for a registry; its basename becomes the file name on the host. */
function controllerFile(v: unknown, where: string, issues: Issues): string | null {
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

function httpUrl(v: unknown, where: string, issues: Issues): string | null {
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

function tlsFiles(raw: Record<string, unknown>, where: string, issues: Issues): TlsFiles {
  const ca = controllerFile(raw.ca, `${where}.ca`, issues);
  const clientCert = controllerFile(raw.client_cert, `${where}.client_cert`, issues);
  const clientKey = controllerFile(raw.client_key, `${where}.client_key`, issues);
  if ((raw.client_cert === undefined) !== (raw.client_key === undefined)) {
    issues.add(where, 'client_cert and client_key must be set together');
  }
  return { ca, clientCert, clientKey, skipVerify: bool(raw.skip_verify, false, `${where}.skip_verify`, issues) };
}

function capabilities(v: unknown, where: string, issues: Issues): Capability[] {
  if (v === undefined) return [...DEFAULT_MIRROR_CAPABILITIES];
  if (!Array.isArray(v) || v.length === 0) {
    issues.add(where, `must be a non-empty array of ${CAPABILITIES.map((c) => `"${c}"`).join(', ')}`);
    return [...DEFAULT_MIRROR_CAPABILITIES];
  }
  const set = new Set<Capability>();
  v.forEach((c, i) => {
    if (typeof c === 'string' && (CAPABILITIES as readonly string[]).includes(c)) set.add(c as Capability);
    // containerd refuses the whole hosts.toml on an unknown capability.
    else issues.add(`${where}[${i}]`, `${show(c)} is not a capability (pull, resolve, push)`);
  });
  return CAPABILITIES.filter((c) => set.has(c));
}

function headers(v: unknown, where: string, issues: Issues): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  if (v === undefined) return out;
  if (!isPlainObject(v)) {
    issues.add(where, `must be a table of header name = value, got ${show(v)}`);
    return out;
  }
  for (const [name, value] of Object.entries(v)) {
    const w = `${where}.${name}`;
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

function mirror(raw: unknown, where: string, issues: Issues): MirrorConfig | null {
  // The string shorthand reports against the list entry itself, the table form against `.url`.
  const shorthand = typeof raw === 'string';
  if (shorthand) raw = { url: raw };
  else if (!isPlainObject(raw)) {
    issues.add(where, `must be a URL string or a table with url = "…", got ${show(raw)}`);
    return null;
  }
  const obj = raw as Record<string, unknown>;
  if (obj.url === undefined) {
    issues.add(`${where}.url`, 'is required');
    return null;
  }
  unknownKeys(obj, MIRROR_KEYS, where, issues);
  const url = httpUrl(obj.url, shorthand ? where : `${where}.url`, issues);
  const tls = tlsFiles(obj, where, issues);
  return {
    url: url ?? '',
    capabilities: capabilities(obj.capabilities, `${where}.capabilities`, issues),
    ...tls,
    overridePath: bool(obj.override_path, false, `${where}.override_path`, issues),
    headers: headers(obj.headers, `${where}.headers`, issues),
  };
}

function registry(host: string, raw: unknown, where: string, issues: Issues): RegistryConfig | null {
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
  const insecureHttp = bool(raw.insecure_http, false, `${where}.insecure_http`, issues);
  let server = defaultServer(host, insecureHttp);
  if (raw.server !== undefined) {
    if (host === '_default') issues.add(`${where}.server`, '_default applies to every registry and cannot name a server');
    else {
      const s = httpUrl(raw.server, `${where}.server`, issues);
      if (s) {
        if (insecureHttp && s.startsWith('https://')) issues.add(`${where}.server`, `${show(s)} is https:// but insecure_http = true asks for plain http`);
        server = s;
      }
    }
  }
  const mirrors: MirrorConfig[] = [];
  if (raw.mirrors !== undefined) {
    if (!Array.isArray(raw.mirrors)) issues.add(`${where}.mirrors`, `must be an array, got ${show(raw.mirrors)}`);
    else {
      const seen = new Set<string>();
      raw.mirrors.forEach((m, i) => {
        const parsed = mirror(m, `${where}.mirrors[${i}]`, issues);
        if (!parsed) return;
        if (parsed.url && seen.has(parsed.url)) issues.add(`${where}.mirrors[${i}]`, `${show(parsed.url)} is listed twice`);
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
    if (typeof raw.username !== 'string' || raw.username === '' || /[:\u0000-\u001f\u007f]/.test(raw.username)) {
      issues.add(`${where}.username`, 'must be a non-empty string without ":" or control characters');
    } else if (typeof raw.password !== 'string' || raw.password === '') {
      issues.add(`${where}.password`, 'must be a non-empty string when username is set');
    } else {
      auth = { kind: 'basic', username: raw.username, password: new Secret(raw.password) };
    }
  } else if (raw.auth !== undefined) {
    const a = raw.auth;
    if (typeof a !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(a) || !Buffer.from(a, 'base64').toString('utf8').includes(':')) {
      issues.add(`${where}.auth`, 'must be base64 of "username:password" (as in a docker config.json)');
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
    ['', tls.ca],
    ['', tls.clientCert],
    ['', tls.clientKey],
    ...mirrors.flatMap((m, i) => [
      [`.mirrors[${i}]`, m.ca],
      [`.mirrors[${i}]`, m.clientCert],
      [`.mirrors[${i}]`, m.clientKey],
    ]),
  ] as [string, string | null][]) {
    if (!f) continue;
    const base = path.basename(f);
    const prev = byBase.get(base);
    if (prev !== undefined && prev !== f) issues.add(`${where}${w}`, `${show(f)} and ${show(prev)} would both be pushed as ${base}; rename one`);
    byBase.set(base, f);
  }
  return { host, server, mirrors, ...tls, insecureHttp, auth };
}

function versionChecks(v: Version, configPath: string, regs: Record<string, RegistryConfig>, issues: Issues): void {
  const ver = formatVersion(v);
  for (const host of sortedKeys(regs)) {
    const reg = regs[host];
    const where = `registries.${host}`;
    if (host === '_default') {
      if (!supportsDefaultHostsDir(v)) issues.add(where, `_default needs containerd 1.6.17 or later (target ${ver})`);
      else if (hostsTomlNeedsHostTable(v) && reg.mirrors.length === 0) {
        issues.add(`${where}.mirrors`, `containerd ${ver} ignores a _default hosts.toml without mirrors; add at least one`);
      }
    }
    reg.mirrors.forEach((m, i) => {
      const w = `${where}.mirrors[${i}]`;
      if (m.overridePath && !supportsOverridePath(v)) issues.add(`${w}.override_path`, `needs containerd 1.6 or later (target ${ver})`);
      if (!supportsConfigPath(v)) {
        // 1.4 only has registry.mirrors endpoints: no per-mirror capabilities, headers or path handling.
        if (!m.capabilities.includes('pull') || !m.capabilities.includes('resolve')) {
          issues.add(`${w}.capabilities`, `containerd ${ver} uses every mirror for pull and resolve; it cannot restrict capabilities`);
        }
        if (Object.keys(m.headers).length) issues.add(`${w}.headers`, `per-mirror headers need containerd 1.5 or later (target ${ver})`);
        if (urlPath(m.url) !== '') issues.add(w, `a URL path needs containerd 1.5 or later (target ${ver}); 1.4 treats the path as the API root`);
      }
    });
  }
  if (!supportsConfigPath(v)) {
    for (const c of endpointConfigs({ configPath, registries: regs }, true).conflicts) issues.list.push(c);
  } else if (v.major === 1) {
    for (const c of endpointConfigs({ configPath, registries: regs }, false).conflicts) issues.list.push(c);
  }
}

function urlPath(url: string): string {
  const rest = url.replace(/^[a-z]+:\/\//i, '');
  const i = rest.indexOf('/');
  return i < 0 ? '' : rest.slice(i).replace(/\/+$/, '');
}

/**
 * Turns raw playbook vars into a RuntimeConfig. Vars this module doesn't own are ignored; inside
 * `registries` every key must be known. Throws InputErrors listing every problem, each starting
 * with the variable's path, e.g. `registries.docker.io.mirrors[0]: "mirror.local" has no scheme`.
 */
export function validateRuntimeConfig(vars: unknown): RuntimeConfig {
  const issues = new Issues();
  if (!isPlainObject(vars)) throw new InputErrors([new InputError(`vars: must be a table, got ${show(vars)}`)]);

  let version: Version | null = null;
  if (vars.containerd_version === undefined) issues.add('containerd_version', 'is required (e.g. "1.7.34" or "2.1.9")');
  else if (typeof vars.containerd_version !== 'string') issues.add('containerd_version', `must be a string, got ${show(vars.containerd_version)}`);
  else {
    try {
      const v = parseVersion(vars.containerd_version);
      if (compareVersions(v, OLDEST_SUPPORTED) < 0 || v.major > 2) {
        issues.add('containerd_version', `${show(vars.containerd_version)} is not supported (1.4 to 2.x)`);
      } else version = v;
    } catch (err) {
      issues.add('containerd_version', err instanceof VersionParseError ? `${show(vars.containerd_version)} is not a version (X.Y.Z)` : String(err));
    }
  }

  const systemdCgroup = bool(vars.systemd_cgroup, RUNTIME_DEFAULTS.systemd_cgroup, 'systemd_cgroup', issues);

  let sandboxImage = version ? defaultSandboxImage(version) : '';
  if (vars.sandbox_image !== undefined) {
    const s = str(vars.sandbox_image, 'sandbox_image', issues);
    if (s !== undefined) {
      if (s === '' || /\s/.test(s) || CONTROL_RE.test(s)) issues.add('sandbox_image', `${show(s)} is not an image reference`);
      else sandboxImage = s;
    }
  }

  const rootDir = absPath(vars.root_dir, RUNTIME_DEFAULTS.root_dir, 'root_dir', issues);
  const stateDir = absPath(vars.state_dir, RUNTIME_DEFAULTS.state_dir, 'state_dir', issues);

  let oomScore: number = RUNTIME_DEFAULTS.oom_score;
  if (vars.oom_score !== undefined) {
    const o = vars.oom_score;
    const n = typeof o === 'bigint' ? Number(o) : o;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < -1000 || n > 1000) issues.add('oom_score', `must be an integer from -1000 to 1000, got ${show(o)}`);
    else oomScore = n;
  }

  let snapshotter: string = RUNTIME_DEFAULTS.snapshotter;
  if (vars.snapshotter !== undefined) {
    const s = str(vars.snapshotter, 'snapshotter', issues);
    if (s !== undefined) {
      if (!SNAPSHOTTER_RE.test(s)) issues.add('snapshotter', `${show(s)} is not a snapshotter name (e.g. overlayfs, native, btrfs, zfs)`);
      else snapshotter = s;
    }
  }

  const cniBinDir = absPath(vars.cni_bin_dir, RUNTIME_DEFAULTS.cni_bin_dir, 'cni_bin_dir', issues);
  const cniConfDir = absPath(vars.cni_conf_dir, RUNTIME_DEFAULTS.cni_conf_dir, 'cni_conf_dir', issues);

  let importsDir: string | null = RUNTIME_DEFAULTS.imports_dir;
  if (vars.imports_dir === '' || vars.imports_dir === false) importsDir = null;
  else if (vars.imports_dir !== undefined) {
    importsDir = absPath(vars.imports_dir, RUNTIME_DEFAULTS.imports_dir, 'imports_dir', issues);
    // containerd globs import paths; metacharacters in the directory would change what matches.
    if (/[*?[\]\\]/.test(importsDir)) issues.add('imports_dir', `${show(importsDir)} must not contain glob characters (* ? [ ] \\)`);
  }

  const configPath = absPath(vars.config_path, RUNTIME_DEFAULTS.config_path, 'config_path', issues);
  if (configPath.includes(':')) issues.add('config_path', 'must be one directory (containerd splits config_path on ":")');

  const registries: Record<string, RegistryConfig> = {};
  if (vars.registries !== undefined) {
    if (!isPlainObject(vars.registries)) issues.add('registries', `must be a table keyed by registry host, got ${show(vars.registries)}`);
    else {
      for (const host of sortedKeys(vars.registries)) {
        const r = registry(host, vars.registries[host], `registries.${host}`, issues);
        if (r) registries[host] = r;
      }
    }
  }
  if (version) versionChecks(version, configPath, registries, issues);

  if (issues.list.length) throw new InputErrors(issues.list.map((m) => new InputError(m)));
  return {
    containerdVersion: formatVersion(version!),
    version: version!,
    systemdCgroup,
    sandboxImage,
    rootDir,
    stateDir,
    oomScore,
    snapshotter,
    cniBinDir,
    cniConfDir,
    importsDir,
    configPath,
    registries,
  };
}

/** The variable names validateRuntimeConfig reads at the top level. */
export const RUNTIME_VAR_NAMES: readonly string[] = TOP_KEYS;
