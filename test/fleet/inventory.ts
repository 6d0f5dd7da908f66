import type { FleetHost } from './hosts.js';

function q(s: string): string {
  return JSON.stringify(s);
}

export interface InventoryInput {
  hosts: FleetHost[];
  bastion: FleetHost;
  identityPath: string;
  knownHostsPath: string;
  mirrorUrl: string;
  port: number;
}

/**
 * hoist's inventory format; the controller reaches the mirror on loopback, each host via its own gateway.
 * `operator`: what an operator runs, deploy with sudo through the bastion (the hosts refuse deploy from
 * anywhere else). `root`: root straight to each host, for tests that exercise hoist without become or a jump.
 */
export function renderInventory(mode: 'operator' | 'root', o: InventoryInput): string {
  const connection = mode === 'operator' ? ['user = "deploy"', 'become = true', `jump = ${q(`deploy@${o.bastion.address}`)}`] : ['user = "root"'];
  const lines = [
    `# Written by test/fleet (npm run fleet -- up N); regenerated on every up. ${mode === 'operator' ? 'deploy via the bastion, sudo' : 'root, direct'}.`,
    '[defaults]',
    ...connection,
    `identity_file = ${q(o.identityPath)}`,
    `known_hosts_file = ${q(o.knownHostsPath)}`,
    '',
    '[defaults.vars]',
    `release_base_url = ${q(o.mirrorUrl)}`,
    '',
    '[groups.fleet]',
    `hosts = [${o.hosts.map((h) => q(h.name)).join(', ')}]`,
  ];
  for (const h of o.hosts) {
    lines.push(
      '',
      `[hosts.${h.name}]`,
      `address = ${q(h.address)}`,
      '',
      `[hosts.${h.name}.vars]`,
      `host_release_base_url = ${q(`http://${h.gateway}:${o.port}`)}`,
    );
  }
  return `${lines.join('\n')}\n`;
}
