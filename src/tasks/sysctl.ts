import { s } from '../util/schema.js';
import { quote } from '../ssh/quote.js';
import type { ProbeResult } from '../facts/probe.js';
import { defineTask, type Action } from './types.js';
import { fileProbe, parseFileProbe, planFile } from './lib/files.js';
import { moduleForParameter } from './lib/kernel.js';
import { HostError } from '../util/errors.js';

const KEY = /^[a-z0-9_]+(?:\.[A-Za-z0-9_-]+)+$/;

/** The file under /proc/sys that holds a parameter (net.ipv4.ip_forward → /proc/sys/net/ipv4/ip_forward). */
export const procPath = (key: string) => `/proc/sys/${key.replace(/\./g, '/')}`;

/** The kernel prints multi-value parameters with tabs; compared and written with single spaces. */
export const normalize = (value: string | number) => String(value).trim().split(/\s+/).join(' ');

/** Each parameter's live value, or undefined where the running kernel has no such parameter. */
export function parseLive(r: ProbeResult, keys: readonly string[]): Map<string, string | undefined> {
  const live = new Map<string, string | undefined>(keys.map((k) => [k, undefined]));
  for (const line of r.out.split('\n')) {
    const m = /^live (\S+?)=(.*)$/.exec(line);
    if (m && live.has(m[1])) live.set(m[1], normalize(m[2]));
  }
  return live;
}

/** The drop-in as written: one `key = value` line per parameter, in the playbook's order. */
export function renderSysctlConf(name: string, settings: Record<string, string | number>): string {
  return [`# Managed by hoist (sysctl task "${name}").`, ...Object.entries(settings).map(([k, v]) => `${k} = ${normalize(v)}`), ''].join('\n');
}

export default defineTask({
  name: 'sysctl',
  summary: 'Kernel parameters set now and kept across reboots in /etc/sysctl.d/<name>.conf; only what differs is changed.',
  params: s.object({
    name: s.string(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'a file name without .conf').describe('drop-in /etc/sysctl.d/<name>.conf'),
    settings: s
      .record(s.union<string | number>('a number or a string', s.int(), s.string(/^[^\n\r]*\S[^\n\r]*$/, 'one line of text')))
      .describe('parameter = value, e.g. "net.ipv4.ip_forward" = 1'),
  }),
  probes: (p, ctx) => ({
    conf: fileProbe(`/etc/sysctl.d/${p.name}.conf`, ctx.options.diff),
    live:
      Object.keys(p.settings)
        .map((k) => `if [ -r ${quote(procPath(k))} ]; then v=; IFS= read -r v < ${quote(procPath(k))}; printf 'live %s=%s\\n' ${quote(k)} "$v"; fi`)
        .join('\n') + '\ntrue',
  }),
  plan(p, ctx) {
    const keys = Object.keys(p.settings);
    const bad = keys.filter((k) => !KEY.test(k));
    if (bad.length) throw new HostError(`not kernel parameter names: ${bad.join(', ')} (expected dotted names like net.ipv4.ip_forward)`);
    const read = parseLive(ctx.probe('live'), keys);
    // The host as earlier tasks leave it: a value another sysctl task sets, a parameter whose module a kernel_module task loads.
    const live = new Map([...read].map(([k, v]) => [k, ctx.state.sysctls.get(k) ?? v]));
    const coming = new Map(keys.filter((k) => live.get(k) === undefined).map((k) => [k, moduleForParameter(k)]));
    const missing = [...coming].filter(([, m]) => !m || !ctx.state.kernelModules.has(m)).map(([k]) => k);
    if (missing.length) {
      const fixes = [...new Set(missing.map(moduleForParameter).filter((m) => m !== undefined))];
      const fix = fixes.length ? `; it comes with the ${fixes.join(', ')} module: put a kernel_module task that loads it before this one` : '';
      throw new HostError(`this host's kernel has no parameter ${missing.join(', ')} (nothing under ${missing.map(procPath).join(', ')})${fix}`);
    }
    const actions: Action[] = [];
    const path = `/etc/sysctl.d/${p.name}.conf`;
    const file = planFile(
      { path, content: Buffer.from(renderSysctlConf(p.name, p.settings)), mode: 0o644 },
      parseFileProbe(ctx.probe('conf')),
      ctx.state,
      ctx.options,
    );
    if (file) actions.push(file);
    const differ = keys.filter((k) => live.get(k) !== normalize(p.settings[k]));
    for (const k of keys) ctx.state.sysctls.set(k, normalize(p.settings[k]));
    if (differ.length) {
      ctx.state.pending = true;
      const was = (k: string) => live.get(k) ?? `(appears once ${coming.get(k)} is loaded)`;
      actions.push({
        kind: 'change',
        summary: `set ${differ.map((k) => `${k} ${was(k)} → ${normalize(p.settings[k])}`).join(', ')}`,
        // Written to /proc/sys directly: the same on every distribution, with or without the sysctl binary.
        run: (conn) =>
          conn
            .check(differ.map((k) => `printf '%s\\n' ${quote(normalize(p.settings[k]))} > ${quote(procPath(k))}`).join('\n'), `setting ${differ.join(', ')}`)
            .then(() => undefined),
      });
    }
    return { actions };
  },
});
