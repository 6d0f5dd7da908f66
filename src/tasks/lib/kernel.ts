import { quote } from '../../ssh/quote.js';
import type { ProbeResult } from '../../facts/probe.js';
import { HostError } from '../../util/errors.js';

/**
 * Kernel modules as planning sees them. A module is present when it is loaded or built into the
 * kernel; modprobe is needed only for one that is neither. Built-ins are not always visible in
 * /sys/module (a built-in without parameters has no directory there) nor in modules.builtin (a
 * container sees the host's kernel without its /lib/modules, and no /sys/module of it), so a module
 * is also known by what it adds to the kernel: a filesystem in /proc/filesystems (overlay), the
 * parameters of a few others.
 */

/** How the host has a module: loaded (a loadable module in memory), builtin, available (modprobe can load it), or missing. */
export type ModuleState = 'loaded' | 'builtin' | 'available' | 'missing' | 'no-modprobe';

/** Module names as the kernel lists them under /sys/module: modprobe takes - and _ alike. */
export const kernelName = (m: string) => m.replace(/-/g, '_');

/** What a module adds to a running kernel, for modules hoist plans for whose built-in form leaves no trace in /sys/module. */
const MARKERS: Record<string, string> = {
  br_netfilter: '/proc/sys/net/bridge/bridge-nf-call-iptables',
  nf_conntrack: '/proc/sys/net/netfilter/nf_conntrack_max',
  ip_vs: '/proc/net/ip_vs',
};

/** Kernel parameters that exist only once a module is present: the module that brings each family. */
const PARAMETER_MODULES: readonly [RegExp, string][] = [
  [/^net\.bridge\./, 'br_netfilter'],
  [/^net\.netfilter\.nf_conntrack_/, 'nf_conntrack'],
  [/^net\.ipv4\.vs\./, 'ip_vs'],
];

/** The module whose loading makes a kernel parameter appear, if hoist knows one. */
export function moduleForParameter(key: string): string | undefined {
  return PARAMETER_MODULES.find(([re]) => re.test(key))?.[1];
}

/**
 * One snippet for every module: `mod NAME STATE` lines. Reads with bash builtins; grep runs only
 * for a module not in /sys/module, modprobe -n only for one that is not built in either.
 */
export function moduleProbe(modules: readonly string[]): string {
  const lines = [
    'read -r kr < /proc/sys/kernel/osrelease; b=/lib/modules/$kr/modules.builtin',
    "fs=; while IFS= read -r l; do fs+=\"${l#*$'\\t'}\"$'\\n'; done < /proc/filesystems",
    'm=; for c in /usr/sbin/modprobe /sbin/modprobe /usr/bin/modprobe /bin/modprobe; do if [ -x $c ]; then m=$c; break; fi; done',
  ];
  for (const raw of modules) {
    const k = kernelName(raw);
    const q = quote(raw);
    const marker = `${MARKERS[k] ? ` || [ -e ${quote(MARKERS[k])} ]` : ''} || [[ $'\\n'"$fs" == *$'\\n'${quote(k)}$'\\n'* ]]`;
    // A loadable module in memory has an initstate; a built-in one at most has parameters there.
    lines.push(
      `if [ -e /sys/module/${quote(k)}/initstate ]; then s=loaded` +
        `; elif [ -d /sys/module/${quote(k)} ]${marker} || { [ -f "$b" ] && grep -qE ${quote(`/${k.replace(/_/g, '[-_]')}\\.ko(\\.[a-z]+)?$`)} "$b"; }; then s=builtin` +
        `; elif [ -z "$m" ]; then s=no-modprobe` +
        `; elif "$m" -n -q ${q} 2>/dev/null; then s=available; else s=missing; fi; printf 'mod %s %s\\n' ${q} "$s"`,
    );
  }
  return lines.join('\n');
}

export function parseModuleProbe(r: ProbeResult, modules: readonly string[]): Map<string, ModuleState> {
  const out = new Map<string, ModuleState>();
  for (const line of r.out.split('\n')) {
    const m = /^mod (\S+) (loaded|builtin|available|missing|no-modprobe)$/.exec(line.trim());
    if (m) out.set(m[1], m[2] as ModuleState);
  }
  const unread = modules.filter((m) => !out.has(m));
  if (unread.length) throw new HostError(`could not read the state of kernel module ${unread.join(', ')}: ${r.out.trim() || `exit ${r.code}`}`);
  return out;
}
