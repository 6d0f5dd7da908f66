import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'smol-toml';
import { InputError } from '../util/errors.js';
import { addSecret } from '../util/redact.js';
import { formatPath, parseWith, type Issue, type Path } from '../util/schema.js';
import { didYouMean, editDistance } from '../util/suggest.js';
import { mergeLayers, type VarLayer } from '../util/var-layer.js';
import { isPlainObject } from '../util/schema.js';
import type { Playbook } from '../playbook/playbook.js';
import type { TaskCatalog } from '../tasks/catalog.js';
import type { TaskModule } from '../tasks/types.js';

/** Variables hoist sets itself on every host. */
export const ENGINE_VARS: ReadonlySet<string> = new Set(['inventory_hostname', 'inventory_address']);

/** A problem with one host's variables, located in the layer that set the value. */
export interface VarProblem {
  error: InputError;
  /** The same problem on several hosts is reported once, naming them all. */
  key: string;
}

export interface CheckedVars {
  vars: Record<string, unknown>;
  /** Each module the play uses → what it made of this host's variables. */
  settings: Map<TaskModule, unknown>;
  problems: VarProblem[];
}

/**
 * The variables a playbook calls its own: those it sets in [defaults] or [vars] and those its task
 * parameters name in {{ }} or {% %}. Names are read whole, so `-e pull=1` is not taken for `pull_test`.
 */
export function declaredVariables(pb: Playbook): { declared: Set<string>; referenced: Set<string> } {
  const referenced = new Set<string>();
  const scan = (v: unknown): void => {
    if (typeof v === 'string') for (const name of templateNames(v)) referenced.add(name);
    else if (Array.isArray(v)) v.forEach(scan);
    else if (isPlainObject(v)) Object.values(v).forEach(scan);
  };
  for (const t of pb.tasks) scan(t.params);
  return { declared: new Set([...Object.keys(pb.defaults), ...Object.keys(pb.vars), ...referenced]), referenced };
}

/**
 * Variables other playbooks of the site declare: those beside the playbook being run (its folder),
 * each name with the first file that declares it. One inventory serves every playbook of a site, so a
 * variable another playbook reads is no mistake in this one's run. A file that isn't a readable
 * playbook is passed over: it is that playbook's run that reports it.
 */
export async function siteVariables(pb: Playbook): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let names: string[];
  try {
    names = (await readdir(pb.dir)).filter((n) => n.endsWith('.toml')).sort();
  } catch {
    return out;
  }
  for (const n of names) {
    const file = path.join(pb.dir, n);
    if (path.resolve(file) === path.resolve(pb.file)) continue;
    let data: Record<string, unknown>;
    try {
      data = parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    } catch {
      continue;
    }
    const found = new Set<string>();
    for (const key of ['defaults', 'vars']) if (isPlainObject(data[key])) for (const k of Object.keys(data[key])) found.add(k);
    const scan = (v: unknown): void => {
      if (typeof v === 'string') for (const name of templateNames(v)) found.add(name);
      else if (Array.isArray(v)) v.forEach(scan);
      else if (isPlainObject(v)) Object.values(v).forEach(scan);
    };
    if (Array.isArray(data.tasks)) for (const t of data.tasks) if (isPlainObject(t)) scan(t.params);
    for (const k of found) if (!out.has(k)) out.set(k, file);
  }
  return out;
}

const TEMPLATE_WORDS = new Set([
  'and',
  'or',
  'not',
  'in',
  'is',
  'if',
  'else',
  'elif',
  'endif',
  'for',
  'endfor',
  'set',
  'true',
  'false',
  'none',
  'null',
  'loop',
  'True',
  'False',
  'None',
]);

/** The variable names a template string reads: identifiers outside quotes, not after a dot or a filter bar. */
export function templateNames(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/\{\{([\s\S]*?)\}\}|\{%([\s\S]*?)%\}/g)) {
    const expr = (m[1] ?? m[2]).replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, ' ').replace(/\|\s*[A-Za-z_]\w*/g, ' ');
    for (const id of expr.matchAll(/(?<![.\w])([A-Za-z_]\w*)/g)) if (!TEMPLATE_WORDS.has(id[1])) out.push(id[1]);
  }
  return out;
}

/**
 * Checks one host's variables, before any connection: every variable must be known (to a module,
 * to the engine, or declared by the playbook), each module variable must fit its schema, and each
 * module the play uses must accept the whole of them. Every problem names the file, line, key and
 * layer that set the value.
 */
