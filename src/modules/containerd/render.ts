/**
 * Renders the files hoist owns on a host: /etc/containerd/config.toml, per-registry hosts.toml,
 * containerd.service and /etc/crictl.yaml. Output is a pure function of the input: maps are
 * sorted, lists keep their order, nothing depends on time or environment, so an unchanged
 * playbook renders byte-identical files and the planner sees no change.
 *
 * Every user value reaches a template through the `toml` / `yaml` filters, which emit a quoted,
 * escaped literal, so no value can add keys or tables to the file.
 */
import path from 'node:path';
import nunjucks from 'nunjucks';
import { TEMPLATES_DIR } from '../../paths.js';
import { addSecret } from '../../util/redact.js';
import { formatPath } from '../../util/schema.js';
import { cmp, endpointConfigs, hostsDirName, registryDir, registryFilePath, registryFiles, sortedKeys } from './config/registry-paths.js';
import { hostsTomlNeedsHostTable, supportsConfigPath, usesCniBinDirs } from './config/features.js';
import { isSensitiveHeader } from './config/registry-credentials.js';
import { type RegistryAuth, type RegistryConfig, type RegistryTarget, type RuntimeConfig, type TlsFiles } from './config/types.js';
import { compareVersions, configVersionFor, formatVersion, parseVersion, type Version } from './version.js';
import { InternalError } from '../../util/errors.js';

export { hostsDirName, registryDir, registryFilePath } from './config/registry-paths.js';

export interface Rendered {
  text: string;
  /** The text holds credentials: write it mode 0600 and never print it. */
  secret: boolean;
}

// ---------------------------------------------------------------------------------------------
// Literal encoders.

/** A TOML basic string. Escapes everything TOML forbids raw plus all other control characters. */
export function tomlString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\b') out += '\\b';
    else if (ch === '\f') out += '\\f';
    else if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) out += `\\u${c.toString(16).padStart(4, '0')}`;
    else if (c >= 0xd800 && c <= 0xdfff) throw new InternalError('string holds a lone UTF-16 surrogate, which TOML cannot represent');
    else out += ch;
  }
  return `${out}"`;
}

export type TomlLiteral = string | number | boolean | TomlLiteral[];

/** A TOML value literal: string, integer, boolean, or (nested) array of those. */
export function tomlValue(v: unknown): string {
  if (typeof v === 'string') return tomlString(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new InternalError(`${v} is not an integer TOML can hold exactly`);
    return String(v);
  }
  if (Array.isArray(v)) return `[${v.map(tomlValue).join(', ')}]`;
  throw new InternalError(`cannot write ${v === null ? 'null' : typeof v} as a TOML value`);
}

/** A TOML key: bare when it is only letters, digits, "_" and "-", otherwise quoted. */
export function tomlKey(k: string): string {
  return /^[A-Za-z0-9_-]+$/.test(k) ? k : tomlString(k);
}

