import { defaultsSchema, groupSchema, hostSchema } from '../inventory/schema.js';
import { hookSchema, playbookSchema } from '../playbook/playbook.js';
import type { TaskCatalog } from '../tasks/catalog.js';
import type { Schema } from '../util/schema.js';
import { ENVIRONMENT } from './environment.js';
import { paramDocs, taskDoc } from './task-doc.js';

/**
 * The reference, generated from the schemas hoist validates with, so it can't drift from them:
 * docs/reference.md is this text, and a unit test fails when the two differ (`npm run docs` rewrites it).
 */
export function referenceMarkdown(catalog: TaskCatalog): string {
  const out: string[] = [
    '# hoist reference',
    '',
    "Generated from hoist's own schemas by `npm run docs` (`hoist reference`); a test fails when this file is out of date.",
    '',
    '## Inventory',
    '',
    '### `[defaults]`',
    '',
    ...table(defaultsSchema.shape),
    '',
    '### `[groups.NAME]`',
    '',
    ...table(groupSchema.shape),
    '',
    '### `[hosts.NAME]`',
    '',
    ...table(hostSchema.shape),
    '',
    'Connection settings apply from the host, else its innermost group, else `[defaults]`, else `~/.ssh/config`.',
    'Variables: playbook `[defaults]` < inventory `[defaults.vars]` < groups (parents first) < host `vars` < playbook `[vars]` < `-e`.',
    '',
    '## Playbook',
    '',
    ...table(playbookSchema.shape),
    '',
    '### Hooks (`[[before_host]]`, `[[after_host]]`)',
    '',
    ...table(hookSchema.shape),
    '',
    '## Tasks',
    '',
  ];
  for (const name of catalog.names()) {
    const d = taskDoc(catalog, name);
    out.push(`### \`${name}\`${d.module ? ` (${d.module} module)` : ''}`, '', d.summary, '');
    if (d.params.length) out.push(...table(catalog.get(name)!.params.shape), '');
    out.push('```toml', d.example, '```', '');
  }
  for (const m of catalog.modules) {
    out.push(
      `## ${m.name} variables`,
      '',
      `Set in the playbook's \`[defaults]\`, the inventory, or with \`-e\`. Unknown variables are errors.`,
      '',
      ...table(m.variables),
      '',
    );
    // A variable holding tables (a registry, its mirrors) gets a table of their keys, from the same schema.
    for (const [name, schema] of Object.entries(m.variables)) {
      for (const t of schema.tables(name)) out.push(`### \`${t.at}\``, '', ...table(t.shape), '');
    }
  }
  out.push('## Environment', '', '| variable | meaning |', '| --- | --- |', ...ENVIRONMENT.map((e) => `| \`${e.name}\` | ${cell(e.meaning)} |`), '');
  out.push(
    '## Exit codes',
    '',
    '| code | meaning |',
    '| --- | --- |',
    '| 0 | all well |',
    '| 1 | bad input or usage: nothing was contacted |',
    '| 2 | a host failed, or is left drained (its after_host hooks owed) |',
    '| 3 | the controller could not prepare the run (a download, a checksum, the artifact cache): no host was changed |',
    '| 4 | a host was unreachable (and none failed otherwise) |',
    '',
  );
  return out.join('\n');
}

function table(shape: Record<string, Schema<unknown>>): string[] {
  return [
    '| key | type | default | meaning |',
    '| --- | --- | --- | --- |',
    ...paramDocs(shape).map(
      (p) =>
        `| \`${p.name}\`${p.required ? ' (required)' : ''} | ${cell(p.type)} | ${p.default === undefined ? '' : `\`${JSON.stringify(p.default)}\``} | ${cell(p.description)} |`,
    ),
  ];
}

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
