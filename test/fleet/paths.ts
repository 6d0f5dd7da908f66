import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// Everything the fleet creates lives under these roots, so cleanup can find it by location alone.
export const FLEET_DIR = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = resolve(FLEET_DIR, '../..');
export const STATE_DIR = process.env.HOIST_FLEET_STATE ?? join(REPO_ROOT, '.fleet');
export const CACHE_DIR = process.env.HOIST_FLEET_CACHE ?? '/var/cache/hoist-fleet';
export const INVENTORY_PATH = join(REPO_ROOT, 'inventories', 'local.toml');

export const HOSTS_DIR = join(STATE_DIR, 'hosts');
export const HOSTKEYS_DIR = join(STATE_DIR, 'hostkeys');
export const STATE_FILE = join(STATE_DIR, 'fleet.json');
export const IDENTITY_PATH = join(STATE_DIR, 'id_ed25519');
export const KNOWN_HOSTS_PATH = join(STATE_DIR, 'known_hosts');
export const SERVER_PID_PATH = join(STATE_DIR, 'serve.pid');
export const SERVER_PORT_PATH = join(STATE_DIR, 'serve.port');
export const SERVER_LOG_PATH = join(STATE_DIR, 'serve.log');
export const SERVE_SCRIPT = join(FLEET_DIR, 'serve.ts');

/** Names the harness owns in kernel-global namespaces (netns, links, cgroups); cleanup matches on them. */
export const CGROUP_PREFIX = 'hoist-fleet-';
export const VETH_PREFIX = 'hoist-';
export const SUBNET_PREFIX = '10.231';
export const HOST_NAME_RE = /^h([1-9][0-9]?)$/;

export function hostName(index: number): string {
  return `h${index}`;
}
export function hostAddress(index: number): string {
  return `${SUBNET_PREFIX}.${index}.2`;
}
export function hostGateway(index: number): string {
  return `${SUBNET_PREFIX}.${index}.1`;
}
export function hostIndex(name: string): number {
  const m = HOST_NAME_RE.exec(name);
  if (!m) throw new Error(`not a fleet host name: ${name}`);
  return Number(m[1]);
}
