import path from 'node:path';
import { InputError, InputErrors } from '../util/errors.js';
import { readToml, validateToml, type LoadedToml } from '../util/toml-file.js';
import { s, type Infer, type Path, parseWith, formatPath } from '../util/schema.js';
import { didYouMean } from '../util/suggest.js';
import type { TaskCatalog } from '../tasks/catalog.js';
import type { AnyTask } from '../tasks/types.js';
import type { VarLayer } from '../util/var-layer.js';
import { conditionProblem, conditionSchema, type Condition } from './condition.js';

export const hookSchema = s.object({
  run: s.string().describe('shell command; sees HOIST_HOST (inventory name) and HOIST_ADDRESS (the address dialled)'),
  on: s.enum('controller', 'host').default('controller').describe('where the command runs: on the controller (bash) or on the host (as root under become)'),
  timeout: s.int(1, 86400).default(600).describe('seconds before the hook counts as failed'),
});

export const playbookSchema = s.object({
  name: s.string().optional().describe('shown in the output and the log'),
  extends: s.string().optional().describe('another playbook (relative path) whose defaults, vars, hooks and tasks this one starts from'),
  include: s
    .list(s.string())
    .optional()
    .describe(
      "playbooks (relative paths) whose tasks run first, in this order, before this playbook's own; their defaults and vars come along (a later one's over an earlier one's)",
    ),
  confirm: s.string().optional().describe('a question asked before anything changes (answered by --yes)'),
  hosts: s.list(s.string()).optional().describe('host patterns the play runs on (default all); --limit narrows them'),
  serial: s
    .union<number | string>('a host count or a percentage like "30%"', s.int(1), s.string(/^\d{1,3}%$/, 'a percentage like "30%"'))
    .optional()
    .describe('hosts per batch of a rolling run; a batch in which every host fails stops the roll-out'),
  restart_batch: s
    .union<number | string>('a host count or a percentage like "30%"', s.int(1), s.string(/^\d{1,3}%$/, 'a percentage like "30%"'))
    .optional()
    .describe(
      'hosts at once that restart a service already running (containerd under pods); default 1, "100%" for all at once. A host that fails stops the hosts still waiting. Hosts that only install or start go in parallel',
    ),
  max_fail_percentage: s.int(0, 100).optional().describe("stop the roll-out once more than this share of the play's hosts failed"),
  defaults: s.record(s.unknown()).optional().describe('variables at the lowest precedence: what the playbook assumes when nobody says otherwise'),
  vars: s.record(s.unknown()).optional().describe("variables above the inventory's, below -e"),
  replace_hooks: s
    .bool()
    .default(false)
    .describe(
      "with extends: this playbook's before_host and after_host lists replace the base playbook's (a list left out is empty) instead of being appended to them",
    ),
  before_host: s
    .array(hookSchema)
    .optional()
    .describe("hooks run before a host that will change (a drain); with extends, appended to the base playbook's unless replace_hooks"),
  after_host: s
    .array(hookSchema)
    .optional()
    .describe('hooks run after a changed host (an uncordon); also after a failure that left the host unchanged or rolled back'),
  tasks: s
    .array(
      s.object({
        name: s.string().optional().describe('title in the output (default: the task name)'),
        task: s.string().describe('a task name from `hoist tasks`'),
        params: s.record(s.unknown()).default({}).describe("the task's parameters; strings may use {{ variables }}"),
        hosts: s
          .list(s.string())
          .optional()
          .describe(
            "only on the play's hosts that match these patterns (the syntax of --limit: names, groups, globs, !exclude, &intersect); elsewhere skipped",
          ),
        when: conditionSchema
          .optional()
          .describe(
            'only where a fact or variable meets a test, e.g. { fact = "os_id", in = ["debian", "ubuntu"] } or { var = "node_role", equals = "gpu" }; elsewhere skipped',
          ),
      }),
    )
    .optional()
    .describe('what the play does, in order'),
});

export type PlaybookFile = Infer<typeof playbookSchema>;
export type Hook = Infer<typeof hookSchema>;

/** A hook as a playbook holds it: with the file and line that define it (a base playbook's, when inherited). */
export interface PlaybookHook extends Hook {
  file: string;
  line?: number;
}

