import { readFileSync, writeFileSync } from 'node:fs';
import { log } from './sh.js';

/** One kernel setting the fleet needs at least `need` of, for `hosts` booted hosts. */
export interface KernelLimit {
  key: string;
  need: number;
  why: string;
}

/**
 * What `hosts` nspawn hosts (bastion included) need from the controller's kernel. Per-host figures
 * are measured on booted trixie hosts (see test/fleet/README.md) and doubled for headroom; a limit
 * is only ever raised, never lowered.
 */
export function kernelLimits(hosts: number): KernelLimit[] {
  const t1 = hosts + 128;
  return [
    // All hosts run as the controller's root (no user namespaces), so they share root's budget.
    // systemd, journald, logind and dbus in a host hold ≈ 20 instances; the default 128 stops at ≈ 6 hosts.
    { key: 'fs.inotify.max_user_instances', need: 512 + 64 * hosts, why: 'systemd and its daemons in every host hold ≈ 20 inotify instances, all counted against root' },
    { key: 'fs.inotify.max_user_watches', need: 65536 + 2048 * hosts, why: 'the hosts\' systemd path and unit watches, ≈ 1,000 per host' },
    { key: 'fs.file-max', need: 65536 + 4096 * hosts, why: 'open files machine-wide: a host with containerd holds ≈ 2,000' },
    // systemd in a host gives its services a hard RLIMIT_NOFILE of 524288, clamped to nr_open.
    { key: 'fs.nr_open', need: 524288, why: 'systemd in each host sets its services\' hard open-file limit to 524288' },
    { key: 'kernel.pid_max', need: 4096 + 256 * hosts, why: 'a host running containerd with a container has ≈ 100 tasks (threads included)' },
    { key: 'kernel.threads-max', need: 4096 + 256 * hosts, why: 'same task budget as pid_max' },
    { key: 'user.max_net_namespaces', need: 64 + 4 * hosts, why: 'one netns per host plus the CNI namespaces of its containers' },
    { key: 'user.max_mnt_namespaces', need: 64 + 16 * hosts, why: 'nspawn, systemd sandboxing (PrivateTmp…) and containers each take one' },
    // Hosts fetch releases and packages from the controller's HTTP server at the same time.
    { key: 'net.core.somaxconn', need: Math.max(1024, 4 * hosts), why: 'every host may connect to the fleet HTTP server at once' },
    // One neighbour entry per host link; below gc_thresh1 the kernel never garbage-collects them,
    // above gc_thresh3 it refuses new ones (hosts silently unreachable).
    { key: 'net.ipv4.neigh.default.gc_thresh1', need: t1, why: 'one ARP entry per host link, kept without garbage collection' },
    { key: 'net.ipv4.neigh.default.gc_thresh2', need: 2 * t1, why: 'soft maximum of ARP entries, above the hosts\' links' },
    { key: 'net.ipv4.neigh.default.gc_thresh3', need: 4 * t1, why: 'hard maximum of ARP entries, above the hosts\' links' },
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
      problems.push(`${l.key} is ${current}, needs ≥ ${l.need} (${l.why}); raising it failed (${(e as NodeJS.ErrnoException).code ?? String(e)}); as root: sysctl -w ${l.key}=${l.need}`);
      continue;
    }
    changed.push({ key: l.key, from: current, to: l.need });
    log(`${l.key}: ${current} → ${l.need} (${l.why})`);
  }
  if (problems.length) throw new Error(`the kernel limits for ${hosts} hosts are not met:\n${problems.join('\n')}`);
  const avail = Number(/^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0) * 1024;
  const perHost = 64 * 2 ** 20;
  if (avail && avail < hosts * perHost) log(`warning: ${(avail / 2 ** 30).toFixed(1)} GiB available; ${hosts} hosts with containerd need ≈ ${((hosts * perHost) / 2 ** 30).toFixed(1)} GiB`);
  return changed;
}
