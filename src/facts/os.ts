import type { Facts } from './facts.js';
import { HostError } from '../util/errors.js';

/**
 * What hoist knows of each distribution family, in one place: which package manager it has, what
 * its packages are called, where its files go. Tasks ask for a command or library by hoist's own
 * name and get the family's package. Debian-family hosts are what the fleet tests run on; the
 * RHEL-family answers (RHEL, CentOS Stream, Rocky, Alma, Fedora) are unit-tested with os-release
 * fixtures (test/unit/os.test.ts).
 */
export type OsFamily = 'debian' | 'rhel' | 'unknown';

/** What tasks ask the OS layer for: commands and libraries, by hoist's name. */
export type Need = 'libseccomp' | 'ip' | 'tc' | 'iptables' | 'mount' | 'nsenter' | 'kmod' | 'conntrack' | 'ethtool' | 'socat' | 'ebtables';

export interface OsProfile {
  family: OsFamily;
  /** The major version (RHEL 9 → 9), where the family's package names depend on it. */
  major: number | undefined;
  packageManager: Facts['packageManager'];
  /** Where SELinux may label files: installed binaries need `restorecon` when it is enforcing. */
  selinuxLabels: boolean;
}

const DEBIAN: Record<Need, string> = {
  libseccomp: 'libseccomp2',
  ip: 'iproute2',
  tc: 'iproute2',
  iptables: 'iptables',
  mount: 'mount',
  nsenter: 'util-linux',
  kmod: 'kmod',
  conntrack: 'conntrack',
  ethtool: 'ethtool',
  socat: 'socat',
  ebtables: 'ebtables',
};

/** RHEL 8 on; where 9 renamed a package, the function says so. */
const RHEL: Record<Need, string | ((major: number) => string)> = {
  libseccomp: 'libseccomp',
  ip: 'iproute',
  tc: 'iproute-tc',
  iptables: (m) => (m >= 9 ? 'iptables-nft' : 'iptables'),
  mount: 'util-linux',
  nsenter: 'util-linux',
  kmod: 'kmod',
  conntrack: 'conntrack-tools',
  ethtool: 'ethtool',
  socat: 'socat',
  ebtables: (m) => (m >= 9 ? 'iptables-nft' : 'ebtables'),
};

/** Fedora's release numbers map onto the RHEL release that branched from them. */
const rhelMajor = (f: Pick<Facts, 'osId' | 'osVersion'>): number | undefined => {
  const n = Number.parseInt(f.osVersion, 10);
  if (!Number.isFinite(n)) return undefined;
  return f.osId === 'fedora' ? (n >= 34 ? 9 : 8) : n;
};

export function osFamily(f: Pick<Facts, 'osId' | 'osIdLike'>): OsFamily {
  const ids = [f.osId, ...f.osIdLike];
  if (ids.some((i) => i === 'debian' || i === 'ubuntu')) return 'debian';
  if (ids.some((i) => i === 'rhel' || i === 'centos' || i === 'fedora')) return 'rhel';
  return 'unknown';
}

export function osProfile(f: Pick<Facts, 'osId' | 'osIdLike' | 'osVersion' | 'packageManager'>): OsProfile {
  const family = osFamily(f);
  return {
    family,
    major: family === 'rhel' ? rhelMajor(f) : Number.parseInt(f.osVersion, 10) || undefined,
    packageManager: f.packageManager,
    selinuxLabels: family === 'rhel',
  };
}

/** The package that brings `need` on this OS, or an error that says what hoist does not know. */
export function packageFor(p: OsProfile, need: Need): string {
  if (p.family === 'debian') return DEBIAN[need];
  if (p.family === 'rhel') {
    const n = RHEL[need];
    return typeof n === 'string' ? n : n(p.major ?? 9);
  }
  // An unknown family with a known package manager is most likely its manager's family.
  if (p.packageManager === 'apt') return DEBIAN[need];
  if (p.packageManager === 'dnf' || p.packageManager === 'yum') return packageFor({ ...p, family: 'rhel' }, need);
  throw new HostError(`hoist does not know this distribution's package for ${need} (no apt, dnf or yum)`);
}

/** Every name a need may have across families: what a probe reads before the facts are known. */
export function packageCandidates(needs: readonly Need[]): string[] {
  const out = new Set<string>();
  for (const n of needs) {
    out.add(DEBIAN[n]);
    const r = RHEL[n];
    if (typeof r === 'string') out.add(r);
    else [8, 9].forEach((m) => out.add(r(m)));
  }
  return [...out];
}

/** Hoist's name for a command kubeadm's preflight looks for, where it has one. */
export function needOfCommand(cmd: string): Need | undefined {
  return (Object.keys(DEBIAN) as Need[]).includes(cmd as Need) ? (cmd as Need) : undefined;
}

/**
 * The restorecon line for files hoist installed (`shellArgs`: words for bash, already quoted), on a
 * host whose family labels files with SELinux (empty elsewhere): a binary moved from a staging
 * directory keeps that directory's label, and systemd may not execute it while SELinux enforces.
 * The line runs restorecon only where SELinux is enabled.
 */
export function relabelCommand(p: OsProfile, shellArgs: string): string {
  if (!p.selinuxLabels) return '';
  return `if command -v selinuxenabled >/dev/null && selinuxenabled && command -v restorecon >/dev/null; then restorecon -F -- ${shellArgs}; fi`;
}
