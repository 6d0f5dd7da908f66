import { s } from '../../../util/schema.js';
import { quote } from '../../../ssh/quote.js';
import { nodeTask } from '../task.js';
import { procPath, normalize } from '../../../tasks/sysctl.js';
import type { NodeSettings } from '../settings.js';

/**
 * The checks kubeadm's preflight makes of a joining node that hoist can make without kubeadm:
 * no active swap, the node's kernel parameters, the ports the kubelet needs free, the commands it
 * runs, a hostname that resolves. One read-only script; judge() is pure.
 */
export function preflightScript(st: NodeSettings): string {
  const lines = [
    `{ read -r _; while read -r f _; do echo "swap=$f"; done; } < /proc/swaps`,
    ...Object.keys(st.sysctls).map((k) => `v=absent; [ -r ${quote(procPath(k))} ] && IFS= read -r v < ${quote(procPath(k))}; printf 'sysctl %s=%s\\n' ${quote(k)} "$v"`),
    // Listening TCP sockets (state 0A) from /proc/net: the local port is the hex after the colon.
    `for t in /proc/net/tcp /proc/net/tcp6; do [ -r $t ] && while read -r _ l _ st _; do [ "$st" = 0A ] && echo "listen=$((16#\${l##*:}))"; done < $t; done`,
    ...st.commands.map((c) => `if command -v ${quote(c)} >/dev/null || [ -x /usr/sbin/${c} ] || [ -x /sbin/${c} ]; then echo "cmd ${c}=yes"; else echo "cmd ${c}=no"; fi`),
    `read -r hn < /proc/sys/kernel/hostname; if getent hosts "$hn" >/dev/null; then echo "hostname=$hn resolves"; else echo "hostname=$hn unresolved"; fi`,
  ];
  return lines.join('\n');
}

export interface PreflightOutcome {
  lines: string[];
  problems: string[];
}

/** Each failed check names what is wrong and the fix. */
export function judge(st: NodeSettings, out: string): PreflightOutcome {
  const problems: string[] = [];
  const lines: string[] = [];
  const all = (re: RegExp) => [...out.matchAll(re)];
  const swaps = all(/^swap=(.+)$/gm).map((m) => m[1]);
  if (swaps.length) problems.push(`swap is on (${swaps.join(', ')}): the kubelet fails with swap on; run the swap task (swapoff, fstab)`);
  for (const [k, want] of Object.entries(st.sysctls)) {
    const have = /^sysctl (\S+)=(.*)$/gm;
    const found = [...out.matchAll(have)].find((m) => m[1] === k)?.[2];
    if (found === undefined || found === 'absent') problems.push(`${k} does not exist on this kernel: load the module that brings it (kernel_module)`);
    else if (normalize(found) !== normalize(want)) problems.push(`${k} is ${normalize(found)}, a node needs ${normalize(want)}: set it with the sysctl task`);
  }
  const listening = new Set(all(/^listen=(\d+)$/gm).map((m) => Number(m[1])));
  const busy = st.ports.filter((p) => listening.has(p));
  if (busy.length) problems.push(`port ${busy.join(', ')} is already in use: the kubelet listens there (stop what holds it)`);
  const missing = all(/^cmd (\S+)=no$/gm).map((m) => m[1]);
  if (missing.length) problems.push(`command ${missing.join(', ')} not found: kubeadm's preflight requires it (install its package)`);
  const host = /^hostname=(\S*) (resolves|unresolved)$/m.exec(out);
  if (!host) problems.push('the hostname could not be read');
  else if (host[2] === 'unresolved') problems.push(`hostname "${host[1]}" does not resolve: add it to /etc/hosts or DNS`);
  if (!problems.length) lines.push(`node ready: swap off, ${Object.keys(st.sysctls).length} kernel parameters, port ${st.ports.join(', ')} free, ${st.commands.length} commands, hostname ${host?.[1]} resolves`);
  return { lines, problems };
}

export default nodeTask({
  name: 'kubernetes_node_preflight',
  summary: 'Checks a node as kubeadm\'s preflight would: swap off, kernel parameters, kubelet port free, required commands, hostname resolvable. Read-only; `hoist verify` runs it.',
  params: s.object({}),
  verifies: true,
  plan(_p, ctx) {
    const st = ctx.settings;
    return {
      actions: [
        {
          kind: 'check',
          summary: 'kubernetes node preflight',
          async run(conn, actx) {
            const r = await conn.exec(preflightScript(st));
            const { lines, problems } = judge(st, r.stdout);
            for (const l of lines) actx.note(l);
            if (problems.length) throw new Error(`${ctx.host.name} is not ready to join a cluster:\n  - ${problems.join('\n  - ')}`);
          },
        },
      ],
    };
  },
});
