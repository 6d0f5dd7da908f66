import type { Facts } from '../../facts/facts.js';

/**
 * What only the whole fleet shows: kubeadm and the cluster tell nodes apart by hostname, MAC address
 * and product_uuid, and cloned VMs often share them
 * (https://kubernetes.io/docs/setup/production-environment/tools/kubeadm/install-kubeadm/#verify-mac-address).
 * Every host that shares a value with another is named, with the others.
 */
export function uniqueAcrossFleet(hosts: readonly { name: string; facts: Facts }[]): { host: string; problem: string }[] {
  const problems: { host: string; problem: string }[] = [];
  const check = (what: string, fix: string, values: (f: Facts) => string[]) => {
    const owners = new Map<string, string[]>();
    for (const h of hosts) for (const v of new Set(values(h.facts))) owners.set(v, [...(owners.get(v) ?? []), h.name]);
    for (const [v, names] of owners) {
      if (names.length < 2) continue;
      for (const n of names) problems.push({ host: n, problem: `${what} ${v} is also ${names.filter((o) => o !== n).join(', ')}'s: ${fix}` });
    }
  };
  check('hostname', 'give each node its own (hostnamectl set-hostname)', (f) => (f.hostname ? [f.hostname] : []));
  check('product_uuid', "a cloned VM keeps its source's; give each VM its own UUID", (f) => (f.productUuid ? [f.productUuid] : []));
  check('MAC address', "a cloned VM keeps its source's; give each interface its own address", (f) => Object.values(f.macs ?? {}));
  return [...problems, ...clockSkew(hosts)];
}

/** How far (s) a node's clock may stray from the fleet's before verify fails it. */
export const MAX_CLOCK_SKEW_S = 1;

const secs = (ms: number) => `${(Math.abs(ms) / 1000).toFixed(2)} s ${ms < 0 ? 'behind' : 'ahead of'}`;

/**
 * Clocks out of step: certificates kubeadm issues are refused by a node whose clock is before their
 * start, and leases and logs across nodes stop agreeing. Each host's offset against the controller
 * comes from the gathering round trip (facts/clock.ts), with its error bound; the reference is the
 * median of the controller's clock and every host's, so one wrong clock, the controller's included,
 * doesn't drag the others. A host is named only when its distance from the median exceeds the
 * threshold by more than its error bound: a slow round trip widens the bound, never raises a false alarm.
 */
export function clockSkew(hosts: readonly { name: string; facts: Facts }[], maxSkewS = MAX_CLOCK_SKEW_S): { host: string; problem: string }[] {
  const read = hosts.filter((h) => h.facts.clock).map((h) => ({ name: h.name, ...h.facts.clock! }));
  if (!read.length) return [];
  const all = [0, ...read.map((r) => r.offsetMs)].sort((a, b) => a - b);
  const mid = all.length >> 1;
  const median = all.length % 2 ? all[mid] : (all[mid - 1] + all[mid]) / 2;
  return read
    .filter((r) => Math.abs(r.offsetMs - median) - r.errorMs > maxSkewS * 1000)
    .map((r) => ({
      host: r.name,
      problem: `clock is ${secs(r.offsetMs - median)} the fleet's median (±${(r.errorMs / 1000).toFixed(2)} s; ${secs(r.offsetMs)} the controller's clock), more than ${maxSkewS} s: keep the clocks in step with NTP (timedatectl set-ntp true, or chrony)`,
    }));
}
