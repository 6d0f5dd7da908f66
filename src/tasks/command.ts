import { s } from '../util/schema.js';
import { quote } from '../ssh/quote.js';
import { defineTask } from './types.js';
import { HostError } from '../util/errors.js';

export default defineTask({
  name: 'command',
  summary: 'Runs a bash command; `creates` and `unless` make it idempotent.',
  params: s.object({
    cmd: s.string().describe('bash command line'),
    creates: s.string().optional().describe('skip when this path exists'),
    unless: s.string().optional().describe('skip when this read-only command exits 0 (run when the host is read, beside the other reads, with stdin empty)'),
    chdir: s.string().optional(),
  }),
  probes(p) {
    const out: Record<string, string> = {};
    if (p.creates) out.creates = `[ -e ${quote(p.creates)} ] && echo present || echo absent`;
    if (p.unless) out.unless = p.unless;
    return out;
  },
  plan(p, ctx) {
    // A path an earlier task of this run will create counts as present, as it will be by then.
    if (p.creates && (ctx.probe('creates').out.trim() === 'present' || ctx.state.files.has(p.creates))) return { actions: [] };
    if (p.unless && ctx.probe('unless').code === 0) return { actions: [] };
    ctx.state.pending = true;
    return {
      actions: [
        {
          kind: 'change',
          summary: `run: ${p.cmd.split('\n')[0].slice(0, 80)}`,
          async run(conn, actx) {
            const r = await conn.exec(p.chdir ? `cd ${quote(p.chdir)} && {\n${p.cmd}\n}` : p.cmd);
            actx.log.log(conn.endpoint.name, `command exit ${r.code}\n${r.stdout}${r.stderr}`);
            if (r.code !== 0) throw new HostError(`command exited ${r.code}: ${(r.stderr || r.stdout).trim().split('\n').slice(-5).join('\n')}`);
          },
        },
      ],
    };
  },
});
