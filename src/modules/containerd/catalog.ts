import { InputError } from '../../util/errors.js';
import { formatVersion, isValidReleaseVersion, parseVersion, type Version } from './version.js';
import type { Artifact, ChecksumFormat } from '../../artifacts/artifact.js';

/** A bad setting, with the variable it concerns, so the caller can point at the line that set it. */
export class SettingError extends InputError {
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * `fn`'s value, or undefined after its SettingError went to `report` as an issue at the variable it
 * concerns: how a module's settings take the catalogue's checks, located like every other problem.
 */
export function reportSettingError<T>(fn: () => T, report: (issue: { path: string[]; message: string }) => void): T | undefined {
  try {
    return fn();
  } catch (e) {
    if (!(e instanceof SettingError)) throw e;
    report({ path: [e.key], message: e.message });
    return undefined;
  }
}

/** Architectures upstream publishes release files for, named as the files name them. */
export type ReleaseArch = 'amd64' | 'arm64';

export type ArtifactId = 'bundle' | 'containerd' | 'runc' | 'cni' | 'crictl';

/** A release file of a containerd installation; `id` says how install unpacks it. */
export interface ContainerdArtifact extends Artifact {
  id: ArtifactId;
}

export interface CatalogOptions {
  containerdVersion: string;
  /** Scheme + host (+ optional path prefix) that mirrors github.com's release download layout. */
  releaseBaseUrl?: string;
  runcVersion?: string;
  cniVersion?: string;
  /** `false` leaves crictl out (2.x only; the 1.x bundle always carries it). */
  crictlVersion?: string | false;
  /** Asset name → sha256 hex. */
  pinnedSha256?: Record<string, string>;
  /** Which architecture's files; amd64 unless the host is arm64. */
  arch?: ReleaseArch;
}

export const DEFAULT_RELEASE_BASE_URL = 'https://github.com';

export interface CompanionVersions {
  runc: string;
  cni: string;
  crictl: string;
}

/**
 * Companion versions per containerd 2.x minor line: what containerd itself pins at the newest
 * patch tag of that line, so hoist installs the runc/CNI/crictl combination upstream tests with.
 *   runc   ← script/setup/runc-version
 *   crictl ← script/setup/critools-version
 *   CNI    ← go.mod `github.com/containernetworking/plugins` (script/setup/install-cni builds
 *            that module version; 2.x has no script/setup/cni-plugins-version file)
 * Read at tags v2.0.11, v2.1.9, v2.2.7, v2.3.4 and v2.4.0-beta.0.
 */
export const COMPANION_VERSIONS: Readonly<Record<string, CompanionVersions>> = {
  '2.0': { runc: '1.3.6', cni: '1.5.1', crictl: '1.30.1' }, // v2.0.11
  '2.1': { runc: '1.3.6', cni: '1.9.0', crictl: '1.30.1' }, // v2.1.9
  '2.2': { runc: '1.3.6', cni: '1.9.0', crictl: '1.33.0' }, // v2.2.7
  '2.3': { runc: '1.4.3', cni: '1.9.1', crictl: '1.35.0' }, // v2.3.4
  '2.4': { runc: '1.5.1', cni: '1.9.1', crictl: '1.35.0' }, // v2.4.0-beta.0
};

const NEWEST_KNOWN_LINE = '2.4';

/** The cri-containerd-cni bundle is only known (and only checked) for these 1.x lines. */
const OLDEST_BUNDLE_MINOR = 4;

/** The first 1.x line whose releases carry an arm64 cri-containerd-cni bundle. */
const ARM64_BUNDLE_MINOR = 6;

const HEX64_RE = /^[0-9a-f]{64}$/;

/** Strict X.Y.Z[-pre] as a user writes a release; `key` names the setting in error messages. */
export function parseReleaseVersion(value: unknown, key: string): Version {
  if (typeof value !== 'string' || value === '') {
    throw new SettingError(key, `${key} must be a version string like "2.1.4", got ${JSON.stringify(value)}`);
  }
  if (/^v\d/.test(value)) {
    // Release tags carry the "v"; asset names and hoist settings do not.
    throw new SettingError(key, `${key} "${value}" must not start with "v" (write "${value.slice(1)}")`);
  }
  if (!isValidReleaseVersion(value)) {
    throw new SettingError(key, `${key} "${value}" is not a version: expected MAJOR.MINOR.PATCH with an optional -prerelease (e.g. "2.1.4", "2.4.0-beta.0")`);
  }
  return parseVersion(value);
}

/** Validated base URL without trailing slash. */
export function normalizeReleaseBaseUrl(value: unknown, key = 'release_base_url'): string {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new SettingError(key, `${key} must be an http(s) URL, got ${JSON.stringify(value)}`);
  }
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:/.test(value)) {
    throw new SettingError(key, `${key} "${value}" has no scheme (expected e.g. "http://${value}" or "https://${value}")`);
  }
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new SettingError(key, `${key} "${value}" is not a valid URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new SettingError(key, `${key} "${value}" must use http or https, not ${u.protocol.slice(0, -1)}`);
  }
  if (!u.hostname) throw new SettingError(key, `${key} "${value}" has no host`);
  if (u.search || u.hash) {
    // Asset paths are appended to the base; a query or fragment would swallow them.
    throw new SettingError(key, `${key} "${value}" must not contain a query or fragment`);
  }
  return u.toString().replace(/\/+$/, '');
}

function companionDefaults(v: Version): CompanionVersions {
  const line = `${v.major}.${v.minor}`;
  // A line newer than this table gets the newest known companions: containerd keeps runc/CNI/crictl
  // compatibility forward, and each can be overridden.
  return COMPANION_VERSIONS[line] ?? COMPANION_VERSIONS[NEWEST_KNOWN_LINE];
}

/** One file of a GitHub-style release (`<base>/<repo>/releases/download/v<version>/<name>`) and its checksum file. */
function asset(
  base: string,
  repo: string,
  id: ArtifactId,
  version: string,
  name: string,
  checksumName: string,
  checksumFormat: ChecksumFormat,
): ContainerdArtifact {
  const dir = `${base}/${repo}/releases/download/v${version}`;
  return { id, name, version, url: `${dir}/${name}`, checksumUrl: `${dir}/${checksumName}`, checksumFormat };
}

/**
 * The release assets that make up one containerd installation.
 * 1.x: the all-in-one cri-containerd-cni bundle. 2.x: the bundle was removed (2.0.0-beta.0), so
 * containerd, runc, the CNI plugins and (unless disabled) crictl come from their own releases.
 */
export function releaseCatalog(opts: CatalogOptions): ContainerdArtifact[] {
  const version = parseReleaseVersion(opts.containerdVersion, 'containerd_version');
  return catalogFor(version, { ...opts, releaseBaseUrl: normalizeReleaseBaseUrl(opts.releaseBaseUrl ?? DEFAULT_RELEASE_BASE_URL) });
}

/**
 * The catalogue for a version and base URL already validated (the module's settings do that once);
 * only what depends on the combination (companions of a 1.x bundle, pins) is checked here.
 */
export function catalogFor(cv: Version, opts: Omit<CatalogOptions, 'containerdVersion'> & { releaseBaseUrl: string }): ContainerdArtifact[] {
  const base = opts.releaseBaseUrl;
  const V = formatVersion(cv);
  const arch = opts.arch ?? 'amd64';
  const artifacts: ContainerdArtifact[] = [];

  if (cv.major === 1) {
    if (cv.minor < OLDEST_BUNDLE_MINOR) {
      throw new SettingError('containerd_version', `containerd_version "${V}" is too old: hoist installs containerd 1.${OLDEST_BUNDLE_MINOR} or newer`);
    }
    for (const [key, val] of [
      ['runc_version', opts.runcVersion],
      ['cni_version', opts.cniVersion],
      ['crictl_version', opts.crictlVersion],
    ] as const) {
      if (typeof val === 'string') {
        throw new SettingError(
          key,
          `${key} "${val}" cannot be used with containerd ${V}: 1.x installs the cri-containerd-cni bundle, which ships its own runc, CNI plugins and crictl`,
        );
      }
    }
    if (arch === 'arm64' && cv.minor < ARM64_BUNDLE_MINOR) {
      throw new SettingError('release_arch', `containerd ${V} publishes no arm64 cri-containerd-cni bundle (arm64 bundles start with 1.${ARM64_BUNDLE_MINOR})`);
    }
    const name = `cri-containerd-cni-${V}-linux-${arch}.tar.gz`;
    artifacts.push(asset(base, 'containerd/containerd', 'bundle', V, name, `${name}.sha256sum`, 'sha256sum'));
  } else if (cv.major === 2) {
    const d = companionDefaults(cv);
    const R = opts.runcVersion ?? d.runc;
    const C = opts.cniVersion ?? d.cni;
    const K = opts.crictlVersion === undefined ? d.crictl : opts.crictlVersion;
    parseReleaseVersion(R, 'runc_version');
    parseReleaseVersion(C, 'cni_version');
    if (K !== false) parseReleaseVersion(K, 'crictl_version');

    const ctd = `containerd-${V}-linux-${arch}.tar.gz`;
    artifacts.push(asset(base, 'containerd/containerd', 'containerd', V, ctd, `${ctd}.sha256sum`, 'sha256sum'));
    artifacts.push(asset(base, 'opencontainers/runc', 'runc', R, `runc.${arch}`, 'runc.sha256sum', 'sha256sum-clearsigned'));
    const cni = `cni-plugins-linux-${arch}-v${C}.tgz`;
    artifacts.push(asset(base, 'containernetworking/plugins', 'cni', C, cni, `${cni}.sha256`, 'sha256sum'));
    if (K !== false) {
      const crictl = `crictl-v${K}-linux-${arch}.tar.gz`;
      artifacts.push(asset(base, 'kubernetes-sigs/cri-tools', 'crictl', K, crictl, `${crictl}.sha256`, 'bare-hex'));
    }
  } else {
    throw new SettingError('containerd_version', `containerd_version "${V}": hoist supports containerd 1.${OLDEST_BUNDLE_MINOR}+ and 2.x, not ${cv.major}.x`);
  }

  applyPins(artifacts, opts.pinnedSha256);
  return artifacts;
}

function applyPins(artifacts: ContainerdArtifact[], pins: Record<string, string> | undefined): void {
  if (!pins) return;
  const byName = new Map(artifacts.map((a) => [a.name, a]));
  for (const [name, raw] of Object.entries(pins)) {
    const a = byName.get(name);
    if (!a) {
      // A pin that matches nothing is almost always a typo or a stale version; ignoring it would
      // silently drop the protection the user asked for.
      throw new SettingError(
        'pinned_sha256',
        `pinned_sha256 names "${name}", which is not an artifact of this install (artifacts: ${[...byName.keys()].join(', ')})`,
      );
    }
    const hex = typeof raw === 'string' ? raw.trim().toLowerCase() : '';
    if (!HEX64_RE.test(hex)) {
      throw new SettingError('pinned_sha256', `pinned_sha256 for "${name}" must be 64 hex characters, got ${JSON.stringify(raw)}`);
    }
    a.pinnedSha256 = hex;
  }
}
