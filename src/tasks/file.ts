import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { s } from '../util/schema.js';
import { InputError } from '../util/errors.js';
import { renderString } from '../util/template.js';
import { defineTask } from './types.js';
import type { Facts } from '../facts/facts.js';
import { fileProbe, parseFileProbe, planFile } from './lib/files.js';
import { resolveLocal } from './lib/local-files.js';

export const modeSchema = s.string(/^0?[0-7]{3,4}$/, 'an octal mode like "0644"');

export default defineTask({
  name: 'file',
  summary:
    'A file with given content, template or local source; mode and owner; atomic write, old file kept as .hoist-prev. Templates see the host variables and its facts (facts.osId, facts.arch, …).',
  params: s.object({
    path: s.string(/^\//, 'an absolute path'),
    content: s.string().optional(),
    template: s
      .string()
      .optional()
      .describe('nunjucks template rendered with the host variables and `facts` (osId, osVersion, arch, kernel, packageManager, cgroupVersion, …)'),
    src: s.string().optional().describe('file on the controller'),
    mode: modeSchema.default('0644'),
    owner: s.string().default('root'),
    group: s.string().optional(),
    backup: s.bool().default(true),
    secret: s
      .bool()
      .default(false)
      .describe('content holds credentials: diffs mask each credential value (password = "*** (secret 1)") and show nothing of a private key'),
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
    // Rendered here with placeholder facts, so a template error is bad input found before any host is
    // contacted; rendered again at plan time with the host's real facts.
    const where = `template ${path.basename(local)}`;
    await renderString(text.toString('utf8'), { ...ctx.vars, facts: placeholderFacts() }, where);
    return { template: text.toString('utf8'), where };
  },
  probes: (p, ctx) => ({ file: fileProbe(p.path, ctx.options.diff) }),
  async plan(p, ctx) {
    const prepared = ctx.prepared;
    const content = Buffer.isBuffer(prepared)
      ? prepared
      : Buffer.from(await renderString(prepared.template, { ...ctx.vars, facts: ctx.facts }, prepared.where));
    const action = planFile(
      { path: p.path, content, mode: parseInt(p.mode, 8), owner: p.owner, group: p.group, backup: p.backup, secret: p.secret },
      parseFileProbe(ctx.probe('file')),
      ctx.state,
      ctx.options,
    );
    return { actions: action ? [action] : [] };
  },
});

/** Every fact a template may read, with a value of the right type: enough to find template errors early. */
function placeholderFacts(): Facts {
  return {
    hostname: 'host',
    osId: 'linux',
    osIdLike: [],
    osVersion: '0',
    osPrettyName: 'Linux',
    arch: 'x86_64',
    kernel: '0',
    init: 'systemd',
    systemdState: 'running',
    packageManager: 'apt',
    cgroupVersion: 2,
    uid: 0,
    diskFreeKb: {},
    tools: {},
  };
}
