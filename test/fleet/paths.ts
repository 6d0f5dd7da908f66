import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Several fleets can run side by side on one machine (HOIST_FLEET_INSTANCE=K, default 1): each has
 * its own state dir, inventory, subnet and names in the kernel-global namespaces, so one's cleanup
 * never touches another's hosts. Instance 1 keeps the original names. Caches stay shared.
 */
export const INSTANCE = fleetInstance(process.env.HOIST_FLEET_INSTANCE);

function fleetInstance(v: string | undefined): number {
  if (v === undefined || v === '') return 1;
  const n = Number(v);
  // The subnet is 10.(230+K).0.0/16, so K stops at 25.
  if (!/^\d+$/.test(v) || n < 1 || n > 25) throw new Error(`HOIST_FLEET_INSTANCE must be an integer from 1 to 25, got ${JSON.stringify(v)}`);
  return n;
}

const FIRST = INSTANCE === 1;

// Everything the fleet creates lives under these roots, so cleanup can find it by location alone.
export const FLEET_DIR = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = resolve(FLEET_DIR, '../..');
export const STATE_DIR = process.env.HOIST_FLEET_STATE ?? join(REPO_ROOT, FIRST ? '.fleet' : `.fleet-${INSTANCE}`);
export const CACHE_DIR = process.env.HOIST_FLEET_CACHE ?? '/var/cache/hoist-fleet';
/** The operator's setup: deploy with sudo, through the bastion. */
export const INVENTORY_PATH = join(REPO_ROOT, 'inventories', FIRST ? 'local.toml' : `local-${INSTANCE}.toml`);
/** Root straight to each host, for tests that exercise hoist without become or a jump host. */
export const ROOT_INVENTORY_PATH = join(REPO_ROOT, 'inventories', FIRST ? 'local-root.toml' : `local-root-${INSTANCE}.toml`);

export const HOSTS_DIR = join(STATE_DIR, 'hosts');
export const HOSTKEYS_DIR = join(STATE_DIR, 'hostkeys');
export const STATE_FILE = join(STATE_DIR, 'fleet.json');
export const IDENTITY_PATH = join(STATE_DIR, 'id_ed25519');
export const OPS_PASSWORD_PATH = join(STATE_DIR, 'ops-password');
export const KNOWN_HOSTS_PATH = join(STATE_DIR, 'known_hosts');
export const SERVER_PID_PATH = join(STATE_DIR, 'serve.pid');
export const SERVER_PORT_PATH = join(STATE_DIR, 'serve.port');
export const SERVER_LOG_PATH = join(STATE_DIR, 'serve.log');
export const SERVE_SCRIPT = join(FLEET_DIR, 'serve.ts');
/** Test CA, certificates, configs, storage and logs of the fleet's image registries. */
export const REGISTRIES_DIR = join(STATE_DIR, 'registries');

/** Names the harness owns in kernel-global namespaces (netns, links, cgroups); cleanup matches on them. */
export const CGROUP_PREFIX = FIRST ? 'hoist-fleet-' : `hoist-fleet${INSTANCE}-`;
export const VETH_PREFIX = FIRST ? 'hoist-' : `hoist${INSTANCE}-`;
export const NETNS_PREFIX = FIRST ? '' : `fleet${INSTANCE}-`;
export const SUBNET_PREFIX = `10.${230 + INSTANCE}`;
/** Host N's link is 10.(230+K).N.0/30, so the third octet bounds the fleet size. */
export const MAX_HOSTS = 250;
/** The bastion takes index 0, i.e. 10.(230+K).0.2; hosts are h1..hN. */
export const BASTION = 'bastion';
export const HOST_NAME_RE = /^(?:h([1-9][0-9]{0,2})|bastion)$/;

export function hostName(index: number): string {
  return index === 0 ? BASTION : `h${index}`;
}
/** The host's network namespace (/run/netns/<name>); the host itself is still called hN inside. */
export function netnsName(index: number): string {
  return `${NETNS_PREFIX}${hostName(index)}`;
}
export function hostAddress(index: number): string {
  return `${SUBNET_PREFIX}.${index}.2`;
}
export function hostGateway(index: number): string {
  return `${SUBNET_PREFIX}.${index}.1`;
}
export function hostIndex(name: string): number {
  const m = HOST_NAME_RE.exec(name);
  if (!m || Number(m[1] ?? 0) > MAX_HOSTS) throw new Error(`not a fleet host name: ${name}`);
  return m[1] === undefined ? 0 : Number(m[1]);
}
