import type { FleetHost } from './hosts.js';

function q(s: string): string {
  return JSON.stringify(s);
}

/** hoist's inventory format; the controller reaches the mirror on loopback, each host via its own gateway. */
export function renderInventory(opts: { hosts: FleetHost[]; identityPath: string; knownHostsPath: string; mirrorUrl: string; port: number }): string {
  const lines = [
    '# Written by test/fleet (npm run fleet -- up N); regenerated on every up.',
    '[defaults]',
    'user = "root"',
    `identity_file = ${q(opts.identityPath)}`,
    `known_hosts_file = ${q(opts.knownHostsPath)}`,
    '',
    '[defaults.vars]',
    `release_base_url = ${q(opts.mirrorUrl)}`,
    '',
    '[groups.fleet]',
    `hosts = [${opts.hosts.map((h) => q(h.name)).join(', ')}]`,
  ];
  for (const h of opts.hosts) {
    lines.push('', `[hosts.${h.name}]`, `address = ${q(h.address)}`, '', `[hosts.${h.name}.vars]`, `host_release_base_url = ${q(`http://${h.gateway}:${opts.port}`)}`);
  }
  return `${lines.join('\n')}\n`;
}
