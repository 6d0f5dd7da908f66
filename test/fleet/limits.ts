import { readFileSync, writeFileSync } from 'node:fs';
import { log } from './sh.js';

/** One kernel setting the fleet needs at least `need` of, for `hosts` booted hosts. */
export interface KernelLimit {
  key: string;
  need: number;
  why: string;
}

/**
 * What `hosts` nspawn hosts (bastion included) need from the controller's kernel. Measured per host
 * (test/fleet/README.md): idle 7 inotify instances, 27 watches, 143 open files, 7 tasks; with
 * containerd running a container 8, 29, 196 and 29. Boot briefly holds more (generators, tmpfiles,
 * sshd-keygen), so the budgets below are several times those figures. A limit is only ever raised.
 */
export function kernelLimits(hosts: number): KernelLimit[] {
  const t1 = hosts + 128;
  return [
    // All hosts run as the controller's root (no user namespaces), so they share root's budget.
    // With the default 128, 30 hosts do not boot: systemd in some fails "Failed to create control group inotify object".
    {
      key: 'fs.inotify.max_user_instances',
      need: 512 + 64 * hosts,
      why: 'systemd and its daemons in every host hold inotify instances (7 idle, more while booting), all counted against root',
    },
    {
      key: 'fs.inotify.max_user_watches',
      need: 65536 + 512 * hosts,
      why: 'inotify watches of every host, counted against root (≈ 30 per host, more while booting)',
    },
    { key: 'fs.file-max', need: 65536 + 2048 * hosts, why: 'open files machine-wide: ≈ 200 per host with containerd, more while provisioning' },
    // systemd in a host gives its services a hard RLIMIT_NOFILE of 524288, clamped to nr_open.
    { key: 'fs.nr_open', need: 524288, why: "systemd in each host sets its services' hard open-file limit to 524288" },
    { key: 'kernel.pid_max', need: 4096 + 256 * hosts, why: 'a host running containerd and a container has ≈ 30 tasks, an install briefly several times that' },
    { key: 'kernel.threads-max', need: 4096 + 256 * hosts, why: 'same task budget as pid_max' },
    { key: 'user.max_net_namespaces', need: 64 + 4 * hosts, why: 'one netns per host plus the CNI namespaces of its containers' },
    { key: 'user.max_mnt_namespaces', need: 64 + 16 * hosts, why: 'nspawn, systemd sandboxing (PrivateTmp…) and containers each take one' },
    // Hosts fetch releases and packages from the controller's HTTP server at the same time.
    { key: 'net.core.somaxconn', need: Math.max(1024, 4 * hosts), why: 'every host may connect to the fleet HTTP server at once' },
    // One neighbour entry per host link; below gc_thresh1 the kernel never garbage-collects them,
    // above gc_thresh3 it refuses new ones (hosts silently unreachable).
    { key: 'net.ipv4.neigh.default.gc_thresh1', need: t1, why: 'one ARP entry per host link, kept without garbage collection' },
    { key: 'net.ipv4.neigh.default.gc_thresh2', need: 2 * t1, why: "soft maximum of ARP entries, above the hosts' links" },
    { key: 'net.ipv4.neigh.default.gc_thresh3', need: 4 * t1, why: "hard maximum of ARP entries, above the hosts' links" },
  ];
}

function procPath(key: string): string {
  return `/proc/sys/${key.replace(/\./g, '/')}`;
}

/** Check every limit and raise those below their need; logs each change, names the one it can't make. */
export function ensureKernelLimits(hosts: number): { key: string; from: number; to: number }[] {
  const changed: { key: string; from: number; to: number }[] = [];
  const problems: string[] = [];
  for (const l of kernelLimits(hosts)) {
    let current: number;
    try {
      current = Number(readFileSync(procPath(l.key), 'utf8').trim());
    } catch (e) {
      problems.push(`${l.key}: cannot read ${procPath(l.key)} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
      continue;
    }
    if (current >= l.need) continue;
    try {
      writeFileSync(procPath(l.key), `${l.need}\n`);
    } catch (e) {
      problems.push(
        `${l.key} is ${current}, needs ≥ ${l.need} (${l.why}); raising it failed (${(e as NodeJS.ErrnoException).code ?? String(e)}); as root: sysctl -w ${l.key}=${l.need}`,
      );
      continue;
    }
    changed.push({ key: l.key, from: current, to: l.need });
    log(`${l.key}: ${current} → ${l.need} (${l.why})`);
  }
  if (problems.length) throw new Error(`the kernel limits for ${hosts} hosts are not met:\n${problems.join('\n')}`);
  const avail = Number(/^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0) * 1024;
  const perHost = 64 * 2 ** 20;
  if (avail && avail < hosts * perHost)
    log(`warning: ${(avail / 2 ** 30).toFixed(1)} GiB available; ${hosts} hosts with containerd need ≈ ${((hosts * perHost) / 2 ** 30).toFixed(1)} GiB`);
  return changed;
}