/** A YAML double-quoted scalar. JSON escapes are a subset of YAML's; C1 controls and DEL are escaped too. */
export function yamlString(s: string): string {
  return JSON.stringify(s).replace(/[\u007f-\u009f\u2028\u2029\ufeff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function yamlValue(v: unknown): string {
  if (typeof v === 'string') return yamlString(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number' && Number.isSafeInteger(v)) return String(v);
  throw new InternalError(`cannot write ${v === null ? 'null' : typeof v} as a YAML scalar`);
}

let env: nunjucks.Environment | undefined;
function templates(): nunjucks.Environment {
  if (!env) {
    env = new nunjucks.Environment(new nunjucks.FileSystemLoader(path.join(TEMPLATES_DIR, 'containerd')), {
      autoescape: false,
      throwOnUndefined: true,
      trimBlocks: true,
      lstripBlocks: true,
    });
    env.addFilter('toml', tomlValue);
    env.addFilter('tomlKey', tomlKey);
    env.addFilter('yaml', yamlValue);
  }
  return env;
}

function render(template: string, context: object): string {
  const text = templates().render(template, context);
  // Optional sections leave runs of blank lines behind; values can't contain raw newlines (the
  // filters escape them), so squeezing blank lines only touches layout. One trailing newline.
  return `${text
    .replace(/^\s+/, '')
    .replace(/\s+$/, '')
    .replace(/\n{3,}/g, '\n\n')}\n`;
}

// ---------------------------------------------------------------------------------------------
// config.toml

type KV = [string, TomlLiteral];

function authFields(a: RegistryAuth): KV[] {
  const secretValue = a.kind === 'basic' ? a.password.reveal() : a.auth.reveal();
  addSecret(secretValue);
  return a.kind === 'basic'
    ? [
        ['username', a.username],
        ['password', secretValue],
      ]
    : [['auth', secretValue]];
}

interface LegacyMirror {
  host: string;
  endpoints: string[];
}

/** config.toml for the target release: version 2 for 1.x, 3 for 2.0–2.2, 4 for 2.3 and later. */
export function renderConfig(cfg: RuntimeConfig): Rendered {
  const v = cfg.version;
  const configVersion = configVersionFor(v);
  const common = {
    containerd_version: cfg.containerdVersion,
    config_version: configVersion,
    root: cfg.rootDir,
    state: cfg.stateDir,
    oom_score: cfg.oomScore,
    restrict_oom_score_adj: cfg.restrictOomScoreAdj,
    imports: cfg.importsDir === null ? null : [path.posix.join(cfg.importsDir, '*.toml')],
    sandbox_image: cfg.sandboxImage,
    snapshotter: cfg.snapshotter,
    cni_bin_dir: cfg.cniBinDir,
    cni_conf_dir: cfg.cniConfDir,
    systemd_cgroup: cfg.systemdCgroup,
    config_path: supportsConfigPath(v) ? cfg.configPath : null,
  };

  if (configVersion === 2) {
    // 1.4 knows only registry.mirrors + registry.configs (TLS and auth). From 1.5 on, TLS and
    // mirrors live in hosts.toml under config_path (mixing mirrors with config_path is a startup
    // error), while credentials stay in registry.configs.<host>.auth, which 1.5–1.7 still read
    // next to config_path.
    const legacy = !supportsConfigPath(v);
    const { configs, conflicts } = endpointConfigs(cfg, legacy);
    if (conflicts.length) throw new InternalError(`cannot render config.toml: ${conflicts.map((c) => `${formatPath(c.path)}: ${c.message}`).join('; ')}`);
    const legacyMirrors: LegacyMirror[] = legacy
      ? sortedKeys(cfg.registries)
          .map((host) => cfg.registries[host])
          .filter((r) => r.mirrors.length > 0 || (r.server !== null && r.server !== defaultEndpointForLegacy(r.host)))
          .map((r) => ({ host: r.host, endpoints: [...r.mirrors.map((m) => m.url), ...(r.server ? [r.server] : [])] }))
      : [];
    const registryConfigs = configs.map((c) => ({
      endpoint: c.endpoint,
      tls: c.tls
        ? ([
            ['ca_file', c.tls.caFile],
            ['cert_file', c.tls.certFile],
            ['key_file', c.tls.keyFile],
            ['insecure_skip_verify', c.tls.insecureSkipVerify ? true : null],
          ].filter((kv) => kv[1] !== null) as KV[])
        : null,
      auth: c.auth ? authFields(c.auth) : null,
    }));
    const text = render('config-v2.toml.njk', { ...common, legacy_mirrors: legacyMirrors, registry_configs: registryConfigs });
    return { text, secret: registryConfigs.some((c) => c.auth !== null) };
  }

  const text = render(`config-v${configVersion}.toml.njk`, {
    ...common,
    cni_bin_dirs: usesCniBinDirs(v) ? [cfg.cniBinDir] : null,
  });
  return { text, secret: false };
}

/** What CRI 1.4 falls back to by itself after the listed endpoints. */
function defaultEndpointForLegacy(host: string): string {
  return host === 'docker.io' ? 'https://registry-1.docker.io' : `https://${host}`;
}

// ---------------------------------------------------------------------------------------------
// hosts.toml

interface HostsTable {
  url: string;
  settings: KV[];
  header: KV[];
}

function tlsSettings(target: RegistryTarget, registryHost: string, t: TlsFiles): KV[] {
  const out: KV[] = [];
  const onHost = (f: string) => registryFilePath(target.configPath, registryHost, f);
  if (t.ca) out.push(['ca', onHost(t.ca)]);
  if (t.clientCert && t.clientKey) out.push(['client', [[onHost(t.clientCert), onHost(t.clientKey)]]]);
  if (t.skipVerify) out.push(['skip_verify', true]);
  return out;
}

function headerPairs(h: Record<string, string[]>): KV[] {
  return sortedKeys(h).map((k) => [k, h[k].length === 1 ? h[k][0] : [...h[k]]]);
}

/** `Authorization: Basic …` for the registry's own server; 2.x reads credentials only from here. */
function authHeader(a: RegistryAuth): string {
  const token = a.kind === 'basic' ? Buffer.from(`${a.username}:${a.password.reveal()}`, 'utf8').toString('base64') : a.auth.reveal();
  const value = `Basic ${token}`;
  addSecret(token);
  addSecret(value);
  return value;
}

/** Path of a registry's hosts.toml on the host. */
export function hostsTomlPath(target: RegistryTarget, registryHost: string): string {
  return path.posix.join(registryDir(target.configPath, registryHost), 'hosts.toml');
}

/**
 * `<config_path>/<hostsDirName(host)>/hosts.toml` for one registry (containerd 1.5 or later).
 * Mirrors become `[host."…"]` tables in list order, which containerd tries in file order before
 * `server`. The registry's own TLS settings (and on 2.x its credentials, as an Authorization
 * header) sit at the top level, where they apply to `server` only, so mirrors never see them.
 */
export function renderHostsToml(registryHost: string, reg: RegistryConfig, target: RegistryTarget): Rendered {
  if (!supportsConfigPath(target.version)) {
    throw new InternalError(`containerd ${formatVersion(target.version)} has no hosts.toml support; its mirrors go into config.toml`);
  }
  const rootSettings = tlsSettings(target, registryHost, reg);
  const rootHeader: KV[] = [];
  // 1.x gets credentials through config.toml's registry.configs; 2.x deprecates that.
  if (reg.auth && target.version.major >= 2) rootHeader.push(['Authorization', authHeader(reg.auth)]);

  const hosts: HostsTable[] = reg.mirrors.map((m) => ({
    url: m.url,
    settings: [
      ['capabilities', [...m.capabilities]] as KV,
      ...tlsSettings(target, registryHost, m),
      ...(m.overridePath ? [['override_path', true] as KV] : []),
    ],
    header: headerPairs(m.headers),
  }));
  if (hosts.length === 0 && reg.server !== null && hostsTomlNeedsHostTable(target.version)) {
    // These releases drop a hosts.toml without any [host] table; repeat the server as one.
    hosts.push({ url: reg.server, settings: [['capabilities', ['pull', 'resolve', 'push']], ...rootSettings], header: rootHeader });
  }
  const text = render('hosts.toml.njk', {
    registry: registryHost,
    dir_name: hostsDirName(registryHost),
    server: reg.server,
    root_settings: rootSettings,
    root_header: rootHeader,
    hosts,
  });
  const secret = rootHeader.length > 0 || reg.mirrors.some((m) => Object.keys(m.headers).some(isSensitiveHeader));
  return { text, secret };
}

export interface HostsTomlFile extends Rendered {
  registry: string;
  /** Path on the host. */
  path: string;
}

/** Every hosts.toml the config asks for, sorted by path; none for 1.4. */
export function renderAllHostsToml(cfg: RuntimeConfig): HostsTomlFile[] {
  if (!supportsConfigPath(cfg.version)) return [];
  return sortedKeys(cfg.registries)
    .map((host) => ({ registry: host, path: hostsTomlPath(cfg, host), ...renderHostsToml(host, cfg.registries[host], cfg) }))
    .sort((a, b) => cmp(a.path, b.path));
}

// ---------------------------------------------------------------------------------------------
// containerd.service

/**
 * containerd.service as upstream ships it for the release: 1.4 caps LimitNOFILE at 1048576,
 * 1.5–1.7 use infinity, 2.0 drops it (Go raises the soft limit itself); dbus.service joins
 * After= in 1.6.37 / 1.7.24 / 2.0, and 2.1 drops local-fs.target.
 */
export function renderUnit(version: string | Version): string {
  const v = typeof version === 'string' ? parseVersion(version) : version;
  const ge = (x: string) => compareVersions(v, x) >= 0;
  const dbus = v.major >= 2 || (v.major === 1 && v.minor === 6 && ge('1.6.37')) || (v.major === 1 && v.minor >= 7 && ge('1.7.24'));
  const after = ['network.target', ...(ge('2.1.0') ? [] : ['local-fs.target']), ...(dbus ? ['dbus.service'] : [])];
  const limitNofile = v.major >= 2 ? null : v.major === 1 && v.minor <= 4 ? '1048576' : 'infinity';
  return render('containerd.service.njk', {
    containerd_version: formatVersion(v),
    after: after.join(' '),
    limit_nofile: limitNofile,
  });
}

// ---------------------------------------------------------------------------------------------
// crictl.yaml

export interface CrictlOptions {
  /** unix:///path or tcp://host:port of the CRI socket. */
  endpoint: string;
  /** Seconds; crictl reads an integer. */
  timeout: number;
  debug: boolean;
}

/** /etc/crictl.yaml with only keys crictl knows (any other key is a crictl error). */
export function renderCrictlYaml(opts: CrictlOptions): string {
  if (!/^(unix:\/\/\/[^\s\u0000-\u001f\u007f]+|tcp:\/\/[A-Za-z0-9.[\]:-]+:\d{1,5})$/.test(opts.endpoint)) {
    throw new InternalError(`crictl endpoint ${JSON.stringify(opts.endpoint)} must be unix:///path or tcp://host:port`);
  }
  if (!Number.isSafeInteger(opts.timeout) || opts.timeout < 0) throw new InternalError(`crictl timeout must be a whole number of seconds, got ${opts.timeout}`);
  if (typeof opts.debug !== 'boolean') throw new InternalError('crictl debug must be true or false');
  return render('crictl.yaml.njk', { endpoint: opts.endpoint, timeout: opts.timeout, debug: opts.debug });
}

/** Every registry file hoist writes on a host (hosts.toml and pushed CA/cert/key), by path alone, without rendering. */
export function registryPaths(rt: RuntimeConfig): string[] {
  // Sorted as the rendered files are: the restart stamp hashes them in this order.
  const hostsToml = supportsConfigPath(rt.version)
    ? Object.keys(rt.registries)
        .map((h) => hostsTomlPath(rt, h))
        .sort()
    : [];
  return [...hostsToml, ...registryFiles(rt).map((f) => f.dest)];
}
