import { s } from '../util/schema.js';
import { defineTask } from './types.js';
import { fileProbe, parseFileProbe, planFile } from './lib/files.js';
import { modeSchema } from './file.js';
import { textOf } from './swap.js';
import { HostError } from '../util/errors.js';

export interface LineEdit {
  line: string;
  regexp?: string;
  state: 'present' | 'absent';
}

/**
 * The file's text with the edit made, or the same text when it already holds. present: the last
 * line matching `regexp` becomes `line` (no match and no identical line: `line` is appended);
 * absent: every line matching `regexp` (or equal to `line`) goes.
 */
export function editLines(text: string, e: LineEdit): string {
  const re = e.regexp !== undefined ? new RegExp(e.regexp) : undefined;
  const ends = text.endsWith('\n');
  const lines = text === '' ? [] : (ends ? text.slice(0, -1) : text).split('\n');
  const matches = (l: string) => (re ? re.test(l) : l === e.line);
  let out: string[];
  if (e.state === 'absent') {
    out = lines.filter((l) => !matches(l));
  } else {
    let last = -1;
    if (re) lines.forEach((l, i) => (re.test(l) ? (last = i) : undefined));
    out = [...lines];
    if (last >= 0) out[last] = e.line;
    else if (!lines.includes(e.line)) out.push(e.line);
  }
  if (out.length === lines.length && out.every((l, i) => l === lines[i])) return text;
  return out.length ? `${out.join('\n')}\n` : '';
}

export default defineTask({
  name: 'line_in_file',
  summary: 'One line present in (or absent from) a text file, found by regexp; the rest of the file kept; atomic write.',
  params: s.object({
    path: s.string(/^\//, 'an absolute path'),
    line: s.string(/^[^\n\r]*$/, 'one line of text').describe('the line as it should read'),
    regexp: s
      .regexp()
      .optional()
      .describe('JavaScript regular expression for the line(s) to replace (present: the last match) or remove (absent); default: the line itself'),
    state: s.enum('present', 'absent').default('present'),
    create: s.bool().default(true).describe('create the file when missing (present only)'),
    mode: modeSchema.default('0644').describe('mode of a file this task creates; an existing file keeps its own'),
    owner: s.string().default('root').describe('owner of a file this task creates'),
  }),
  probes: (p) => ({ file: fileProbe(p.path, true) }),
  plan(p, ctx) {
    const have = parseFileProbe(ctx.probe('file'));
    // An earlier task of this plan that writes the same file hands over what it will hold.
    const planned = ctx.state.fileContents.get(p.path);
    const text = planned !== undefined ? planned.toString('utf8') : textOf(p.path, have);
    if (text === undefined && p.state === 'absent') return { actions: [] };
    if (text === undefined && !p.create) throw new HostError(`${p.path} does not exist (create = true makes it)`);
    const next = editLines(text ?? '', { line: p.line, regexp: p.regexp, state: p.state });
    if (text !== undefined && next === text) {
      if (planned === undefined) ctx.state.fileContents.set(p.path, Buffer.from(text));
      return { actions: [] };
    }
    const action = planFile(
      {
        path: p.path,
        content: Buffer.from(next),
        mode: have.exists ? (have.mode ?? 0o644) : parseInt(p.mode, 8),
        owner: have.exists ? have.owner : p.owner,
        group: have.exists ? have.group : undefined,
      },
      have,
      ctx.state,
      ctx.options,
    );
    return { actions: action ? [action] : [] };
  },
});
