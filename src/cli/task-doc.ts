import type { TaskCatalog } from '../tasks/catalog.js';
import type { Schema } from '../util/schema.js';
import { color } from '../output/format.js';

export interface ParamDoc {
  name: string;
  type: string;
  required: boolean;
  default?: unknown;
  description: string;
}

export interface TaskDoc {
  name: string;
  /** The module the task belongs to; absent for the engine's own tasks. */
  module?: string;
  summary: string;
  params: ParamDoc[];
  /** A playbook entry using the task, with every required parameter. */
  example: string;
}

export function paramDocs(shape: Record<string, Schema<unknown>>): ParamDoc[] {
  return Object.entries(shape).map(([name, sch]) => ({
    name,
    type: sch.label(),
    required: !sch.isOptional,
    ...(sch.defaultValue !== undefined ? { default: sch.defaultValue } : {}),
    description: sch.description,
  }));
}

const PLACEHOLDER: Record<string, string> = { string: '"…"', integer: '0', boolean: 'true' };

export function taskDoc(catalog: TaskCatalog, name: string): TaskDoc {
  const t = catalog.get(name)!;
  const params = paramDocs(t.params.shape);
  const required = params.filter((p) => p.required);
  const example = [
    '[[tasks]]',
    `task = "${name}"`,
    ...(required.length
      ? [
          '[tasks.params]',
          ...required.map(
            (p) =>
              `${p.name} = ${PLACEHOLDER[p.type] ?? (p.type.startsWith('list') ? '[]' : p.type.startsWith('one of') ? p.type.replace(/^one of ("[^"]*").*$/, '$1') : '{}')}   # ${p.description || p.type}`,
          ),
        ]
      : []),
  ].join('\n');
  return { name, module: catalog.moduleOf(name)?.name, summary: t.summary, params, example };
}

export function formatTaskDoc(d: TaskDoc, full: boolean): string {
  const head = `${color.bold(d.name)}${d.module ? color.dim(` (${d.module} module)`) : ''}: ${d.summary}`;
  const params = d.params.map(
    (p) =>
      `  ${p.name}: ${p.type}${p.required ? ' (required)' : ''}${p.default !== undefined ? ` = ${JSON.stringify(p.default)}` : ''}${p.description ? ` — ${p.description}` : ''}`,
  );
  return [head, ...params, ...(full ? ['', 'example:', ...d.example.split('\n').map((l) => `  ${l}`)] : [])].join('\n');
}
