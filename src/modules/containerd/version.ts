import { InputError } from '../../util/errors.js';

/**
 * containerd version strings as they appear in release tags, `ctr version`, `crictl version`
 * and distro packages, reduced to a comparable numeric core.
 *
 * Distro builds print things like `2.1.9+unknown`, `1.6.20~ds1` or `1.6.20~ds1-2`; those
 * suffixes describe packaging, not the upstream release, so they are kept for display but
 * ignored when comparing. Upstream prereleases (`2.0.0-rc.2`, `2.4.0-beta.0`) do matter and
 * sort before the release, as in semver.
 */

export interface Version {
  major: number;
  minor: number;
  patch: number;
  /** Semver prerelease identifiers, e.g. ["rc", "2"]; empty for a release. */
  prerelease: string[];
  /** Packaging/build suffix that does not take part in comparison (`+unknown`, `~ds1-2`, `-0ubuntu1`). */
  suffix: string;
  /** The input, trimmed. */
  raw: string;
}

export class VersionParseError extends InputError {
  constructor(
    readonly input: string,
    detail: string,
  ) {
    super(`invalid version ${JSON.stringify(input)}: ${detail}`);
    this.name = 'VersionParseError';
  }
}

const NUM = '(0|[1-9]\\d*)';
// A prerelease must start with a letter: upstream only tags alpha/beta/rc, while a dash followed
// by a digit is a Debian/Ubuntu revision (`1.6.20-2`, `1.7.12-0ubuntu1`), i.e. packaging.
const PRE = '([A-Za-z][0-9A-Za-z-]*(?:\\.[0-9A-Za-z-]+)*)';
const LOOSE_RE = new RegExp(`^[vV]?${NUM}\\.${NUM}\\.${NUM}(?:-${PRE})?((?:[~+]|-(?=\\d)).+)?$`);
const STRICT_RE = new RegExp(`^${NUM}\\.${NUM}\\.${NUM}(?:-([0-9A-Za-z-]+(?:\\.[0-9A-Za-z-]+)*))?$`);

export function parseVersion(input: string): Version {
  if (typeof input !== 'string') throw new VersionParseError(String(input), 'not a string');
  const raw = input.trim();
  if (raw === '') throw new VersionParseError(input, 'empty');
  const m = LOOSE_RE.exec(raw);
  if (!m) throw new VersionParseError(input, 'expected [v]MAJOR.MINOR.PATCH with an optional -prerelease or distro suffix');
  const prerelease = m[4] ? m[4].split('.') : [];
  for (const id of prerelease) {
    if (id === '') throw new VersionParseError(input, 'empty prerelease identifier');
  }
  return {
    major: Number(m[1]),
    minor: Number(m[2]),
    patch: Number(m[3]),
    prerelease,
    suffix: m[5] ?? '',
    raw,
  };
}

function asVersion(v: string | Version): Version {
  return typeof v === 'string' ? parseVersion(v) : v;
}

function compareIdentifiers(a: string, b: string): number {
  const an = /^\d+$/.test(a);
  const bn = /^\d+$/.test(b);
  if (an && bn) return Math.sign(Number(a) - Number(b));
  if (an) return -1; // semver: numeric identifiers have lower precedence
  if (bn) return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Negative if a < b, 0 if equal (ignoring packaging suffixes), positive if a > b. */
export function compareVersions(a: string | Version, b: string | Version): number {
  const x = asVersion(a);
  const y = asVersion(b);
  for (const k of ['major', 'minor', 'patch'] as const) {
    if (x[k] !== y[k]) return Math.sign(x[k] - y[k]);
  }
  const xp = x.prerelease;
  const yp = y.prerelease;
  // A release sorts after any of its prereleases.
  if (xp.length === 0 && yp.length === 0) return 0;
  if (xp.length === 0) return 1;
  if (yp.length === 0) return -1;
  for (let i = 0; i < Math.min(xp.length, yp.length); i++) {
    const c = compareIdentifiers(xp[i], yp[i]);
    if (c !== 0) return c;
  }
  return Math.sign(xp.length - yp.length);
}

/**
 * True when both denote the same upstream release: equal MAJOR.MINOR.PATCH and prerelease,
 * whatever `v` prefix or distro suffix either carries (`v2.1.9` vs `2.1.9+unknown`).
 * A prerelease is not the same release as its final version.
 */
export function sameCore(a: string | Version, b: string | Version): boolean {
  return compareVersions(a, b) === 0;
}

/** The release line, e.g. "1.7" for v1.7.34. */
export function lineOf(v: string | Version): string {
  const x = asVersion(v);
  return `${x.major}.${x.minor}`;
}

/** Canonical form without `v` prefix or packaging suffix: "2.0.0-rc.2", "1.7.34". */
export function formatVersion(v: string | Version): string {
  const x = asVersion(v);
  const pre = x.prerelease.length ? `-${x.prerelease.join('.')}` : '';
  return `${x.major}.${x.minor}.${x.patch}${pre}`;
}

/** Strict check for versions a user asks for: X.Y.Z or X.Y.Z-pre, no `v`, no build/distro suffix. */
export function isValidReleaseVersion(s: string): boolean {
  return typeof s === 'string' && STRICT_RE.test(s);
}

export type ConfigVersion = 2 | 3 | 4;

/**
 * The config.toml `version` a containerd release writes with `containerd config default`:
 * 1.x uses 2 (1.7 refuses anything higher), 2.0–2.2 use 3, 2.3 introduced 4 (server
 * settings moved into `io.containerd.server.v1.*` plugins) and 2.0–2.2 refuse 4.
 */
export function configVersionFor(containerdVersion: string | Version): ConfigVersion {
  const v = asVersion(containerdVersion);
  if (v.major < 1) throw new VersionParseError(v.raw, 'containerd before 1.0 is not supported');
  if (v.major === 1) return 2;
  if (v.major === 2 && v.minor <= 2) return 3;
  return 4;
}
