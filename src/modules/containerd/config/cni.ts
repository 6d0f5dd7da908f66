/**
 * The CNI network hoist can write for a node without a cluster network plugin: one conflist with
 * a bridge (host-local addresses from one subnet, masqueraded outbound) and loopback. Kubelet
 * nodes normally get their network from the cluster's own CNI plugin, so this is off by default.
 */
import path from 'node:path';
import type { SettingsIssue } from '../../../tasks/types.js';
import { compareVersions, type Version } from '../version.js';

export type CniConflistKind = 'bridge';

export interface CniNetwork {
  kind: CniConflistKind;
  /** IPv4 network in CIDR form, normalised (`10.88.0.0/16`). */
  subnet: string;
}

export const DEFAULT_CNI_SUBNET = '10.88.0.0/16';

/**
 * The file name sorts before the `10-containerd-net.conflist` of the 1.x release bundle: containerd
 * uses the first network configuration in `cni_conf_dir`, and the operator who asked for this one
 * means it to be used.
 */
export const CNI_CONFLIST_NAME = '05-hoist-bridge.conflist';
/** A bridge of hoist's own, so a subnet change never meets an address the bundle's cni0 holds. */
export const CNI_BRIDGE = 'hoist0';
export const CNI_NETWORK_NAME = 'hoist-bridge';

export function cniConflistPath(confDir: string): string {
  return path.posix.join(confDir, CNI_CONFLIST_NAME);
}

function parseIpv4(s: string): number | null {
  const parts = s.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) <= 255)) return null;
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

function formatIpv4(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
}

/** Why `cidr` can't be the bridge's subnet, or null. host-local needs room for the gateway and a pod. */
export function cniSubnetProblem(cidr: string): string | null {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(cidr);
  const addr = m ? parseIpv4(m[1]) : null;
  if (!m || addr === null) return `${JSON.stringify(cidr)} is not an IPv4 network in CIDR form (e.g. "${DEFAULT_CNI_SUBNET}")`;
  const prefix = Number(m[2]);
  if (prefix < 8 || prefix > 29) return `/${prefix} is outside /8 to /29 (the bridge needs a gateway address and room for pods)`;
  const size = 2 ** (32 - prefix);
  if (addr % size !== 0) return `${JSON.stringify(cidr)} has host bits set; the network is ${formatIpv4(addr - (addr % size))}/${prefix}`;
  return null;
}

/** The bridge's own address, as host-local's isGateway gives it: the subnet's first address (`10.88.0.1/16`). */
export function cniGateway(net: CniNetwork): string {
  const [addr, prefix] = net.subnet.split('/');
  return `${formatIpv4((parseIpv4(addr) ?? 0) + 1)}/${prefix}`;
}

/**
 * Shell that deletes hoist's bridge when it holds an address other than this network's gateway:
 * the bridge plugin refuses to reuse a bridge with another subnet's address (after cni_subnet
 * changed), and nothing else removes it before a reboot. Without `net`, the bridge goes (removal).
 */
export function staleBridgeScript(net: CniNetwork | null): string {
  const drop = `ip link delete ${CNI_BRIDGE}`;
  if (!net) return `if command -v ip >/dev/null && ip link show ${CNI_BRIDGE} >/dev/null 2>&1; then ${drop}; fi`;
  return `if command -v ip >/dev/null && ip -4 -o addr show dev ${CNI_BRIDGE} 2>/dev/null | grep -q inet && ! ip -4 -o addr show dev ${CNI_BRIDGE} | grep -qF ' ${cniGateway(net)} '; then ${drop}; fi`;
}

/** The network the variables ask for (null: hoist writes none), reporting problems by variable. */
export function cniNetwork(vars: { cni_conflist?: string | false; cni_subnet?: string }, report: (issue: SettingsIssue) => void): CniNetwork | null {
  const subnet = vars.cni_subnet ?? DEFAULT_CNI_SUBNET;
  const problem = cniSubnetProblem(subnet);
  if (problem) {
    report({ path: ['cni_subnet'], message: problem });
    return null;
  }
  if (vars.cni_conflist !== 'bridge') return null;
  return { kind: 'bridge', subnet };
}

/**
 * The conflist as JSON, deterministic for one input. libcni of containerd before 1.6 reads CNI
 * spec versions up to 0.4.0; later releases (and the plugins they ship) speak 1.0.0.
 */
export function renderCniConflist(net: CniNetwork, containerd: Version): string {
  const cniVersion = compareVersions(containerd, '1.6.0') >= 0 ? '1.0.0' : '0.4.0';
  const doc = {
    cniVersion,
    name: CNI_NETWORK_NAME,
    plugins: [
      {
        type: 'bridge',
        bridge: CNI_BRIDGE,
        isGateway: true,
        ipMasq: true,
        ipam: { type: 'host-local', ranges: [[{ subnet: net.subnet }]], routes: [{ dst: '0.0.0.0/0' }] },
      },
      { type: 'loopback' },
    ],
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}
