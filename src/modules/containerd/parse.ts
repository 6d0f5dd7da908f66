/**
 * Parsers for what containerd's tools print on a host: `ctr version`, `ctr plugin ls`,
 * `crictl version`, `crictl info` and `containerd config dump`. They accept the variations
 * seen across 1.4–2.3 and distro builds, and fail loudly on output they cannot make sense of
 * rather than guessing.
 */
import { parse as parseToml } from 'smol-toml';
import { compareVersions, parseVersion, type Version } from './version.js';
import { isPlainObject } from '../../util/schema.js';
import { HostError } from '../../util/errors.js';

export class OutputParseError extends HostError {
  constructor(
    readonly command: string,
    detail: string,
  ) {
    super(`cannot parse \`${command}\` output: ${detail}`);
    this.name = 'OutputParseError';
  }
}

// ---------------------------------------------------------------------------------------------
// ctr version

export interface CtrVersionBlock {
  /** As printed (`v1.7.34`, `2.1.9+unknown`); compare with version.ts. */
  version: string;
  revision: string | null;
}

export interface CtrVersion {
  client: CtrVersionBlock & { goVersion: string | null };
  /** null when the daemon did not answer (only the Client block is printed). */
  server: (CtrVersionBlock & { uuid: string | null }) | null;
  /** Lines after the blocks, e.g. `ctr: failed to dial "/run/containerd/containerd.sock": ...`. */
  errors: string[];
}

export function parseCtrVersion(output: string): CtrVersion {
  let block: 'client' | 'server' | null = null;
  const fields: Record<'client' | 'server', Map<string, string>> = { client: new Map(), server: new Map() };
  let sawServer = false;
  const errors: string[] = [];
  for (const raw of output.replace(/\r/g, '').split('\n')) {
    const line = raw.trimEnd();
    if (line.trim() === '') continue;
    if (/^Client:\s*$/.test(line)) {
      block = 'client';
      continue;
    }
    if (/^Server:\s*$/.test(line)) {
      block = 'server';
      sawServer = true;
      continue;
    }
    const kv = /^\s+([A-Za-z][A-Za-z ]*?):\s*(.*)$/.exec(line);
    if (kv && block) {
      fields[block].set(kv[1].toLowerCase(), kv[2].trim());
      continue;
    }
    // Unindented text after the blocks is ctr's own error (daemon down, permission denied)
    // or a mismatch warning; keep it for the caller to report.
    errors.push(line.trim());
  }
  const clientVersion = fields.client.get('version');
  if (!clientVersion) throw new OutputParseError('ctr version', 'no Client Version line');
  const serverVersion = fields.server.get('version');
  return {
    client: {
      version: clientVersion,
      revision: fields.client.get('revision') || null,
      goVersion: fields.client.get('go version') || null,
    },
    server:
      sawServer && serverVersion ? { version: serverVersion, revision: fields.server.get('revision') || null, uuid: fields.server.get('uuid') || null } : null,
    errors,
  };
}

// ---------------------------------------------------------------------------------------------
// ctr plugin ls

export type PluginStatus = 'ok' | 'skip' | 'error';

export interface PluginRow {
  type: string;
  id: string;
  /** Empty when ctr printed `-`. */
  platforms: string[];
  status: PluginStatus;
}

/** `TYPE ID` key used in allow-lists. */
export function pluginKey(row: Pick<PluginRow, 'type' | 'id'>): string {
  return `${row.type} ${row.id}`;
}

