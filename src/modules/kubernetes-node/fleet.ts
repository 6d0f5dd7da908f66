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
  check('product_uuid', 'a cloned VM keeps its source\'s; give each VM its own UUID', (f) => (f.productUuid ? [f.productUuid] : []));
  check('MAC address', 'a cloned VM keeps its source\'s; give each interface its own address', (f) => Object.values(f.macs ?? {}));
  return problems;
}
