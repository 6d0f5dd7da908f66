import { existsSync } from 'node:fs';
import { HOST_NAME_RE, VETH_PREFIX, hostAddress, hostGateway, hostName } from './paths.js';
import { $ } from './sh.js';

/**
 * Host N lives in netns hN, reached over a veth pair: `hoist-hN` (10.231.N.1/30) on the controller,
 * `host0` (10.231.N.2/30) inside. The pair outlives stop/start so servers bound to the gateway keep working.
 */
export async function createHostNetwork(index: number): Promise<void> {
  const ns = hostName(index);
  const veth = `${VETH_PREFIX}${ns}`;
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
  const ns = hostName(index);
  await $`ip -n ${ns} link set host0 ${up ? 'up' : 'down'}`;
  if (up) await $`ip -n ${ns} route replace default via ${hostGateway(index)}`;
}

export async function deleteHostNetwork(index: number): Promise<void> {
  const ns = hostName(index);
  await $`ip link del ${VETH_PREFIX}${ns}`.nothrow();
  if (existsSync(`/run/netns/${ns}`)) await $`ip netns del ${ns}`;
}

/** Leftovers of any run, found by the harness's naming (netns hN, links hoist-hN). */
export async function listFleetNetworks(): Promise<{ netns: string[]; links: string[] }> {
  const netns = (await $`ip netns list`.nothrow()).stdout
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter((n) => HOST_NAME_RE.test(n));
  const links = (await $`ip -o link show`).stdout
    .split('\n')
    .map((l) => /^\d+:\s+([^:@]+)/.exec(l)?.[1] ?? '')
    .filter((n) => n.startsWith(VETH_PREFIX) && HOST_NAME_RE.test(n.slice(VETH_PREFIX.length)));
  return { netns, links };
}

export async function removeAllFleetNetworks(): Promise<void> {
  const { netns, links } = await listFleetNetworks();
  for (const l of links) await $`ip link del ${l}`.nothrow();
  for (const n of netns) await $`ip netns del ${n}`.nothrow();
}
