import os from 'node:os';
import type { Inventory, InventoryHost } from '../inventory/inventory.js';
import { parseJumpSpec, sshConfigFor } from './ssh-config.js';
import type { Endpoint } from './connection.js';

export interface EndpointDefaults {
  connectTimeoutMs: number;
  commandTimeoutMs: number;
}

/** Inventory settings win over ~/.ssh/config, which wins over OpenSSH's own defaults — as with `ssh -o`. */
export async function endpointFor(host: InventoryHost, inv: Inventory, d: EndpointDefaults): Promise<Endpoint> {
  const cfg = await sshConfigFor(host.address);
  const jumpSpec = host.jump ?? cfg.proxyJump;
  let jump: Endpoint | undefined;
  if (jumpSpec) {
    const named = inv.hosts.find((h) => h.name === jumpSpec);
    if (named) jump = await endpointFor({ ...named, jump: undefined }, inv, d);
    else {
      // ProxyJump may chain hops with commas; the first hop is the bastion we dial.
      const spec = parseJumpSpec(jumpSpec.split(',')[0]);
      const jc = await sshConfigFor(spec.host);
      jump = {
        name: `${host.name} via ${spec.host}`,
        host: jc.hostName ?? spec.host,
        port: spec.port ?? jc.port ?? 22,
        user: spec.user ?? jc.user ?? host.user ?? os.userInfo().username,
        identityFiles: host.identityFile ? [host.identityFile, ...jc.identityFiles] : jc.identityFiles,
        connectTimeoutMs: d.connectTimeoutMs,
        commandTimeoutMs: d.commandTimeoutMs,
        become: false,
      };
    }
  }
  return {
    name: host.name,
    host: cfg.hostName ?? host.address,
    port: host.port ?? cfg.port ?? 22,
    user: host.user ?? cfg.user ?? os.userInfo().username,
    identityFiles: host.identityFile ? [host.identityFile] : cfg.identityFiles,
    jump,
    connectTimeoutMs: (host.connectTimeout ?? 0) * 1000 || d.connectTimeoutMs,
    commandTimeoutMs: (host.commandTimeout ?? 0) * 1000 || d.commandTimeoutMs,
    become: host.become,
  };
}