export function parsePluginList(output: string): PluginRow[] {
  const lines = output.replace(/\r/g, '').split('\n');
  const header = lines.findIndex((l) => /^\s*TYPE\s+ID\s+PLATFORMS\s+STATUS\s*$/.test(l));
  if (header < 0) throw new OutputParseError('ctr plugin ls', 'no "TYPE ID PLATFORMS STATUS" header');
  const rows: PluginRow[] = [];
  for (let i = header + 1; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '') continue;
    // Columns are tabwriter-padded with spaces and no field contains a space
    // (platforms are joined with commas), so whitespace splitting is exact.
    const cols = line.split(/\s+/);
    if (cols.length !== 4) throw new OutputParseError('ctr plugin ls', `line ${i + 1} has ${cols.length} columns: ${JSON.stringify(line)}`);
    const [type, id, platforms, status] = cols;
    if (status !== 'ok' && status !== 'skip' && status !== 'error') {
      throw new OutputParseError('ctr plugin ls', `line ${i + 1} has unknown status ${JSON.stringify(status)}`);
    }
    rows.push({ type, id, platforms: platforms === '-' ? [] : platforms.split(',').filter(Boolean), status });
  }
  return rows;
}

/**
 * Plugins whose `error` status is normal on a host without special setup. containerd 1.4's ctr
 * prints every init failure as `error` (the `skip` status arrived in 1.5), and these four fail
 * on an ordinary ext4/xfs host:
 *  - snapshotter devmapper: 1.4–1.6 return plain `devmapper not configured` when no pool_name
 *    is set, so it is `error` even on 1.5/1.6 (1.7+ wrap ErrSkipPlugin → `skip`).
 *  - snapshotter btrfs: "path … must be a btrfs filesystem to be used with the btrfs snapshotter"
 *    unless /var/lib/containerd is on btrfs (ErrSkipPlugin; `error` on 1.4).
 *  - snapshotter zfs: "path … must be a zfs filesystem to be used with the zfs snapshotter"
 *    (ErrSkipPlugin; `error` on 1.4; plugin gone in 2.x).
 *  - snapshotter aufs: needs the aufs kernel module, absent from current kernels (ErrSkipPlugin;
 *    `error` on 1.4; removed in 2.0).
 * Everything else that errors (overlayfs, cri, runtime, …) signals a real problem.
 */
export const DEFAULT_PLUGIN_ERROR_ALLOWLIST: readonly string[] = Object.freeze([
  'io.containerd.snapshotter.v1 devmapper',
  'io.containerd.snapshotter.v1 btrfs',
  'io.containerd.snapshotter.v1 zfs',
  'io.containerd.snapshotter.v1 aufs',
]);

export interface PluginEvaluation {
  /** CRI plugins present and ok, and no errors outside the allow-list. */
  healthy: boolean;
  criOk: boolean;
  /** Required CRI plugin keys that are absent (e.g. disabled_plugins = ["io.containerd.grpc.v1.cri"]). */
  missing: string[];
  /** Required CRI plugins present but not ok. */
  criNotOk: PluginRow[];
  /** `error` rows not covered by the allow-list. */
  unexpectedErrors: PluginRow[];
  /** `error` rows the allow-list excused. */
  allowedErrors: PluginRow[];
}

export interface EvaluatePluginsOptions {
  /** Daemon version; decides whether the 2.x split CRI plugins are required. Inferred from the rows if absent. */
  containerdVersion?: string | Version;
  /** `TYPE ID` keys whose error is acceptable. Default DEFAULT_PLUGIN_ERROR_ALLOWLIST. */
  allowErrors?: readonly string[];
}

const CRI_GRPC = 'io.containerd.grpc.v1 cri';
const CRI_V2_SPLIT = ['io.containerd.cri.v1 images', 'io.containerd.cri.v1 runtime'];

export function requiredCriPlugins(containerdVersion: string | Version): string[] {
  const v = typeof containerdVersion === 'string' ? parseVersion(containerdVersion) : containerdVersion;
  return v.major >= 2 ? [CRI_GRPC, ...CRI_V2_SPLIT] : [CRI_GRPC];
}

