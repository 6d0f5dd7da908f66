import { s } from '../util/schema.js';
import { quote } from '../ssh/quote.js';
import { defineTask, type Action } from './types.js';
import { fileProbe, parseFileProbe, planFile } from './lib/files.js';
import { kernelName, moduleProbe, parseModuleProbe } from './lib/kernel.js';

/** The modules-load.d file as written: one module a line, in the playbook's order. */
export function renderModulesLoad(name: string, modules: readonly string[]): string {
  return [`# Managed by hoist (kernel_module task "${name}").`, ...modules, ''].join('\n');
}

export default defineTask({
  name: 'kernel_module',
  summary: 'Kernel modules present now (modprobe, unless loaded or built in) and at every boot (/etc/modules-load.d/<name>.conf).',
  params: s.object({
    name: s.string(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'a file name without .conf').describe('file /etc/modules-load.d/<name>.conf'),
    modules: s.list(s.string(/^[A-Za-z0-9][A-Za-z0-9_-]*$/, 'a kernel module name')).describe('module names, e.g. ["overlay", "br_netfilter"]; built-in ones are recognised and not loaded'),
  }),
  probes: (p, ctx) => ({
    conf: fileProbe(`/etc/modules-load.d/${p.name}.conf`, ctx.options.diff),
    mods: moduleProbe(p.modules),
  }),
  plan(p, ctx) {
    const have = parseModuleProbe(ctx.probe('mods'), p.modules);
    // modprobe comes with kmod: a host without it can still plan when an earlier task installs it.
    const kmodComing = ctx.state.packages.get('kmod') === 'present';
    const missing = p.modules.filter((m) => have.get(m) === 'missing');
    if (missing.length) throw new Error(`the kernel (${ctx.facts.kernel || 'unknown version'}) has no module ${missing.join(', ')}: not loaded, not built in, and modprobe does not find it`);
    const noTool = p.modules.filter((m) => have.get(m) === 'no-modprobe');
    if (noTool.length && !kmodComing) throw new Error(`${noTool.join(', ')} is neither loaded nor built in, and this host has no modprobe: install kmod (a package task before this one)`);
    const load = p.modules.filter((m) => have.get(m) === 'available' || have.get(m) === 'no-modprobe');
    const notes = p.modules.filter((m) => have.get(m) === 'builtin').map((m) => `${m}: built into the kernel, nothing to load`);
    for (const m of p.modules) ctx.state.kernelModules.add(kernelName(m));

    const actions: Action[] = [];
    const file = planFile({ path: `/etc/modules-load.d/${p.name}.conf`, content: Buffer.from(renderModulesLoad(p.name, p.modules)), mode: 0o644 }, parseFileProbe(ctx.probe('conf')), ctx.state, ctx.options);
    if (file) actions.push(file);
    if (load.length) {
      ctx.state.pending = true;
      actions.push({
        kind: 'change',
        summary: `load ${load.join(', ')} (modprobe)`,
        run: (conn) => conn.check(load.map((m) => `modprobe -- ${quote(m)}`).join(' && '), `loading ${load.join(', ')}`).then(() => undefined),
      });
    }
    return { actions, notes };
  },
});
