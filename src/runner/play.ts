import path from 'node:path';
import type { Inventory, InventoryHost, Vars } from '../inventory/inventory.js';
import { selectHosts } from '../inventory/inventory.js';
import { InputError, InputErrors, formatLocation } from '../util/errors.js';
import { substitute } from '../util/template.js';
import { mergeLayers, type VarLayer } from '../util/var-layer.js';
import { validateParams, type Playbook, type PlaybookTask } from '../playbook/playbook.js';
import { describeCondition, meets } from '../playbook/condition.js';
import { didYouMean } from '../util/suggest.js';
import type { TaskCatalog } from '../tasks/catalog.js';
import type { AnyTask, TaskModule } from '../tasks/types.js';
import { checkHostVariables, collectProblems, siteVariables, templateNames, type VarProblem } from './variables.js';
import { addSecret } from '../util/redact.js';

export interface HostTask {
  spec: PlaybookTask;
  def: AnyTask;
  params: Record<string, unknown>;
  /** What the task's module made of this host's variables (undefined for the engine's own tasks). */
  settings: unknown;
  /** Why the task does not run on this host (its `hosts`, or a `when` on a variable), known before connecting. */
  skip?: string;
  module?: TaskModule;
}

export interface HostPlay {
  host: InventoryHost;
  vars: Vars;
  tasks: HostTask[];
  /** Where a variable's value was set, as a refusal names it: `-e`, `inventory host "h1" (inv.toml:12)`. */
  origin?(variable: string): string | undefined;
}

/**
 * Everything about a play that can be known without a host: which hosts, each host's variables
 * (precedence, lowest first: playbook defaults < inventory defaults < groups, parents first < host
 * < playbook vars < -e), checked against the modules' schemas, and each task's parameters
 * substituted and validated. Every error is found here, all at once, so no run starts on bad input.
 */
export async function resolvePlay(inv: Inventory, pb: Playbook, extra: Vars | VarLayer[], opts: { catalog: TaskCatalog; limit?: string }): Promise<HostPlay[]> {
  const hosts = playHosts(inv, pb, opts.limit);
  const extraLayers: VarLayer[] = Array.isArray(extra) ? extra : [{ name: '-e', vars: extra, lineOf: () => undefined }];
  const used = new Set<TaskModule>(pb.tasks.map((t) => opts.catalog.moduleOf(t.task)).filter((m): m is TaskModule => m !== undefined));
  const errors: InputError[] = [];
  const problems = new Map<string, VarProblem[]>();
  const plays: HostPlay[] = [];
  const site = new Set([...inv.declared, ...(await siteVariables(pb)).keys()]);
  const taskHosts = new Map<PlaybookTask, Set<string>>();
  for (const spec of pb.tasks) {
    if (!spec.hosts) continue;
    try {
      taskHosts.set(spec, new Set(selectHosts(inv, spec.hosts).map((h) => h.name)));
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      const bare = e.location ? e.message.slice(formatLocation(e.location).length + 2) : e.message;
      errors.push(
        new InputError(`${bare} in ${inv.file} (task "${spec.title}")`, {
          file: spec.file,
          line: spec.doc.locator.lineOf(['tasks', spec.index, 'hosts']),
          key: `tasks[${spec.index}].hosts`,
        }),
      );
    }
  }
  const moduleVars = new Set(opts.catalog.modules.flatMap((m) => Object.keys(m.variables)));
  for (const host of hosts) {
    const engine: VarLayer = { name: 'hoist', vars: { inventory_hostname: host.name, inventory_address: host.address }, lineOf: () => undefined };
    const layers = [...pb.defaultLayers, ...host.varLayers, ...pb.varLayers, ...extraLayers, engine];
    const checked = checkHostVariables(layers, pb, opts.catalog, used, site);
    problems.set(host.name, checked.problems);
    if (checked.problems.length) continue;
    const tasks: HostTask[] = [];
    for (const spec of pb.tasks) {
      const where = taskHosts.get(spec);
      if (where && !where.has(host.name)) {
        tasks.push({ spec, def: spec.def, params: {}, settings: undefined, skip: `skipped: not among the task's hosts (${spec.hosts!.join(', ')})` });
        continue;
      }
      const v = spec.when?.var;
      if (v !== undefined) {
        if (!(v in checked.vars) && !moduleVars.has(v) && !site.has(v)) {
          errors.push(
            new InputError(
              `when: unknown variable "${v}"${didYouMean(v, [...Object.keys(checked.vars), ...moduleVars, ...site])} (task "${spec.title}", host ${host.name})`,
              { file: spec.file, line: spec.doc.locator.lineOf(['tasks', spec.index, 'when', 'var']), key: `tasks[${spec.index}].when.var` },
            ),
          );
          continue;
        }
        if (!meets(spec.when!, checked.vars[v])) {
          tasks.push({
            spec,
            def: spec.def,
            params: {},
            settings: undefined,
            skip: `skipped: when ${describeCondition(spec.when!)} is false here (${v} = ${JSON.stringify(checked.vars[v] ?? null)})`,
          });
          continue;
        }
      }
      try {
        const raw = await substitute(spec.params, checked.vars, `${spec.file}:${spec.line ?? '?'} (task "${spec.title}", host ${host.name})`);
        const module = opts.catalog.moduleOf(spec.task);
        const params = validateParams(spec, raw, host.name) as Record<string, unknown>;
        // A variable that feeds a secret parameter is a secret itself, wherever else it shows up.
        if (params.secret === true)
          for (const name of referencedVariables(spec.params)) if (typeof checked.vars[name] === 'string') addSecret(checked.vars[name]);
        tasks.push({ spec, def: spec.def, params, settings: module && checked.settings.get(module), module });
      } catch (e) {
        if (e instanceof InputErrors) errors.push(...e.errors);
        else if (e instanceof InputError) errors.push(e);
        else throw e;
      }
    }
    const { source } = mergeLayers(layers);
    plays.push({ host, vars: checked.vars, tasks, origin: (v) => describeLayer(source.get(v), v) });
  }
  errors.unshift(...collectProblems(problems, hosts.length));
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

function referencedVariables(v: unknown): string[] {
  if (typeof v === 'string') return templateNames(v);
  if (Array.isArray(v)) return v.flatMap(referencedVariables);
  if (v && typeof v === 'object') return Object.values(v).flatMap(referencedVariables);
  return [];
}

function describeLayer(layer: VarLayer | undefined, variable: string): string | undefined {
  if (!layer) return undefined;
  const line = layer.file ? layer.lineOf([variable]) : undefined;
  return layer.file ? `${layer.name}, ${path.relative(process.cwd(), layer.file) || layer.file}${line ? `:${line}` : ''}` : layer.name;
}
