import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { HOST_NAME_RE, INSTANCE, NETNS_PREFIX, SUBNET_PREFIX, VETH_PREFIX, hostAddress, hostGateway, hostName, netnsName } from './paths.js';
import { $, log } from './sh.js';

/**
 * The bastion (index 0) is wired like any host; the controller forwards between the fleet's links,
 * so the bastion (and every host) reaches every other host of its instance through the controller.
 *
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
  return (await $`ip -o -4 addr show`).stdout
    .split('\n')
    .map((l) => re.exec(l)?.[1])
    .filter((a): a is string => !!a);
}

export async function removeAllFleetNetworks(): Promise<void> {
  const { netns, links } = await listFleetNetworks();
  for (const l of links) await $`ip link del ${l}`.nothrow();
  for (const n of netns) await $`ip netns del ${n}`.nothrow();
}

// ip_forward is machine-wide while fleets come and go per instance: the value found before the first
// fleet turned it on is kept here (in /run, which a reboot clears along with the sysctl) and put
// back by the last fleet to go down, whichever instance that is.
const FORWARD_SAVED = '/run/hoist-fleet/ip_forward.saved';
const IP_FORWARD = '/proc/sys/net/ipv4/ip_forward';
const SUBNET = `${SUBNET_PREFIX}.0.0/16`;
// Rule priorities of this instance, below the main table's 32766 and distinct per instance.
const RULE_PREF_FLEET = 30000 + 2 * INSTANCE;
const RULE_PREF_BLOCK = RULE_PREF_FLEET + 1;

/**
 * Forwarding for the bastion topology. Turning on ip_forward would also forward the hosts' traffic
 * to anywhere the controller routes (they have a default route via their gateway); two policy rules
 * keep them inside their own subnet: fleet-to-fleet uses the main table, anything else from the
 * subnet is unreachable, as it was before forwarding.
 */
export async function enableForwarding(): Promise<{ previous: string; changed: boolean }> {
  await removeForwardingRules();
  await $`ip rule add pref ${RULE_PREF_FLEET} from ${SUBNET} to ${SUBNET} lookup main`;
  await $`ip rule add pref ${RULE_PREF_BLOCK} from ${SUBNET} unreachable`;
  const previous = readFileSync(IP_FORWARD, 'utf8').trim();
  if (previous === '1') return { previous, changed: false };
  mkdirSync(dirname(FORWARD_SAVED), { recursive: true });
  if (!existsSync(FORWARD_SAVED)) writeFileSync(FORWARD_SAVED, `${previous}\n`);
  try {
    writeFileSync(IP_FORWARD, '1');
  } catch (e) {
    throw new Error(
      `the bastion needs the controller to route between host links, but net.ipv4.ip_forward could not be set to 1: ${String(e)}; as root: sysctl -w net.ipv4.ip_forward=1`,
    );
  }
  log(`net.ipv4.ip_forward: ${previous} → 1 (bastion routes to the hosts through the controller); restored at down`);
  return { previous, changed: true };
}

async function removeForwardingRules(): Promise<void> {
  for (const pref of [RULE_PREF_FLEET, RULE_PREF_BLOCK]) {
    while ((await $`ip rule del pref ${pref}`.nothrow()).exitCode === 0) {
      /* one rule per call; duplicates from crashed runs too */
    }
  }
}

/** This instance's policy rules still present. */
export async function listForwardingRules(): Promise<string[]> {
  return (await $`ip rule show`).stdout.split('\n').filter((l) => l.startsWith(`${RULE_PREF_FLEET}:`) || l.startsWith(`${RULE_PREF_BLOCK}:`));
}

/** Remove this instance's rules; put ip_forward back once no fleet of any instance still has a bastion. */
export async function restoreForwarding(): Promise<void> {
  await removeForwardingRules();
  if (!existsSync(FORWARD_SAVED)) return;
  const others = (await $`ip netns list`.nothrow()).stdout
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter((n) => /^(fleet\d+-)?bastion$/.test(n) && n !== netnsName(0));
  if (others.length) return;
  const saved = readFileSync(FORWARD_SAVED, 'utf8').trim();
  if (/^[01]$/.test(saved) && readFileSync(IP_FORWARD, 'utf8').trim() !== saved) {
    writeFileSync(IP_FORWARD, saved);
    log(`net.ipv4.ip_forward: restored to ${saved}`);
  }
  rmSync(FORWARD_SAVED, { force: true });
}
