import type { Facts } from '../facts/facts.js';
import { s, type Infer } from '../util/schema.js';
import { didYouMean } from '../util/suggest.js';

/**
 * A task's `when`: one fact or one variable compared with a value or a list. Kept to this one shape
 * so it can be checked whole before any host is touched: the fact must be one hoist gathers, the
 * variable one the host has or a module declares.
 */
export const conditionSchema = s.object({
  fact: s.string().optional().describe('a fact hoist gathers: os_id, os_id_like, os_version, arch, kernel, init, package_manager, cgroup_version, hostname'),
  var: s
    .string(/^[A-Za-z_]\w*$/, 'a variable name')
    .optional()
    .describe('a variable of the host'),
  equals: s.union<string | number | boolean>('a string, number or boolean', s.string(), s.int(), s.bool()).optional(),
  in: s.array(s.union<string | number | boolean>('a string, number or boolean', s.string(), s.int(), s.bool())).optional(),
  not_in: s.array(s.union<string | number | boolean>('a string, number or boolean', s.string(), s.int(), s.bool())).optional(),
});

export type Condition = Infer<typeof conditionSchema>;
type Scalar = string | number | boolean;

/** The facts a condition may name, as the playbook spells them. */
export const CONDITION_FACTS: Record<string, (f: Facts) => Scalar | Scalar[]> = {
  os_id: (f) => f.osId,
  os_id_like: (f) => f.osIdLike,
  os_version: (f) => f.osVersion,
  arch: (f) => f.arch,
  kernel: (f) => f.kernel,
  init: (f) => f.init,
  package_manager: (f) => f.packageManager,
  cgroup_version: (f) => f.cgroupVersion,
  hostname: (f) => f.hostname,
};

/** What is wrong with a condition's shape (not its variable, which needs the host's variables), or undefined. */
export function conditionProblem(c: Condition): string | undefined {
  if ((c.fact === undefined) === (c.var === undefined)) return 'a condition names exactly one of fact or var';
  const tests = [c.equals, c.in, c.not_in].filter((x) => x !== undefined).length;
  if (tests !== 1) return 'a condition has exactly one of equals, in or not_in';
  if (c.fact !== undefined && !(c.fact in CONDITION_FACTS))
    return `unknown fact "${c.fact}"${didYouMean(c.fact, Object.keys(CONDITION_FACTS))}; facts are ${Object.keys(CONDITION_FACTS).join(', ')}`;
  return undefined;
}

/** The subject's value (a list matches when any of its items does), for the recap. */
export function describeCondition(c: Condition): string {
  const what = c.fact !== undefined ? `fact ${c.fact}` : `variable ${c.var}`;
  if (c.equals !== undefined) return `${what} == ${JSON.stringify(c.equals)}`;
  if (c.in !== undefined) return `${what} in ${JSON.stringify(c.in)}`;
  return `${what} not in ${JSON.stringify(c.not_in)}`;
}

/** Whether the value meets the condition; a list value meets it when any item does (os_id_like). */
export function meets(c: Condition, value: unknown): boolean {
  const items = Array.isArray(value) ? value : [value];
  const eq = (a: unknown, b: unknown) => a === b || (typeof a !== 'object' && String(a) === String(b));
  if (c.equals !== undefined) return items.some((v) => eq(v, c.equals));
  if (c.in !== undefined) return items.some((v) => c.in!.some((x) => eq(v, x)));
  return !items.some((v) => c.not_in!.some((x) => eq(v, x)));
}

/** Undefined when the facts meet the condition, else why the task is skipped. */
export function factSkip(c: Condition, facts: Facts): string | undefined {
  const value = CONDITION_FACTS[c.fact!](facts);
  return meets(c, value) ? undefined : `skipped: when ${describeCondition(c)} is false here (${c.fact} = ${JSON.stringify(value)})`;
}
