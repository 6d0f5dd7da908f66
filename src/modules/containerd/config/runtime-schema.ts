/**
 * The variables that make up containerd's runtime configuration, as schemas: type, default and
 * meaning of each, and every check one value can answer alone. validate.ts turns them into a
 * RuntimeConfig with the rules across keys and per release.
 */
import { s } from '../../../util/schema.js';
import { normaliseHostPath } from '../../../util/path-guard.js';
import { compareVersions, parseVersion } from '../version.js';
import { KNOWN_PATCH_RELEASES, ReleaseVersionSchema } from './version-schema.js';
import { CONTROL_RE, registriesSchema } from './registry-schema.js';
import { OLDEST_SUPPORTED, RUNTIME_DEFAULTS } from './types.js';

const SNAPSHOTTER_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const show = (v: string) => JSON.stringify(v);

/**
 * An absolute directory on the host, normalised (`/data//x/` is `/data/x`). Whether it may be
 * used at all (a system directory, hoist's own) is validate.ts's. A value this schema refuses is
 * left out of the settings pass by the engine, which then sees the default in its place: a rule
 * comparing directories may also name the default (the refusal itself is reported first).
 */
const hostDir = () =>
  s.string().refine((v, report) => {
    if (!v.startsWith('/')) return report(`${show(v)} must be an absolute path`);
    if (CONTROL_RE.test(v)) return report('must not contain control characters');
    if (v.split('/').some((seg) => seg === '..' || seg === '.')) return report(`${show(v)} must not contain "." or ".." segments`);
    return normaliseHostPath(v);
  }, 'absolute path');

const containerdVersion = new ReleaseVersionSchema('containerd', KNOWN_PATCH_RELEASES).refine((v, report) => {
  const parsed = parseVersion(v);
  return compareVersions(parsed, OLDEST_SUPPORTED) < 0 || parsed.major > 2 ? report(`${show(v)} is not supported (1.4 to 2.x)`) : v;
}, 'a version "X.Y.Z"');

export const runtimeVariables = {
  containerd_version: containerdVersion.describe('release to install, e.g. "1.7.24" or "2.1.9"'),
  systemd_cgroup: s.bool().default(RUNTIME_DEFAULTS.systemd_cgroup).describe('runc uses the systemd cgroup driver (as kubelet\'s cgroupDriver = "systemd")'),
  sandbox_image: s
    .string()
    .refine((v, report) => (v === '' || /\s/.test(v) || CONTROL_RE.test(v) ? report(`${show(v)} is not an image reference`) : v), 'image reference')
    .optional()
    .describe('pause image of pod sandboxes (default: the one the release line uses, e.g. registry.k8s.io/pause:3.10 for 2.x)'),
  root_dir: hostDir().default(RUNTIME_DEFAULTS.root_dir).describe("containerd's persistent data (images, snapshots)"),
  state_dir: hostDir().default(RUNTIME_DEFAULTS.state_dir).describe("containerd's runtime state and its socket"),
  oom_score: s.int(-1000, 1000).default(RUNTIME_DEFAULTS.oom_score),
  restrict_oom_score_adj: s
    .bool()
    .default(RUNTIME_DEFAULTS.restrict_oom_score_adj)
    .describe("pods get an oom_score_adj no lower than containerd's: for nodes without CAP_SYS_RESOURCE (some containers-in-containers)"),
  snapshotter: s
    .string()
    .refine(
      (v, report) => (SNAPSHOTTER_RE.test(v) ? v : report(`${show(v)} is not a snapshotter name (e.g. overlayfs, native, btrfs, zfs)`)),
      'snapshotter name',
    )
    .default(RUNTIME_DEFAULTS.snapshotter),
  cni_bin_dir: hostDir().default(RUNTIME_DEFAULTS.cni_bin_dir),
  cni_conf_dir: hostDir().default(RUNTIME_DEFAULTS.cni_conf_dir),
  imports_dir: s
    .union<string | false>(
      'an absolute path, "" or false',
      // containerd globs import paths; metacharacters in the directory would change what matches.
      hostDir().refine((v, report) => (/[*?[\]\\]/.test(v) ? report(`${show(v)} must not contain glob characters (* ? [ ] \\)`) : v)),
      s.literal(''),
      s.literal(false),
    )
    .default(RUNTIME_DEFAULTS.imports_dir)
    .describe('drop-in directory config.toml imports (`<dir>/*.toml`); "" or false: none'),
  config_path: hostDir()
    .refine((v, report) => (v.includes(':') ? report('must be one directory (containerd splits config_path on ":")') : v))
    .default(RUNTIME_DEFAULTS.config_path)
    .describe('where hosts.toml files go, one directory per registry'),
  registries: registriesSchema
    .optional()
    .describe(
      'per registry host (as in image references, or _default for every registry): mirrors, TLS files, credentials; the keys of a registry and of a mirror are listed below',
    ),
};
