import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { s } from '../util/schema.js';
import { InputError } from '../util/errors.js';
import { renderString } from '../util/template.js';
import { defineTask } from './types.js';
import { fileProbe, parseFileProbe, planFile } from './lib/files.js';
import { resolveLocal } from './lib/local-files.js';

export const modeSchema = s.string(/^0?[0-7]{3,4}$/, 'an octal mode like "0644"');

export default defineTask({
  name: 'file',
  summary: 'A file with given content, template or local source; mode and owner; atomic write, old file kept as .hoist-prev.',
  params: s.object({
    path: s.string(/^\//, 'an absolute path'),
    content: s.string().optional(),
    template: s.string().optional().describe('nunjucks template rendered with the host variables'),
    src: s.string().optional().describe('file on the controller'),
    mode: modeSchema.default('0644'),
    owner: s.string().default('root'),
    group: s.string().optional(),
    backup: s.bool().default(true),
    secret: s.bool().default(false).describe('content holds credentials: never shown in diffs'),
  }),
  async prepare(p, ctx) {
    const given = [p.content, p.template, p.src].filter((x) => x !== undefined).length;
    if (given !== 1) throw new InputError(`file ${p.path}: give exactly one of content, template, src`);
    if (p.content !== undefined) return Buffer.from(p.content);
    const local = resolveLocal((p.template ?? p.src)!, ctx.controller.playbookDir);
    let text: Buffer;
    try {
      text = await readFile(local);
    } catch {
      throw new InputError(`file ${p.path}: cannot read ${local}`);
    }
    if (p.src) return text;
    return Buffer.from(await renderString(text.toString('utf8'), ctx.vars, `template ${path.basename(local)}`));
  },
  probes: (p, ctx) => ({ file: fileProbe(p.path, ctx.options.diff) }),
  plan(p, ctx) {
    const action = planFile(
      { path: p.path, content: ctx.prepared, mode: parseInt(p.mode, 8), owner: p.owner, group: p.group, backup: p.backup, secret: p.secret },
      parseFileProbe(ctx.probe('file')),
      ctx.state,
      ctx.options,
    );
    return { actions: action ? [action] : [] };
  },
});
