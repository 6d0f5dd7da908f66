import { s } from '../util/schema.js';
import { quote } from '../ssh/quote.js';
import { defineTask, type Action, type PlanContext, type TaskPlan } from './types.js';
import { fileProbe, parseFileProbe, planFile } from './lib/files.js';
import { kernelName, moduleProbe, parseModuleProbe } from './lib/kernel.js';
import { HostError } from '../util/errors.js';

/** The modules-load.d file as written: one module a line, in the playbook's order. */
export function renderModulesLoad(name: string, modules: readonly string[]): string {
  return [header(name), ...modules, ''].join('\n');
}

const header = (name: string) => `# Managed by hoist (kernel_module task "${name}").`;

/** Each module's reference count (`use NAME N`; `-` where the kernel shows none), read with builtins. */
export function useProbe(modules: readonly string[]): string {
  return modules
    .map(
      (m) =>
        `rc=-; [ -r /sys/module/${quote(kernelName(m))}/refcnt ] && read -r rc < /sys/module/${quote(kernelName(m))}/refcnt; printf 'use %s %s\\n' ${quote(m)} "$rc"`,
    )
    .join('\n');
}

/**
 * state = "absent": a module loaded and used by nothing is unloaded (rmmod: the module alone, not
 * the dependencies modprobe -r would take along); one in use is left loaded, with a note; a
 * built-in can't be unloaded, and is noted as such. The modules-load.d file goes only when hoist
 * wrote it (its first line); another's file of that name is left in place, with a note.
 */
function planAbsent(p: { name: string; modules: string[] }, ctx: PlanContext<unknown, unknown>): TaskPlan {
  const path = `/etc/modules-load.d/${p.name}.conf`;
  const have = parseModuleProbe(ctx.probe('mods'), p.modules);
  const use = new Map([...ctx.probe('use').out.matchAll(/^use (\S+) (\S+)$/gm)].map((m) => [m[1], m[2]]));
  const notes: string[] = [];
  const unload: string[] = [];
  for (const m of p.modules) {
    const st = have.get(m);
    if (st === 'builtin') notes.push(`${m}: built into the kernel, which can't unload it (left as it is)`);
    else if (st === 'loaded') {
      const rc = use.get(m) ?? '-';
      if (rc !== '0') notes.push(`${m}: in use (${rc === '-' ? 'its use count unreadable' : `used ${rc} time(s)`}), left loaded`);
      else unload.push(m);
    }
  }
  for (const m of unload) ctx.state.kernelModules.delete(kernelName(m));
  const actions: Action[] = [];
  const file = parseFileProbe(ctx.probe('conf'));
  if (file.exists) {
    const ours = file.content?.toString('utf8').split('\n')[0] === header(p.name);
    if (!ours) notes.push(`${path} was not written by hoist: left in place`);
    else {
      ctx.state.pending = true;
      ctx.state.files.delete(path);
      ctx.state.fileContents.delete(path);
      ctx.state.changedFiles.add(path);
      actions.push({
        kind: 'change',
        summary: `remove ${path}`,
        run: (conn) => conn.check(`rm -f -- ${quote(path)}`, `removing ${path}`).then(() => undefined),
      });
    }
  }
  if (unload.length) {
    ctx.state.pending = true;
    actions.push({
      kind: 'change',
      summary: `unload ${unload.join(', ')} (rmmod)`,
      run: (conn) => conn.check(unload.map((m) => `rmmod -- ${quote(kernelName(m))}`).join(' && '), `unloading ${unload.join(', ')}`).then(() => undefined),
    });
  }
  return { actions, notes };
}

export default defineTask({
  name: 'kernel_module',
  summary:
    'Kernel modules present now (modprobe, unless loaded or built in) and at every boot (/etc/modules-load.d/<name>.conf); with state = "absent", unloaded where nothing uses them and the file hoist wrote removed.',
  params: s.object({
    name: s.string(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'a file name without .conf').describe('file /etc/modules-load.d/<name>.conf'),
    modules: s
      .list(s.string(/^[A-Za-z0-9][A-Za-z0-9_-]*$/, 'a kernel module name'))
      .describe('module names, e.g. ["overlay", "br_netfilter"]; built-in ones are recognised and not loaded'),
    state: s
      .enum('present', 'absent')
      .default('present')
      .describe('absent: unload each module nothing uses (built-ins and modules in use are left, with a note) and remove the file hoist wrote'),
  }),
  probes: (p, ctx) => ({
    // Removing the file needs its first line, to know hoist wrote it.
    conf: fileProbe(`/etc/modules-load.d/${p.name}.conf`, ctx.options.diff || p.state === 'absent'),
    mods: moduleProbe(p.modules),
    ...(p.state === 'absent' ? { use: useProbe(p.modules) } : {}),
  }),
  plan(p, ctx) {
    if (p.state === 'absent') return planAbsent(p, ctx);
    const have = parseModuleProbe(ctx.probe('mods'), p.modules);
    // modprobe comes with kmod: a host without it can still plan when an earlier task installs it.
    const kmodComing = ctx.state.packages.get('kmod') === 'present';
    const missing = p.modules.filter((m) => have.get(m) === 'missing');
    if (missing.length)
      throw new HostError(
        `the kernel (${ctx.facts.kernel || 'unknown version'}) has no module ${missing.join(', ')}: not loaded, not built in, and modprobe does not find it`,
      );
    const noTool = p.modules.filter((m) => have.get(m) === 'no-modprobe');
    if (noTool.length && !kmodComing)
      throw new HostError(`${noTool.join(', ')} is neither loaded nor built in, and this host has no modprobe: install kmod (a package task before this one)`);
    const load = p.modules.filter((m) => have.get(m) === 'available' || have.get(m) === 'no-modprobe');
    const notes = p.modules.filter((m) => have.get(m) === 'builtin').map((m) => `${m}: built into the kernel, nothing to load`);
    for (const m of p.modules) ctx.state.kernelModules.add(kernelName(m));

    const actions: Action[] = [];
    const file = planFile(
      { path: `/etc/modules-load.d/${p.name}.conf`, content: Buffer.from(renderModulesLoad(p.name, p.modules)), mode: 0o644 },
      parseFileProbe(ctx.probe('conf')),
      ctx.state,
      ctx.options,
    );
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