export function checkHostVariables(
  layers: readonly VarLayer[],
  pb: Playbook,
  catalog: TaskCatalog,
  used: ReadonlySet<TaskModule>,
  /** Declared elsewhere on the site: by the inventory (`declare`) or by another playbook beside this one. */
  site: ReadonlySet<string> = new Set(),
): CheckedVars {
  const { vars, source, layerOf } = mergeLayers(layers);
  for (const m of catalog.modules) for (const c of m.credentialsIn?.(vars) ?? []) addSecret(c);
  const problems: VarProblem[] = [];
  const report = (path: Path, message: string, layer: VarLayer | undefined) => {
    const where = layer?.file ? ` (set in ${layer.name})` : '';
    const file = layer?.file ?? layer?.name ?? pb.file;
    const loc = { file, line: layer?.lineOf(path), key: formatPath(path) };
    problems.push({ key: `${file}\0${loc.line}\0${loc.key}\0${message}`, error: new InputError(`${message}${where}`, loc) });
  };

  const moduleVars = new Map<string, TaskModule>();
  for (const m of catalog.modules) for (const k of Object.keys(m.variables)) moduleVars.set(k, m);
  const { declared, referenced } = declaredVariables(pb);
  const known = new Set<string>([...moduleVars.keys(), ...declared, ...ENGINE_VARS]);

  for (const [k, layer] of source) {
    if (site.has(k) && !known.has(k)) continue;
    if (!known.has(k)) {
      const hint = didYouMean(k, new Set([...known, ...site]));
      report(
        [k],
        `unknown variable ${JSON.stringify(k)}${hint || "; a playbook that uses it declares it in its [defaults] (a site variable no playbook reads: the inventory's [defaults] declare)"}`,
        layer,
      );
    } else if (!moduleVars.has(k) && !referenced.has(k) && !ENGINE_VARS.has(k)) {
      // A playbook's own variable that no task parameter reads and that is a letter or two off a
      // module's is a typo, not a declaration (templates may read others, so only near misses count).
      const near = [...moduleVars.keys()].find((m) => editDistance(k, m) <= 2);
      if (near) report([k], `${JSON.stringify(k)} is read by no task; did you mean "${near}"?`, layer);
    }
  }

  const settings = new Map<TaskModule, unknown>();
  for (const m of catalog.modules) {
    const issues: Issue[] = [];
    // Variables that fail their schema are left out of the settings pass, so it still reports what else is wrong.
    const usable: Record<string, unknown> = {};
    let complete = true;
    for (const [k, schema] of Object.entries(m.variables)) {
      if (vars[k] === undefined) {
        if (used.has(m) && !schema.isOptional) {
          issues.push({
            path: [k],
            message: `missing required variable "${k}" (${schema.description || m.name}); set it in the playbook's [defaults], the inventory or with -e`,
          });
          complete = false;
        }
        continue;
      }
      const own = parseWith(schema, vars[k], [k]).issues;
      issues.push(...own);
      // A table of independent entries (registries) keeps those without a problem, so the settings
      // pass still reports what else is wrong with them.
      const kept = own.length === 0 ? vars[k] : schema.salvage(vars[k], own, [k]);
      if (kept !== undefined) usable[k] = kept;
      else if (!schema.isOptional) complete = false;
    }
    if (complete && used.has(m)) {
      const before = issues.length;
      const value = m.settings(usable, (i) => issues.push(i));
      if (value !== undefined && issues.length === before && before === 0) settings.set(m, value);
    }
    for (const i of issues) report(i.path, i.message, layerOf(i.path));
  }
  return { vars, settings, problems };
}

/** One error per distinct problem, naming every host it concerns. */
export function collectProblems(byHost: Map<string, VarProblem[]>, hostCount: number): InputError[] {
  const seen = new Map<string, { error: InputError; hosts: string[] }>();
  for (const [host, problems] of byHost) {
    for (const p of problems) {
      const e = seen.get(p.key) ?? { error: p.error, hosts: [] };
      e.hosts.push(host);
      seen.set(p.key, e);
    }
  }
  return [...seen.values()].map(({ error, hosts }) => {
    const who = hosts.length === hostCount && hostCount > 1 ? 'every host' : `host${hosts.length > 1 ? 's' : ''} ${hosts.join(', ')}`;
    return new InputError(`${error.message} [${who}]`);
  });
}
