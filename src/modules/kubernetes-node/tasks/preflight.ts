import { quote } from '../../../ssh/quote.js';
import { preflightTask } from '../task.js';
import { procPath, normalize } from '../../../tasks/sysctl.js';
import type { NodeSettings } from '../settings.js';

/**
 * The checks kubeadm's preflight makes of a joining node that hoist can make without kubeadm
 * (JoinNodeChecks and addCommonChecks in kubernetes/kubernetes cmd/kubeadm/app/preflight/checks.go,
 * checks_linux.go): no active swap (SwapCheck), the node's kernel parameters (FileContentCheck of
 * ip_forward and bridge-nf-call-iptables), the ports the kubelet needs free (PortOpenCheck), the
 * commands it runs (InPathCheck), the cgroup controllers (SystemVerificationCheck), no kubelet.conf,
 * bootstrap-kubelet.conf or pki/ca.crt left from an earlier join (FileAvailableCheck), a hostname
 * that resolves (HostnameCheck). The container runtime is cri-preflight.ts's. One read-only
 * script; judge() is pure.
 */
export function preflightScript(st: NodeSettings): string {
  const lines = [
    `{ read -r _; while read -r f _; do echo "swap=$f"; done; } < /proc/swaps`,
    ...Object.keys(st.sysctls).map(
      (k) => `v=absent; [ -r ${quote(procPath(k))} ] && IFS= read -r v < ${quote(procPath(k))}; printf 'sysctl %s=%s\\n' ${quote(k)} "$v"`,
    ),
    // Listening TCP sockets (state 0A) from /proc/net: the local port is the hex after the colon.
    `for t in /proc/net/tcp /proc/net/tcp6; do [ -r $t ] && while read -r _ l _ st _; do [ "$st" = 0A ] && echo "listen=$((16#\${l##*:}))"; done < $t; done`,
    ...st.commands.map(
      (c) => `if command -v ${quote(c)} >/dev/null || [ -x /usr/sbin/${c} ] || [ -x /sbin/${c} ]; then echo "cmd ${c}=yes"; else echo "cmd ${c}=no"; fi`,
    ),
    // The cgroup controllers the kubelet needs: v2 lists the root's in cgroup.controllers, v1 enables them in /proc/cgroups.
    `if [ -f /sys/fs/cgroup/cgroup.controllers ]; then c=; read -r c < /sys/fs/cgroup/cgroup.controllers; echo "cgroup2=$c"; else while read -r n _ _ e; do [ "\${n#\\#}" = "$n" ] && echo "cgroup1 $n=$e"; done < /proc/cgroups; fi`,
    // What a node that already joined (or was not reset) keeps: kubeadm join refuses to overwrite it.
    `for f in ${JOIN_FILES.join(' ')}; do [ -e "$f" ] && echo "joined=$f"; done; true`,
    `read -r hn < /proc/sys/kernel/hostname; if getent hosts "$hn" >/dev/null; then echo "hostname=$hn resolves"; else echo "hostname=$hn unresolved"; fi`,
  ];
  return lines.join('\n');
}

/** Files kubeadm join writes, which its preflight requires absent (FileAvailableCheck in checks.go). */
export const JOIN_FILES = ['/etc/kubernetes/kubelet.conf', '/etc/kubernetes/bootstrap-kubelet.conf', '/etc/kubernetes/pki/ca.crt'];

/**
 * The controllers kubeadm's SystemVerification requires (k8s.io/system-validators, cgroup_validator.go):
 * on cgroup v1 each enabled in /proc/cgroups; on v2 listed in the root's cgroup.controllers, where
 * devices and freezer are always there (eBPF programs, cgroup.freeze) and so not listed.
 */
export const CGROUP_V1_REQUIRED = ['cpu', 'cpuacct', 'cpuset', 'devices', 'freezer', 'memory', 'pids'];
export const CGROUP_V2_REQUIRED = ['cpu', 'cpuset', 'memory', 'pids'];

/** The required controllers missing from the probe's output, with the cgroup version read; undefined when nothing was read. */
export function missingControllers(out: string): { version: 1 | 2; missing: string[] } | undefined {
  const v2 = /^cgroup2=(.*)$/m.exec(out);
  if (v2) {
    const have = new Set(v2[1].split(/\s+/).filter(Boolean));
    return { version: 2, missing: CGROUP_V2_REQUIRED.filter((c) => !have.has(c)) };
  }
  const v1 = [...out.matchAll(/^cgroup1 (\S+)=(\d+)$/gm)];
  if (!v1.length) return undefined;
  const enabled = new Set(v1.filter((m) => m[2] === '1').map((m) => m[1]));
  return { version: 1, missing: CGROUP_V1_REQUIRED.filter((c) => !enabled.has(c)) };
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
  const cg = missingControllers(out);
  if (!cg) problems.push('the cgroup controllers could not be read (/proc/cgroups, /sys/fs/cgroup/cgroup.controllers)');
  else if (cg.missing.length) {
    problems.push(
      cg.version === 2
        ? `cgroup v2 controller ${cg.missing.join(', ')} not available: the kubelet needs it; enable it in the kernel, or delegate it to this node's cgroup (cgroup.subtree_control of its parent)`
        : `cgroup v1 controller ${cg.missing.join(', ')} not enabled: the kubelet needs it; remove cgroup_disable=${cg.missing[0]} from the kernel command line, or use a kernel built with it`,
    );
  }
  const joined = all(/^joined=(.+)$/gm).map((m) => m[1]);
  if (joined.length)
    problems.push(`${joined.join(', ')} already exist${joined.length === 1 ? 's' : ''}: this host has joined a cluster before; run kubeadm reset on it first`);
  const host = /^hostname=(\S*) (resolves|unresolved)$/m.exec(out);
  if (!host) problems.push('the hostname could not be read');
  else if (host[2] === 'unresolved') problems.push(`hostname "${host[1]}" does not resolve: add it to /etc/hosts or DNS`);
  if (!problems.length)
    lines.push(
      `node ready: swap off, ${Object.keys(st.sysctls).length} kernel parameters, port ${st.ports.join(', ')} free, ${st.commands.length} commands, cgroup v${cg?.version} controllers, not joined before, hostname ${host?.[1]} resolves`,
    );
  return { lines, problems };
}

export default preflightTask({
  name: 'kubernetes_node_preflight',
  summary:
    "Checks a node as kubeadm's preflight would: swap off, kernel parameters, kubelet port free, required commands, hostname resolvable. Read-only; `hoist verify` runs it.",
  check: 'kubernetes node preflight',
  script: preflightScript,
  judge: judge,
});
