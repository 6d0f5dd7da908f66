import type { Inventory, InventoryHost } from '../inventory/inventory.js';
import { selectHosts } from '../inventory/inventory.js';
import type { Playbook } from '../playbook/playbook.js';
import { checkHostVariables } from '../runner/variables.js';
import type { TaskCatalog } from '../tasks/catalog.js';
import { InputError } from '../util/errors.js';
import { didYouMean } from '../util/suggest.js';
import { redactDeep, maskVariables, isSecretName } from '../util/redact.js';
import { mergeLayers, type VarLayer } from '../util/var-layer.js';
import { formatLocation } from '../util/errors.js';

export interface HostSummary {
  name: string;
  address: string;
  groups: string[];
  user?: string;
  port?: number;
  become: boolean;
  becomeUser?: string;
  jump?: string;
}

export interface ResolvedVariable {
  value: unknown;
  /** The layer that set it, as errors name it: `inventory group "workers"`, `playbook defaults`, `-e`. */
  from: string;
  /** file:line where the value is written, when it comes from a file. */
  at?: string;
}

export interface HostDetail extends HostSummary {
  variables: Record<string, ResolvedVariable>;
}

export function summarize(h: InventoryHost): HostSummary {
  return {
    name: h.name,
    address: h.address,
    groups: h.groups,
    user: h.user,
    port: h.port,
    become: h.become,
    becomeUser: h.become ? h.becomeUser : undefined,
    jump: h.jump,
  };
}

/** The hosts a --limit selects (Ansible's --list-hosts), in inventory order. */
export function listHosts(inv: Inventory, limit: string | undefined, pb?: Playbook): HostSummary[] {
  const hosts = selectHosts(inv, pb?.hosts ?? 'all');
  const allowed = limit ? new Set(selectHosts(inv, limit).map((h) => h.name)) : undefined;
  return hosts.filter((h) => !allowed || allowed.has(h.name)).map(summarize);
}

/**
 * One host's variables as a run would see them (ansible-inventory --host), each with the layer it came
 * from: a playbook's defaults and vars when one is given, the inventory's layers, then -e.
 */
export function hostDetail(inv: Inventory, name: string, opts: { playbook?: Playbook; extra: VarLayer[]; catalog: TaskCatalog }): HostDetail {
  const host = inv.hosts.find((h) => h.name === name);
  if (!host)
    throw new InputError(
      `no host named "${name}" in ${inv.file}${didYouMean(
        name,
        inv.hosts.map((h) => h.name),
      )}`,
    );
  const layers = [...(opts.playbook?.defaultLayers ?? []), ...host.varLayers, ...(opts.playbook?.varLayers ?? []), ...opts.extra];
  if (opts.playbook) {
    // Lets each module register the secrets it recognises (registry passwords, derived auth) before printing.
    checkHostVariables(layers, opts.playbook, opts.catalog, new Set(opts.catalog.modules));
  }
  const { vars, source } = mergeLayers(layers);
  const variables: Record<string, ResolvedVariable> = {};
  for (const [k, v] of Object.entries(vars).sort(([a], [b]) => a.localeCompare(b))) {
    const layer = source.get(k)!;
    const line = layer.lineOf([k]);
    variables[k] = {
      value: isSecretName(k) ? '***' : maskVariables(v),
      from: layer.name,
      at: layer.file ? formatLocation({ file: layer.file, line }) : undefined,
    };
  }
  return redactDeep({ ...summarize(host), variables });
}

export function formatHostList(hosts: HostSummary[]): string {
  const lines = [`  hosts (${hosts.length}):`];
  for (const h of hosts) {
    const via = h.jump ? ` via ${h.jump}` : '';
    const who = `${h.user ?? '(ssh config)'}${h.become ? ` → ${h.becomeUser ?? 'root'}` : ''}`;
    lines.push(`    ${h.name.padEnd(16)} ${h.address.padEnd(20)} ${who}${via}${h.groups.length ? `  [${h.groups.join(', ')}]` : ''}`);
  }
  return lines.join('\n');
}

export function formatHostDetail(d: HostDetail): string {
  const lines = [
    `${d.name}: ${d.address}${d.port ? `:${d.port}` : ''}, user ${d.user ?? '(ssh config)'}${d.become ? `, become ${d.becomeUser}` : ''}${d.jump ? `, via ${d.jump}` : ''}`,
  ];
  if (d.groups.length) lines.push(`groups: ${d.groups.join(', ')}`);
  lines.push('variables (highest layer wins):');
  const width = Math.max(0, ...Object.keys(d.variables).map((k) => k.length));
  for (const [k, v] of Object.entries(d.variables)) {
    lines.push(`  ${k.padEnd(width)} = ${JSON.stringify(v.value)}   # ${v.from}${v.at ? ` (${v.at})` : ''}`);
  }
  return lines.join('\n');
}