export function evaluatePlugins(rows: readonly PluginRow[], opts: EvaluatePluginsOptions = {}): PluginEvaluation {
  const allow = new Set(opts.allowErrors ?? DEFAULT_PLUGIN_ERROR_ALLOWLIST);
  const byKey = new Map(rows.map((r) => [pluginKey(r), r] as const));
  const required =
    opts.containerdVersion !== undefined
      ? requiredCriPlugins(opts.containerdVersion)
      : rows.some((r) => r.type === 'io.containerd.cri.v1')
        ? [CRI_GRPC, ...CRI_V2_SPLIT]
        : [CRI_GRPC];
  const missing = required.filter((k) => !byKey.has(k));
  const criNotOk = required.map((k) => byKey.get(k)).filter((r): r is PluginRow => r !== undefined && r.status !== 'ok');
  const errors = rows.filter((r) => r.status === 'error');
  const unexpectedErrors = errors.filter((r) => !allow.has(pluginKey(r)));
  const allowedErrors = errors.filter((r) => allow.has(pluginKey(r)));
  const criOk = missing.length === 0 && criNotOk.length === 0;
  return { healthy: criOk && unexpectedErrors.length === 0, criOk, missing, criNotOk, unexpectedErrors, allowedErrors };
}

// ---------------------------------------------------------------------------------------------
// crictl version / crictl info

export interface CrictlVersion {
  /** Version of the kubelet runtime API crictl speaks (`0.1.0`). */
  version: string;
  runtimeName: string;
  runtimeVersion: string;
  runtimeApiVersion: string;
}

export function parseCrictlVersion(output: string): CrictlVersion {
  const m = new Map<string, string>();
  for (const line of output.replace(/\r/g, '').split('\n')) {
    const kv = /^\s*([A-Za-z]+):\s*(.*?)\s*$/.exec(line);
    if (kv) m.set(kv[1], kv[2]);
  }
  const runtimeName = m.get('RuntimeName');
  const runtimeVersion = m.get('RuntimeVersion');
  if (!runtimeName || !runtimeVersion) {
    throw new OutputParseError('crictl version', 'no RuntimeName/RuntimeVersion lines');
  }
  return {
    version: m.get('Version') ?? '',
    runtimeName,
    runtimeVersion,
    runtimeApiVersion: m.get('RuntimeApiVersion') ?? '',
  };
}

export interface RuntimeConditionInfo {
  type: string;
  status: boolean;
  reason: string;
  message: string;
}

export interface CrictlInfo {
  conditions: RuntimeConditionInfo[];
  runtimeReady: boolean;
  networkReady: boolean;
  /** The CRI plugin's effective config as JSON, when printed. */
  config: Record<string, unknown> | null;
  /** Everything crictl printed, parsed. */
  raw: Record<string, unknown>;
}

/** The readiness verdict the kubelet uses: a condition is satisfied only when present and true. */
export function conditionTrue(conditions: readonly RuntimeConditionInfo[], type: string): boolean {
  return conditions.some((c) => c.type === type && c.status);
}

