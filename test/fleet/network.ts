import { existsSync } from 'node:fs';
import { HOST_NAME_RE, NETNS_PREFIX, SUBNET_PREFIX, VETH_PREFIX, hostAddress, hostGateway, hostName, netnsName } from './paths.js';
import { $ } from './sh.js';

/**
 * Host N lives in its own netns (`hN`; `fleetK-hN` for instance K), reached over a veth pair:
 * `hoist-hN` (`hoistK-hN`) with 10.(230+K).N.1/30 on the controller, `host0` with .2 inside.
 * The pair outlives stop/start so servers bound to the gateway keep working.
 */
export async function createHostNetwork(index: number): Promise<void> {
  const ns = netnsName(index);
  const veth = `${VETH_PREFIX}${hostName(index)}`;
  await $`ip netns add ${ns}`;
  await $`ip link add ${veth} type veth peer name host0 netns ${ns}`;
  await $`ip addr add ${hostGateway(index)}/30 dev ${veth}`;
  await $`ip link set ${veth} up`;
  await $`ip -n ${ns} link set lo up`;
  await $`ip -n ${ns} addr add ${hostAddress(index)}/30 dev host0`;
  await $`ip -n ${ns} link set host0 up`;
  await $`ip -n ${ns} route add default via ${hostGateway(index)}`;
}

/** Link state of the host's side: down makes the address silently unreachable, like a machine that died. */
export async function setHostLink(index: number, up: boolean): Promise<void> {
  const ns = netnsName(index);
  await $`ip -n ${ns} link set host0 ${up ? 'up' : 'down'}`;
  if (up) await $`ip -n ${ns} route replace default via ${hostGateway(index)}`;
}

export async function deleteHostNetwork(index: number): Promise<void> {
  const ns = netnsName(index);
  await $`ip link del ${VETH_PREFIX}${hostName(index)}`.nothrow();
  if (existsSync(`/run/netns/${ns}`)) await $`ip netns del ${ns}`;
}

/** Leftovers of any run of this instance, found by its naming (netns and link prefixes). */
export async function listFleetNetworks(): Promise<{ netns: string[]; links: string[] }> {
  const netns = (await $`ip netns list`.nothrow()).stdout
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter((n) => n.startsWith(NETNS_PREFIX) && HOST_NAME_RE.test(n.slice(NETNS_PREFIX.length)));
  const links = (await $`ip -o link show`).stdout
    .split('\n')
    .map((l) => /^\d+:\s+([^:@]+)/.exec(l)?.[1] ?? '')
    .filter((n) => n.startsWith(VETH_PREFIX) && HOST_NAME_RE.test(n.slice(VETH_PREFIX.length)));
  return { netns, links };
}

/** Addresses of this instance's subnet still configured on the controller. */
export async function listFleetAddresses(): Promise<string[]> {
  const re = new RegExp(`inet (${SUBNET_PREFIX.replace(/\./g, '\\.')}\\.\\d+\\.\\d+)`);
  return (await $`ip -o -4 addr show`).stdout.split('\n').map((l) => re.exec(l)?.[1]).filter((a): a is string => !!a);
}

export async function removeAllFleetNetworks(): Promise<void> {
  const { netns, links } = await listFleetNetworks();
  for (const l of links) await $`ip link del ${l}`.nothrow();
  for (const n of netns) await $`ip netns del ${n}`.nothrow();
}
