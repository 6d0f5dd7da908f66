import { InputError, InputErrors } from '../../util/errors.js';
import { isPlainObject } from '../../util/schema.js';
import { addSecret } from '../../util/redact.js';
import type { Vars } from '../../inventory/inventory.js';
import { validateRuntimeConfig, registryFiles, supportsConfigPath, RUNTIME_VAR_NAMES, type RuntimeConfig } from '../../containerd/runtime-config.js';
import { hostsTomlPath } from '../../containerd/render.js';
import { releaseCatalog, normalizeReleaseBaseUrl, type Artifact } from '../../artifacts/catalog.js';

/** Where hoist keeps its own state on a host. */
export const HOIST_DIR = '/var/lib/hoist';
export const ARTIFACT_DIR = `${HOIST_DIR}/artifacts`;
export const CONTAINERD_STATE = `${HOIST_DIR}/containerd`;
export const INSTALL_RECORD = `${CONTAINERD_STATE}/installed.json`;
export const INSTALL_STATS = `${CONTAINERD_STATE}/files.stat`;
/** Every registry file (hosts.toml, CA, client cert/key) hoist wrote, so removed registries can be cleaned up. */
export const REGISTRY_LIST = `${CONTAINERD_STATE}/registry-files.list`;
export const CONFIG_FILE = '/etc/containerd/config.toml';
export const UNIT_FILE = '/etc/systemd/system/containerd.service';
export const CRICTL_YAML = '/etc/crictl.yaml';

/** Installed binaries the daemon runs with: a change to any of them means a restart. */
export const BIN = {
  containerd: '/usr/local/bin/containerd',
  ctr: '/usr/local/bin/ctr',
  crictl: '/usr/local/bin/crictl',
  runc: '/usr/local/sbin/runc',
};

export interface ContainerdSettings {
  runtime: RuntimeConfig;
  artifacts: Artifact[];
  download: 'controller' | 'host';
  releaseBaseUrl: string;
  /** Release base URL as the hosts see it (download = "host"). */
  hostReleaseBaseUrl: string;
  replaceDistroContainerd: boolean;
  allowDowngrade: boolean;
  pluginErrorAllow: string[];
}

const ARTIFACT_VARS = [
  'release_base_url',
  'host_release_base_url',
  'download',
  'runc_version',
  'cni_version',
  'crictl_version',
  'pinned_sha256',
  'replace_distro_containerd',
  'allow_downgrade',
  'plugin_error_allow',
  'artifact_cache_dir',
] as const;

/** Every variable the containerd tasks read; the playbook documents them. */
export const CONTAINERD_VARS: readonly string[] = [...RUNTIME_VAR_NAMES, ...ARTIFACT_VARS];

const cache = new WeakMap<Vars, ContainerdSettings>();

/** Reads and validates the containerd variables of one host, once per host however many tasks ask. */
export function containerdSettings(vars: Vars): ContainerdSettings {
  const hit = cache.get(vars);
  if (hit) return hit;
  const runtimeVars: Record<string, unknown> = {};
  for (const k of RUNTIME_VAR_NAMES) if (vars[k] !== undefined) runtimeVars[k] = vars[k];
  const runtime = validateRuntimeConfig(runtimeVars);
  registerRegistrySecrets(runtime);
  const opt = (k: string): string | undefined => {
    const v = vars[k];
    if (v === undefined || v === '') return undefined;
    if (typeof v !== 'string') throw new InputError(`${k}: must be a string, got ${JSON.stringify(v)}`);
    return v;
  };
  const flag = (k: string): boolean => {
    const v = vars[k];
    if (v === undefined) return false;
    if (typeof v !== 'boolean') throw new InputError(`${k}: must be true or false, got ${JSON.stringify(v)}`);
    return v;
  };
  const download = opt('download') ?? 'controller';
  if (download !== 'controller' && download !== 'host') throw new InputError(`download: must be "controller" or "host", got "${download}"`);
  const pinned = vars.pinned_sha256;
  if (pinned !== undefined && !isPlainObject(pinned)) throw new InputError('pinned_sha256: must be a table of asset name = "sha256 hex"');
  const crictl = vars.crictl_version;
  if (crictl !== undefined && crictl !== false && typeof crictl !== 'string') throw new InputError('crictl_version: must be a version string or false');
  const base = normalizeReleaseBaseUrl(opt('release_base_url') ?? 'https://github.com');
  const artifacts = releaseCatalog({
    containerdVersion: runtime.containerdVersion,
    releaseBaseUrl: base,
    runcVersion: opt('runc_version'),
    cniVersion: opt('cni_version'),
    crictlVersion: crictl === '' ? false : (crictl as string | false | undefined),
    pinnedSha256: pinned as Record<string, string> | undefined,
  });
  const allow = vars.plugin_error_allow;
  if (allow !== undefined && !(Array.isArray(allow) && allow.every((a) => typeof a === 'string'))) {
    throw new InputError('plugin_error_allow: must be a list of "TYPE ID" pairs as `ctr plugin ls` prints them, like "io.containerd.snapshotter.v1 devmapper"');
  }
  const s: ContainerdSettings = {
    runtime,
    artifacts,
    download,
    releaseBaseUrl: base,
    hostReleaseBaseUrl: normalizeReleaseBaseUrl(opt('host_release_base_url') ?? base),
    replaceDistroContainerd: flag('replace_distro_containerd'),
    allowDowngrade: flag('allow_downgrade'),
    pluginErrorAllow: (allow as string[] | undefined) ?? [],
  };
  cache.set(vars, s);
  return s;
}

function registerRegistrySecrets(cfg: RuntimeConfig) {
  for (const reg of Object.values(cfg.registries)) {
    if (!reg.auth) continue;
    if (reg.auth.kind === 'basic') {
      addSecret(reg.auth.password.reveal());
      addSecret(Buffer.from(`${reg.auth.username}:${reg.auth.password.reveal()}`).toString('base64'));
    } else addSecret(reg.auth.auth.reveal());
  }
}

/** Settings errors are input errors: they stop the run before any host is touched. */
export function settingsOrInputError(vars: Vars): ContainerdSettings {
  try {
    return containerdSettings(vars);
  } catch (e) {
    if (e instanceof InputError || e instanceof InputErrors) throw e;
    throw new InputError((e as Error).message);
  }
}

/** Every registry file hoist writes on a host (hosts.toml and pushed CA/cert/key), by path alone, without rendering. */
export function registryPaths(rt: RuntimeConfig): string[] {
  // Sorted as the rendered files are: the restart stamp hashes them in this order.
  const hostsToml = supportsConfigPath(rt.version) ? Object.keys(rt.registries).map((h) => hostsTomlPath(rt, h)).sort() : [];
  return [...hostsToml, ...registryFiles(rt).map((f) => f.dest)];
}