export interface PlaybookTask {
  /** The playbook file that defines the task (a base playbook's, when inherited). */
  file: string;
  doc: LoadedToml;
  index: number;
  title: string;
  task: string;
  def: AnyTask;
  params: Record<string, unknown>;
  line?: number;
  /** Host patterns the task is limited to (the play's hosts otherwise). */
  hosts?: string[];
  when?: Condition;
}

export interface Playbook {
  file: string;
  dir: string;
  name: string;
  confirm?: string;
  hosts: string[];
  serial?: number | string;
  /** Hosts at once that restart a running service (unset: one). */
  restartBatch?: number | string;
  maxFailPercentage?: number;
  defaults: Record<string, unknown>;
  vars: Record<string, unknown>;
  /** Where `defaults` and `vars` were set, base playbooks first, for errors that name the line. */
  defaultLayers: VarLayer[];
  varLayers: VarLayer[];
  /** Base playbooks' hooks first, then this one's (unless replace_hooks). */
  beforeHost: PlaybookHook[];
  afterHost: PlaybookHook[];
  tasks: PlaybookTask[];
  doc: LoadedToml;
}

/** Loads a playbook (and the playbooks it extends), naming tasks from `catalog` only. */
export async function loadPlaybook(file: string, catalog: TaskCatalog, seen: string[] = []): Promise<Playbook> {
  const abs = path.resolve(file);
  if (seen.includes(abs)) throw new InputError(`playbooks extend or include each other in a cycle: ${[...seen, abs].join(' → ')}`);
  const doc = await readToml(file);
  const pb = validateToml(doc, playbookSchema);
  const base = pb.extends ? await loadPlaybook(path.resolve(path.dirname(abs), pb.extends), catalog, [...seen, abs]) : undefined;
  const included: Playbook[] = [];
  for (const inc of pb.include ?? []) included.push(await loadPlaybook(path.resolve(path.dirname(abs), inc), catalog, [...seen, abs]));
  const errors: InputError[] = [];
  (pb.tasks ?? []).forEach((t, i) => {
    if (!catalog.get(t.task)) {
      errors.push(
        new InputError(`unknown task "${t.task}"${didYouMean(t.task, catalog.names())}`, {
          file,
          line: doc.locator.lineOf(['tasks', i, 'task']),
          key: `tasks[${i}].task`,
        }),
      );
    }
    const bad = t.when && conditionProblem(t.when);
    if (bad) errors.push(new InputError(bad, { file, line: doc.locator.lineOf(['tasks', i, 'when']), key: `tasks[${i}].when` }));
  });
  if (errors.length) throw errors.length === 1 ? errors[0] : new InputErrors(errors);
  const own: PlaybookTask[] = (pb.tasks ?? []).map((t, i) => ({
    file,
    doc,
    index: i,
    title: t.name ?? t.task,
    task: t.task,
    def: catalog.get(t.task)!,
    params: t.params,
    line: doc.locator.lineOf(['tasks', i]),
    hosts: t.hosts,
    when: t.when,
  }));
  if (!base && own.length === 0 && included.length === 0)
    throw new InputError('a playbook needs at least one [[tasks]] entry (or extends = another playbook, or include = playbooks)', { file });
  const tasks = [...included.flatMap((p) => p.tasks), ...(own.length || !base ? own : base.tasks)];
  checkContracts(tasks, catalog);
  const ownHooks = (key: string, hooks: Hook[] | undefined): PlaybookHook[] =>
    (hooks ?? []).map((h, i) => ({ ...h, file, line: doc.locator.lineOf([key, i]) }));
  if (pb.replace_hooks && !base && !included.length)
    throw new InputError('replace_hooks only means something with extends or include', {
      file,
      line: doc.locator.lineOf(['replace_hooks']),
      key: 'replace_hooks',
    });
  // What an included playbook asks of a run (its question, its hooks, its pace) comes with its tasks:
  // including reset.toml must not drop its confirmation, nor a drain its uncordon.
  const fromIncluded = <K extends 'confirm' | 'serial' | 'restartBatch' | 'maxFailPercentage'>(k: K): Playbook[K] | undefined =>
    included.map((p) => p[k]).find((v) => v !== undefined);
  const inherited = (k: 'beforeHost' | 'afterHost') => (pb.replace_hooks ? [] : [...included.flatMap((p) => p[k]), ...(base?.[k] ?? [])]);
  const layer = (name: string, key: string, vars: Record<string, unknown> | undefined): VarLayer => ({
    name,
    file,
    vars: vars ?? {},
    lineOf: (p) => doc.locator.lineOf([key, ...p]),
  });
  return {
    file,
    dir: path.dirname(abs),
    name: pb.name ?? path.basename(file, '.toml'),
    confirm: pb.confirm ?? base?.confirm ?? fromIncluded('confirm'),
    hosts: pb.hosts ?? base?.hosts ?? ['all'],
    serial: pb.serial ?? base?.serial ?? fromIncluded('serial'),
    restartBatch: pb.restart_batch ?? base?.restartBatch ?? fromIncluded('restartBatch'),
    maxFailPercentage: pb.max_fail_percentage ?? base?.maxFailPercentage ?? fromIncluded('maxFailPercentage'),
    defaults: Object.assign({}, ...included.map((p) => p.defaults), base?.defaults, pb.defaults) as Record<string, unknown>,
    vars: Object.assign({}, ...included.map((p) => p.vars), base?.vars, pb.vars) as Record<string, unknown>,
    defaultLayers: [
      ...included.flatMap((p) => p.defaultLayers),
      ...(base?.defaultLayers ?? []),
      layer(`playbook defaults (${path.basename(file)})`, 'defaults', pb.defaults),
    ],
    varLayers: [...included.flatMap((p) => p.varLayers), ...(base?.varLayers ?? []), layer(`playbook vars (${path.basename(file)})`, 'vars', pb.vars)],
    // A child that adds a hook keeps its base's and its included playbooks' (theirs first): a drain
    // inherited from upgrade.toml can't silently disappear.
    beforeHost: [...inherited('beforeHost'), ...ownHooks('before_host', pb.before_host)],
    afterHost: [...inherited('afterHost'), ...ownHooks('after_host', pb.after_host)],
    // Inherited tasks keep the base file's positions, so their errors point at the right file.
    tasks,
    doc,
  };
}

