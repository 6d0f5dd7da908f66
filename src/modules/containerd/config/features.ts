import { compareVersions, type Version } from '../version.js';

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
