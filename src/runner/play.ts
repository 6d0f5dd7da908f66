import type { Inventory, InventoryHost, Vars } from '../inventory/inventory.js';
import { selectHosts } from '../inventory/inventory.js';
import { InputError, InputErrors } from '../util/errors.js';
import { didYouMean } from '../util/suggest.js';
import { substitute } from '../playbook/vars.js';
import { validateParams, type Playbook, type PlaybookTask } from '../playbook/playbook.js';
import { getTask } from '../tasks/registry.js';
import type { AnyTask } from '../tasks/types.js';

export interface HostTask {
  spec: PlaybookTask;
  def: AnyTask;
  params: Record<string, unknown>;
}

export interface HostPlay {
  host: InventoryHost;
  vars: Vars;
  tasks: HostTask[];
}

/**
 * Everything about a play that can be known without a host: which hosts, each host's variables
 * (precedence, lowest first: playbook defaults < inventory defaults < groups, parents first < host
 * < playbook vars < -e), and each task's parameters substituted and validated. Every error is
 * found here, so no run starts on bad input.
 */
export async function resolvePlay(inv: Inventory, pb: Playbook, extraVars: Vars, limit?: string): Promise<HostPlay[]> {
  const hosts = playHosts(inv, pb, limit);
  checkExtraVars(inv, pb, extraVars);
  const errors: InputError[] = [];
  const plays: HostPlay[] = [];
  for (const host of hosts) {
    const vars: Vars = { ...pb.defaults, ...host.vars, ...pb.vars, ...extraVars, inventory_hostname: host.name, inventory_address: host.address };
    const tasks: HostTask[] = [];
    for (const spec of pb.tasks) {
      try {
        const raw = await substitute(spec.params, vars, `${spec.file}:${spec.line ?? '?'} (task "${spec.title}", host ${host.name})`);
        tasks.push({ spec, def: getTask(spec.task)!, params: validateParams(spec, raw, host.name) as Record<string, unknown> });
      } catch (e) {
        if (e instanceof InputErrors) errors.push(...e.errors);
        else if (e instanceof InputError) errors.push(e);
        else throw e;
      }
    }
    plays.push({ host, vars, tasks });
  }
  if (errors.length) {
    // The same mistake usually repeats on every host; say it once.
    const unique = [...new Map(errors.map((e) => [e.message.replace(/host \S+\)/, 'host)'), e])).values()];
    throw unique.length === 1 ? unique[0] : new InputErrors(unique);
  }
  return plays;
}

/** The play's hosts, in inventory order: the playbook's `hosts`, narrowed by --limit. */
export function playHosts(inv: Inventory, pb: Playbook, limit?: string): InventoryHost[] {
  const hosts = selectHosts(inv, pb.hosts);
  if (!limit) return hosts;
  const allowed = new Set(selectHosts(inv, limit).map((h) => h.name));
  return hosts.filter((h) => allowed.has(h.name));
}

/** A -e variable nobody declares is almost always a typo; catching it beats silently ignoring it. */
function checkExtraVars(inv: Inventory, pb: Playbook, extra: Vars) {
  const known = new Set<string>([...Object.keys(pb.defaults), ...Object.keys(pb.vars)]);
  for (const h of inv.hosts) for (const k of Object.keys(h.vars)) known.add(k);
  for (const t of pb.tasks) for (const k of getTask(t.task)?.reads ?? []) known.add(k);
  const text = JSON.stringify(pb.tasks.map((t) => t.params));
  for (const k of Object.keys(extra)) {
    if (known.has(k) || text.includes(k)) continue;
    throw new InputError(`unknown variable "${k}" given with -e: neither the playbook nor the inventory uses it${didYouMean(k, known)}`);
  }
}
