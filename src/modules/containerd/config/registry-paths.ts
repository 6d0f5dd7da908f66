import path from 'node:path';
import type { RegistryAuth, RuntimeConfig, TlsFiles } from './types.js';
import { formatPath, type Issue, type Path } from '../../../util/schema.js';

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
export function endpointConfigs(cfg: Pick<RuntimeConfig, 'configPath' | 'registries'>, withTls: boolean): { configs: EndpointConfig[]; conflicts: Issue[] } {
  const out = new Map<string, EndpointConfig>();
  const owner = new Map<string, Path>();
  const conflicts: Issue[] = [];
  const tlsOf = (host: string, t: TlsFiles): EndpointTls | null => {
    if (!t.ca && !t.clientCert && !t.skipVerify) return null;
    const p = (f: string | null) => (f ? registryFilePath(cfg.configPath, host, f) : null);
    return { caFile: p(t.ca), certFile: p(t.clientCert), keyFile: p(t.clientKey), insecureSkipVerify: t.skipVerify };
  };
  const add = (where: Path, endpoint: string, tls: EndpointTls | null, auth: RegistryAuth | null) => {
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
        conflicts.push({
          path: where,
          message: `TLS settings for ${endpoint} differ from those of ${formatPath(owner.get(endpoint)!)}; containerd keeps one set per endpoint host`,
        });
      } else prev.tls = tls;
    }
    if (auth) {
      if (prev.auth && !sameAuth(prev.auth, auth)) {
        conflicts.push({
          path: where,
          message: `credentials for ${endpoint} differ from those of ${formatPath(owner.get(endpoint)!)}; containerd keeps one set per endpoint host`,
        });
      } else prev.auth = auth;
    }
  };
  for (const host of sortedKeys(cfg.registries)) {
    const reg = cfg.registries[host];
    reg.mirrors.forEach((m, i) => add(['registries', host, 'mirrors', i], urlAuthority(m.url), tlsOf(host, m), null));
    if (reg.server) add(['registries', host], urlAuthority(reg.server), tlsOf(host, reg), reg.auth);
  }
  return { configs: [...out.values()].sort((a, b) => cmp(a.endpoint, b.endpoint)), conflicts };
}

function sameAuth(a: RegistryAuth, b: RegistryAuth): boolean {
  if (a.kind === 'basic' && b.kind === 'basic') return a.username === b.username && a.password.reveal() === b.password.reveal();
  if (a.kind === 'auth' && b.kind === 'auth') return a.auth.reveal() === b.auth.reveal();
  return false;
}
