import { s, type InferShape } from '../../util/schema.js';
import { normaliseHostPath } from '../../util/path-guard.js';
import { addSecret } from '../../util/redact.js';
import type { SettingsIssue } from '../../tasks/types.js';
import { runtimeConfig } from './config/validate.js';
import { runtimeVariables } from './config/runtime-schema.js';
import type { RuntimeConfig } from './config/types.js';
import { cniNetwork, type CniNetwork } from './config/cni.js';
import { ReleaseVersionSchema } from './config/version-schema.js';
import { catalogFor, normalizeReleaseBaseUrl, reportSettingError, DEFAULT_RELEASE_BASE_URL, type ContainerdArtifact, type ReleaseArch } from './catalog.js';

const absPath = s.string(/^\//, 'an absolute path');
const version = new ReleaseVersionSchema('release');

/**
 * Every variable the containerd tasks read, with its type: the engine checks each host's variables
 * against these before connecting, and reports a misspelt one with the nearest name here.
 * What depends on several of them or on the target release (a registry's credentials and files,
 * what a containerd release accepts, the release catalogue) is checked in containerdSettings below,
 * in the same pass, and reported the same way: an issue at the key path, which the engine locates.
 */
export const containerdVariables = {
  ...runtimeVariables,
  cni_conflist: s
    .union<'bridge' | '' | false>('"bridge", "" or false', s.literal('bridge'), s.literal(''), s.literal(false))
    .optional()
    .describe('"bridge": write a bridge + host-local + loopback network into cni_conf_dir (off by default: clusters bring their own CNI plugin)'),
  keep_bundle_cni_conflist: s
    .bool()
    .optional()
    .describe(
      "keep the 1.x bundle's /etc/cni/net.d/10-containerd-net.conflist (a bridge network for a single node); by default hoist does not install it, and removes it (when it is the bundle's, unchanged) on an install or upgrade: containerd uses the lexically first file, and it would shadow a cluster CNI such as 10-flannel.conflist",
    ),
  cni_subnet: s.string().optional().describe('IPv4 network of cni_conflist = "bridge" (default 10.88.0.0/16)'),
  allow_data_dir: s
    .list(absPath)
    .optional()
    .describe(
      "root_dir or state_dir (as set) that may be used though it lies in a user's home or is an existing directory hoist did not create holding other files; a reset with remove_data then deletes only containerd's entries in it",
    ),
  release_base_url: s.string().optional(),
  host_release_base_url: s.string().optional(),
  release_arch: s.enum('amd64', 'arm64').optional().describe('architecture of the release files (arm64 for aarch64 hosts)'),
  download: s
    .enum('controller', 'peers', 'host')
    .optional()
    .describe(
      '"peers": the controller sends the release files to the first hosts, which pass them on host to host (sha256 checked at every receiver; falls back to the controller); "controller": it sends every host; "host": hosts fetch from host_release_base_url',
    ),
  peer_address: s
    .string(/^[A-Za-z0-9][A-Za-z0-9.:-]*$/, 'a host name or an IP address')
    .optional()
    .describe('address other hosts reach this one at for download = "peers" (default: the address hoist connects to)'),
  runc_version: version.optional(),
  cni_version: version.optional(),
  crictl_version: s.union<string | false>('a version string or false', version, s.literal(false), s.literal('')).optional(),
  pinned_sha256: s.record(s.string()).optional(),
  replace_distro_containerd: s.bool().optional(),
  allow_downgrade: s.bool().optional(),
  plugin_error_allow: s.array(s.string()).optional().describe('"TYPE ID" pairs as `ctr plugin ls` prints them'),
};

/**
 * The variables as the engine hands them to containerdSettings: as written, each that passed its
 * schema (a defaulted one may be absent; validate.ts applies the defaults).
 */
export type ContainerdVariables = Partial<InferShape<typeof containerdVariables>>;

export interface ContainerdSettings {
  runtime: RuntimeConfig;
  artifacts: ContainerdArtifact[];
  arch: ReleaseArch;
  download: 'controller' | 'peers' | 'host';
  /** Where other hosts reach this one for host-to-host copies; undefined: the address hoist dials. */
  peerAddress?: string;
  releaseBaseUrl: string;
  /** Release base URL as the hosts see it (download = "host"). */
  hostReleaseBaseUrl: string;
  replaceDistroContainerd: boolean;
  allowDowngrade: boolean;
  pluginErrorAllow: string[];
  /** The CNI network hoist writes (cni_conflist), or null. */
  cni: CniNetwork | null;
  /** Keep the 1.x bundle's bridge conflist (keep_bundle_cni_conflist). */
  keepBundleCni: boolean;
  /** Data directories the operator named (allow_data_dir), as set. */
  allowDataDirs: string[];
}

/** One host's containerd settings from its checked variables; every problem goes to `report` with its key path. */
export function containerdSettings(vars: ContainerdVariables, report: (issue: SettingsIssue) => void): ContainerdSettings | undefined {
  // Every check below reports the same way, an issue at its key path; any issue means no settings.
  let problems = 0;
  const counted = (i: SettingsIssue) => {
    problems++;
    report(i);
  };
  const runtime = { value: runtimeConfig(vars, counted) };
  const cni = cniNetwork(vars, counted);
  const base = reportSettingError(() => normalizeReleaseBaseUrl(vars.release_base_url || DEFAULT_RELEASE_BASE_URL), counted);
  const hostBase = vars.host_release_base_url
    ? reportSettingError(() => normalizeReleaseBaseUrl(vars.host_release_base_url, 'host_release_base_url'), counted)
    : base;
  // Variables reach settings as written: a single path stands for a list of one.
  const rawAllow: unknown = vars.allow_data_dir;
  const allowDataDirs = (rawAllow === undefined ? [] : Array.isArray(rawAllow) ? rawAllow : [rawAllow]).map((d) => normaliseHostPath(String(d)));
  allowDataDirs.forEach((d, i) => {
    const named = { root_dir: runtime.value?.rootDir, state_dir: runtime.value?.stateDir };
    if (runtime.value && d !== named.root_dir && d !== named.state_dir) {
      counted({
        path: ['allow_data_dir', ...(Array.isArray(vars.allow_data_dir) ? [i] : [])],
        message: `${JSON.stringify(d)} is neither root_dir (${named.root_dir}) nor state_dir (${named.state_dir}); it names the data directory to allow, as set there`,
      });
    }
  });
  if (problems > 0 || !runtime.value || base === undefined || hostBase === undefined) return undefined;
  const rt = runtime.value;
  const arch = vars.release_arch ?? 'amd64';
  const artifacts = reportSettingError(
    () =>
      catalogFor(rt.version, {
        releaseBaseUrl: base,
        runcVersion: vars.runc_version,
        cniVersion: vars.cni_version,
        crictlVersion: vars.crictl_version === '' ? false : vars.crictl_version,
        pinnedSha256: vars.pinned_sha256,
        arch,
      }),
    counted,
  );
  if (!artifacts) return undefined;
  registerRegistrySecrets(rt);
  return {
    runtime: rt,
    artifacts,
    arch,
    download: vars.download ?? 'peers',
    peerAddress: vars.peer_address || undefined,
    releaseBaseUrl: base,
    hostReleaseBaseUrl: hostBase,
    replaceDistroContainerd: vars.replace_distro_containerd ?? false,
    allowDowngrade: vars.allow_downgrade ?? false,
    pluginErrorAllow: vars.plugin_error_allow ?? [],
    cni,
    keepBundleCni: vars.keep_bundle_cni_conflist ?? false,
    allowDataDirs,
  };
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
