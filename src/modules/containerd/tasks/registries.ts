import { readFile } from 'node:fs/promises';
import { s } from '../../../util/schema.js';
import { InputError } from '../../../util/errors.js';
import { armFilesRollback } from '../rollback.js';
import type { Action } from '../../../tasks/types.js';
import { containerdTask } from '../task.js';
import { previousVersion } from '../slots.js';
import { fileProbe, parseFileProbe, planFile, type DesiredFile } from '../../../tasks/lib/files.js';
import { renderAllHostsToml } from '../render.js';
import { registryFiles } from '../config/registry-paths.js';
import { resolveLocal } from '../../../tasks/lib/local-files.js';
import { REGISTRY_LIST } from '../paths.js';
import { quote } from '../../../ssh/quote.js';
import { fileRead } from '../../../facts/reads.js';
import path from 'node:path';

export default containerdTask({
  name: 'containerd_registries',
  summary: 'Registry mirrors and private registries: certs.d/<host>/hosts.toml plus the CA, client certificate and key files, pushed from the controller.',
  params: s.object({}),
  async prepare(_p, ctx): Promise<DesiredFile[]> {
    const st = ctx.settings;
    const files: DesiredFile[] = renderAllHostsToml(st.runtime).map((h) => ({
      path: h.path,
      content: Buffer.from(h.text),
      mode: h.secret ? 0o600 : 0o644,
      secret: h.secret,
    }));
    for (const f of registryFiles(st.runtime)) {
      const local = resolveLocal(f.source, ctx.controller.inventoryDir);
      let content: Buffer;
      try {
        content = await readFile(local);
      } catch {
        throw new InputError(`registries.${f.registry}: certificate or key file ${f.source} not found on the controller (looked at ${local})`);
      }
      files.push({ path: f.dest, content, mode: f.mode, secret: f.mode === 0o600 });
    }
    return files;
  },
  probes: (_p, ctx) => ({
    ...Object.fromEntries(ctx.prepared.map((f, i) => [`f${i}`, fileProbe(f.path, ctx.options.diff && !f.secret, f.secret)])),
    list: fileRead(REGISTRY_LIST, 'text'),
  }),
  plan(_p, ctx) {
    const actions: Action[] = [];
    ctx.prepared.forEach((f, i) => {
      const a = planFile(f, parseFileProbe(ctx.probe(`f${i}`)), ctx.state, ctx.options);
      if (a) actions.push(a);
    });
    // A registry taken out of the playbook must stop being used: hoist removes the files it wrote for it.
    const wanted = new Set(ctx.prepared.map((f) => f.path));
    const listed = parseFileProbe(ctx.probe('list'));
    const stale = (listed.content?.toString('utf8') ?? '')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.startsWith('/') && !wanted.has(l));
    if (stale.length) {
      const dirs = [...new Set(stale.map((f) => path.posix.dirname(f)))];
      actions.push({
        kind: 'change',
        summary: `remove ${stale.length} file(s) of registries no longer configured: ${dirs.join(', ')}`,
        run: (conn) =>
          conn
            .check(`rm -f ${stale.map(quote).join(' ')}\nrmdir ${dirs.map(quote).join(' ')} 2>/dev/null || true`, 'removing stale registry files')
            .then(() => undefined),
      });
    }
    const list = [...wanted]
      .sort()
      .map((f) => `${f}\n`)
      .join('');
    const listAction = planFile({ path: REGISTRY_LIST, content: Buffer.from(list), mode: 0o644, backup: false }, listed, ctx.state, ctx.options);
    // hoist's own bookkeeping: written in a real run, never shown as a change.
    if (listAction) actions.push({ kind: 'record', summary: `the registry files hoist manages (${wanted.size})`, run: listAction.run });
    if (actions.some((a) => a.kind === 'change')) armFilesRollback(ctx.state, previousVersion.peek(ctx.state), [...wanted, REGISTRY_LIST]);
    return { actions };
  },
});
