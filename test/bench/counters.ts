/**
 * What a measured run cost outside the measured process, from kernel counters of this fleet instance:
 * - bytes the controller sent, on the controller's side of each veth pair. The hosts accept SSH only
 *   from the bastion, so everything hoist or OpenSSH sends goes out on the bastion's link; the hosts'
 *   links carry what the bastion forwards to them (routed through the controller) plus what the
 *   fleet's release mirror serves them;
 * - CPU time of the bastion and of all hosts (each machine's cgroup: sshd, sudo, tar, containerd…).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { BASTION, CGROUP_PREFIX, VETH_PREFIX } from '../fleet/paths.js';

export interface FleetCost {
  /** Controller → bastion: the SSH traffic of the measured tool (TCP/IP headers included). */
  toBastion: number;
  /** Controller → hosts: forwarded SSH from the bastion plus HTTP from the release mirror. */
  toHosts: number;
  bastionCpuS: number;
  hostsCpuS: number;
}

export interface Counters {
  tx: Map<string, number>;
  cpuNs: Map<string, number>;
}

function readNumber(file: string): number | undefined {
  try {
    return Number(readFileSync(file, 'utf8').trim());
  } catch {
    // A machine that went away between the listing and the read (a host being reset) counts nothing.
    return undefined;
  }
}

function list(dir: string, prefix: string): string[] {
  try {
    return readdirSync(dir).filter((n) => n.startsWith(prefix));
  } catch {
    return [];
  }
}

export function counters(): Counters {
  const tx = new Map<string, number>();
  for (const link of list('/sys/class/net', VETH_PREFIX)) {
    const v = readNumber(`/sys/class/net/${link}/statistics/tx_bytes`);
    if (v !== undefined) tx.set(link.slice(VETH_PREFIX.length), v);
  }
  const cpuNs = new Map<string, number>();
  for (const cg of list('/sys/fs/cgroup/cpuacct', CGROUP_PREFIX)) {
    const v = readNumber(`/sys/fs/cgroup/cpuacct/${cg}/cpuacct.usage`);
    if (v !== undefined) cpuNs.set(cg.slice(CGROUP_PREFIX.length), v);
  }
  return { tx, cpuNs };
}

export function costBetween(before: Counters, after: Counters): FleetCost {
  const c: FleetCost = { toBastion: 0, toHosts: 0, bastionCpuS: 0, hostsCpuS: 0 };
  for (const [name, v] of after.tx) {
    // A host booted in between starts from zero.
    const d = Math.max(0, v - (before.tx.get(name) ?? 0));
    if (name === BASTION) c.toBastion += d;
    else c.toHosts += d;
  }
  for (const [name, v] of after.cpuNs) {
    const d = Math.max(0, v - (before.cpuNs.get(name) ?? 0)) / 1e9;
    if (name === BASTION) c.bastionCpuS += d;
    else c.hostsCpuS += d;
  }
  return c;
}
