import os from 'node:os';
import type { Inventory, InventoryHost } from '../inventory/inventory.js';
import { InputError } from '../util/errors.js';
import type { LocatedSecretRef } from '../util/secret-ref.js';
import { parseJumpSpec, sshConfigFor } from './ssh-config.js';

/** Everything needed to reach one host and act on it, resolved from the inventory and ~/.ssh/config. */
export interface Endpoint {
  /** Inventory name (or a hop's description), used in messages. */
  name: string;
  host: string;
  port: number;
  user: string;
  identityFiles: string[];
  /** Offer only the configured identity files, also from the agent (OpenSSH's IdentitiesOnly). */
  identitiesOnly: boolean;
  /** The hop the connection goes through (itself possibly behind another hop). */
  jump?: Endpoint;
  /** A ProxyCommand (tokens expanded) whose stdio carries the connection. */
  proxyCommand?: string;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  /** The passphrase of the identity files, by reference from the inventory. */
  identityPassphrase?: LocatedSecretRef;
  /** Commands run as this user through sudo. */
  become?: { user: string; passwordFile?: string; password?: LocatedSecretRef };
}

export interface EndpointDefaults {
  connectTimeoutMs: number;
  commandTimeoutMs: number;
}

const MAX_HOPS = 8;

/** Inventory settings win over ~/.ssh/config, which wins over OpenSSH's own defaults — as with `ssh -o`. */
export async function endpointFor(host: InventoryHost, inv: Inventory, d: EndpointDefaults, depth = 0): Promise<Endpoint> {
  if (depth > MAX_HOPS) throw new InputError(`${host.name}: more than ${MAX_HOPS} jump hosts, or jump hosts that lead back to each other`);
  const cfg = await sshConfigFor(host.address, host.user);
  const user = host.user ?? cfg.user ?? os.userInfo().username;
  const ep: Endpoint = {
    name: host.name,
    host: cfg.hostName ?? host.address,
    port: host.port ?? cfg.port ?? 22,
    user,
    identityFiles: host.identityFile ? [host.identityFile] : cfg.identityFiles,
    identitiesOnly: cfg.identitiesOnly ?? false,
    identityPassphrase: host.identityPassphrase,
    connectTimeoutMs: (host.connectTimeout ?? 0) * 1000 || d.connectTimeoutMs,
    commandTimeoutMs: (host.commandTimeout ?? 0) * 1000 || d.commandTimeoutMs,
    become:
      host.become && user !== host.becomeUser ? { user: host.becomeUser, passwordFile: host.becomePasswordFile, password: host.becomePassword } : undefined,
  };
  const jumpSpec = host.jump ?? cfg.proxyJump;
  if (jumpSpec) ep.jump = await hopsFor(jumpSpec, host, inv, d, depth);
  else if (cfg.proxyCommand) ep.proxyCommand = cfg.proxyCommand;
  return ep;
}

/** "a,b,c": a is dialled first, the target is reached from c. Each hop may be an inventory host. */
async function hopsFor(spec: string, host: InventoryHost, inv: Inventory, d: EndpointDefaults, depth: number): Promise<Endpoint> {
  let prev: Endpoint | undefined;
  for (const hop of spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const named = inv.hosts.find((h) => h.name === hop);
    let ep: Endpoint;
    if (named) {
      ep = await endpointFor({ ...named, become: false }, inv, d, depth + 1);
      if (prev && !ep.jump) ep.jump = prev;
    } else {
      let parsed;
      try {
        parsed = parseJumpSpec(hop);
      } catch (e) {
        throw new InputError(`${host.name}: ${(e as Error).message}`);
      }
      const jc = await sshConfigFor(parsed.host, parsed.user);
      ep = {
        name: `jump host ${hop}`,
        host: jc.hostName ?? parsed.host,
        port: parsed.port ?? jc.port ?? 22,
        user: parsed.user ?? jc.user ?? host.user ?? os.userInfo().username,
        identityFiles: host.identityFile ? [host.identityFile, ...jc.identityFiles] : jc.identityFiles,
        identitiesOnly: jc.identitiesOnly ?? false,
        identityPassphrase: host.identityPassphrase,
        connectTimeoutMs: d.connectTimeoutMs,
        commandTimeoutMs: d.commandTimeoutMs,
        jump: prev,
      };
      if (!prev && jc.proxyJump) ep.jump = await hopsFor(jc.proxyJump, host, inv, d, depth + 1);
      else if (!prev && jc.proxyCommand) ep.proxyCommand = jc.proxyCommand;
    }
    prev = ep;
  }
  if (!prev) throw new InputError(`${host.name}: empty jump host list "${spec}"`);
  return prev;
}

/** user@host:port of each hop then the host itself, for messages. */
export function describeRoute(ep: Endpoint): string {
  const here = `${ep.user}@${ep.host}:${ep.port}`;
  return ep.jump ? `${describeRoute(ep.jump)} → ${here}` : ep.proxyCommand ? `ProxyCommand → ${here}` : here;
}