/** Validates one task's parameters (after variable substitution) against the task's schema, naming file, line and key. */
export function validateParams(t: PlaybookTask, params: unknown, hostName: string): unknown {
  const def = t.def;
  const base: Path = ['tasks', t.index, 'params'];
  const { value, issues } = parseWith(def.params, params, base);
  if (issues.length) {
    throw new InputErrors(
      issues.map(
        (i) =>
          new InputError(`${i.message} (task "${t.title}", host ${hostName})`, {
            file: t.file,
            line: t.doc.locator.lineOf(i.path),
            key: formatPath(i.path),
          }),
      ),
    );
  }
  return value;
}

/**
 * Every value a task needs must be provided by a task before it: checked here, when the playbook
 * loads, rather than when the first host plans.
 */
export function checkContracts(tasks: readonly PlaybookTask[], catalog: TaskCatalog): void {
  const errors: InputError[] = [];
  const provided = new Set<string>();
  for (const t of tasks) {
    for (const need of t.def.needs ?? []) {
      if (provided.has(need.name)) continue;
      const by = catalog.providerOf(need.name);
      const later = tasks.find((o) => o.def.provides?.some((p) => p.name === need.name));
      const fix = later ? `move the "${later.title}" task before it` : by ? `add a ${by.name} task before it` : 'no task provides it';
      errors.push(
        new InputError(`task "${t.title}" (${t.task}) needs ${need.description}, which no earlier task provides: ${fix}`, {
          file: t.file,
          line: t.line,
          key: `tasks[${t.index}]`,
        }),
      );
    }
    for (const p of t.def.provides ?? []) provided.add(p.name);
  }
  if (errors.length) throw errors.length === 1 ? errors[0] : new InputErrors(errors);
}

/** Batches of hosts for `serial`: a count, or a percentage of the play's hosts (at least one). */
export function batchesOf<T>(hosts: T[], serial: number | string | undefined): T[][] {
  if (serial === undefined || hosts.length === 0) return [hosts];
  const size = typeof serial === 'number' ? serial : Math.max(1, Math.floor((hosts.length * Number(serial.slice(0, -1))) / 100));
  const out: T[][] = [];
  for (let i = 0; i < hosts.length; i += size) out.push(hosts.slice(i, i + size));
  return out;
}