export function parseCrictlInfo(output: string): CrictlInfo {
  // crictl may print logrus warnings (e.g. about default endpoints) before the JSON when
  // stderr is merged; start at the first line that opens an object.
  const text = output.replace(/\r/g, '');
  const start = text.search(/^\{/m);
  if (start < 0) throw new OutputParseError('crictl info', 'no JSON object');
  let doc: unknown;
  try {
    doc = JSON.parse(text.slice(start));
  } catch (e) {
    throw new OutputParseError('crictl info', `invalid JSON: ${(e as Error).message}`);
  }
  if (!isPlainObject(doc)) throw new OutputParseError('crictl info', 'top level is not an object');
  const status = doc.status;
  if (!isPlainObject(status) || !Array.isArray(status.conditions)) {
    throw new OutputParseError('crictl info', 'no status.conditions array');
  }
  const conditions: RuntimeConditionInfo[] = status.conditions.map((c: unknown, i: number) => {
    if (!isPlainObject(c) || typeof c.type !== 'string') throw new OutputParseError('crictl info', `condition ${i} has no type`);
    return {
      type: c.type,
      status: c.status === true || c.status === 'true',
      reason: typeof c.reason === 'string' ? c.reason : '',
      message: typeof c.message === 'string' ? c.message : '',
    };
  });
  return {
    conditions,
    runtimeReady: conditionTrue(conditions, 'RuntimeReady'),
    networkReady: conditionTrue(conditions, 'NetworkReady'),
    config: isPlainObject(doc.config) ? doc.config : null,
    raw: doc,
  };
}

// ---------------------------------------------------------------------------------------------
// containerd config dump

export interface EffectiveConfig {
  /** `version` of the dumped config: 2 for 1.x, 3 for 2.0–2.2, 4 for 2.3+. */
  configVersion: number;
  root: string;
  state: string;
  /** containerd's gRPC socket (`[grpc] address`, or the io.containerd.server.v1.grpc plugin in version 4). */
  grpcAddress: string;
  /** Runtime the CRI plugin uses for pods (`default_runtime_name`). */
  defaultRuntime: string;
  runtimeType: string | null;
  /** Whether the default runtime's runc is told to use the systemd cgroup driver. */
  /**
   * null when the dump can't tell: containerd 1.4 keeps runtime options undecoded and
   * prints the options table empty, whatever config.toml set.
   */
  systemdCgroup: boolean | null;
  sandboxImage: string | null;
  /** `config_path` as written; "" when unset. */
  registryConfigPath: string;
  /**
   * Directories the CRI plugin actually reads hosts.toml from, after containerd's own default
   * (2.2+: empty means /etc/containerd/certs.d:/etc/docker/certs.d when no mirrors are set).
   * Empty when hosts.toml is not used.
   */
  registryConfigDirs: string[];
  /** Old-style `registry.mirrors` entries are set (deprecated; conflicts with config_path). */
  registryMirrors: boolean;
  /** Snapshotter used for pods of the default runtime (runtime-level override, else the global one). */
  snapshotter: string;
  cniBinDirs: string[];
  cniConfDir: string | null;
  disabledPlugins: string[];
  /** Plugin tables the CRI values were read from. */
  criTables: string[];
}

export interface ParseConfigDumpOptions {
  /** The daemon's version; needed to apply 2.2's config_path default on version-3 configs. */
  containerdVersion?: string | Version;
}

type Table = Record<string, unknown>;

function tableAt(root: unknown, path: readonly string[]): Table | null {
  let cur: unknown = root;
  for (const k of path) {
    if (!isPlainObject(cur)) return null;
    cur = cur[k];
  }
  return isPlainObject(cur) ? cur : null;
}

function str(t: Table | null, key: string): string | null {
  const v = t?.[key];
  return typeof v === 'string' ? v : null;
}

function strList(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

const DEFAULT_ROOT = '/var/lib/containerd';
const DEFAULT_STATE = '/run/containerd';
const DEFAULT_ADDRESS = '/run/containerd/containerd.sock';
const DOCKER_COMPAT_CONFIG_PATH = '/etc/containerd/certs.d:/etc/docker/certs.d';

export function parseConfigDump(tomlText: string, opts: ParseConfigDumpOptions = {}): EffectiveConfig {
  let doc: Table;
  try {
    doc = parseToml(tomlText) as Table;
  } catch (e) {
    throw new OutputParseError('containerd config dump', (e as Error).message);
  }
  const plugins = tableAt(doc, ['plugins']) ?? {};
  const configVersion = typeof doc.version === 'number' ? doc.version : 1;

  const grpcV1Key = configVersion === 1 && isPlainObject(plugins['cri']) ? 'cri' : 'io.containerd.grpc.v1.cri';
  const legacy = tableAt(plugins, [grpcV1Key]);
  const runtimeTbl = tableAt(plugins, ['io.containerd.cri.v1.runtime']);
  const imagesTbl = tableAt(plugins, ['io.containerd.cri.v1.images']);
  // A dump is written in its daemon's own format, but a hand-written file may not be: read the
  // layout the version implies, and the other one if that is where the settings are.
  const split =
    configVersion >= 3 ? runtimeTbl !== null || imagesTbl !== null || legacy === null : legacy === null && (runtimeTbl !== null || imagesTbl !== null);

  let runtimeRoot: Table | null; // holds containerd.{default_runtime_name,runtimes,snapshotter} and cni
  let imagesRoot: Table | null; // holds registry, snapshotter (2.x) / sandbox image
  let sandboxImage: string | null;
  let criTables: string[];
  if (split) {
    runtimeRoot = runtimeTbl;
    imagesRoot = imagesTbl;
    sandboxImage = str(tableAt(imagesTbl, ['pinned_images']), 'sandbox');
    criTables = ['io.containerd.cri.v1.runtime', 'io.containerd.cri.v1.images'];
  } else {
    runtimeRoot = legacy;
    imagesRoot = legacy;
    sandboxImage = str(legacy, 'sandbox_image');
    criTables = [grpcV1Key];
  }

  const ctrd = tableAt(runtimeRoot, ['containerd']);
  const defaultRuntime = str(ctrd, 'default_runtime_name') || 'runc';
  const rt = tableAt(ctrd, ['runtimes', defaultRuntime]);
  const runtimeType = str(rt, 'runtime_type');
  const options = tableAt(rt, ['options']);
  // The 1.x io.containerd.runtime.v1.linux shim took the plugin-wide systemd_cgroup flag;
  // runc v2 shims read SystemdCgroup from the runtime's options.
  const systemdCgroup =
    runtimeType === 'io.containerd.runtime.v1.linux'
      ? legacy?.systemd_cgroup === true
      : options && Object.keys(options).length === 0
        ? null
        : options?.SystemdCgroup === true;

  const globalSnapshotter = (split ? str(imagesRoot, 'snapshotter') : str(ctrd, 'snapshotter')) || 'overlayfs';
  const snapshotter = str(rt, 'snapshotter') || globalSnapshotter;

  const registry = tableAt(imagesRoot, ['registry']);
  const registryConfigPath = str(registry, 'config_path') ?? '';
  const mirrors = tableAt(registry, ['mirrors']);
  const registryMirrors = mirrors !== null && Object.keys(mirrors).length > 0;
  let effectivePath = registryConfigPath;
  if (effectivePath === '' && !registryMirrors && appliesCertsDefault(configVersion, opts.containerdVersion)) {
    effectivePath = DOCKER_COMPAT_CONFIG_PATH;
  }

  const cni = tableAt(runtimeRoot, ['cni']);
  let cniBinDirs = strList(cni?.bin_dirs);
  if (cniBinDirs.length === 0) {
    const single = str(cni, 'bin_dir');
    if (single) cniBinDirs = [single];
  }

  const grpcPlugin = tableAt(plugins, ['io.containerd.server.v1.grpc']);
  const grpcAddress = str(grpcPlugin, 'address') || str(tableAt(doc, ['grpc']), 'address') || DEFAULT_ADDRESS;

  return {
    configVersion,
    root: str(doc, 'root') || DEFAULT_ROOT,
    state: str(doc, 'state') || DEFAULT_STATE,
    grpcAddress,
    defaultRuntime,
    runtimeType,
    systemdCgroup,
    sandboxImage,
    registryConfigPath,
    registryConfigDirs: effectivePath === '' ? [] : effectivePath.split(':').filter(Boolean),
    registryMirrors,
    snapshotter,
    cniBinDirs,
    cniConfDir: str(cni, 'conf_dir'),
    disabledPlugins: strList(doc.disabled_plugins),
    criTables,
  };
}

/** containerd 2.2 (from 2.2.0-rc.0) made an empty config_path mean the Docker-compatible certs.d directories. */
function appliesCertsDefault(configVersion: number, containerdVersion: string | Version | undefined): boolean {
  if (containerdVersion !== undefined) return compareVersions(containerdVersion, '2.2.0-rc.0') >= 0;
  return configVersion >= 4;
}
