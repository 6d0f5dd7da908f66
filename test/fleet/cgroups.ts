import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CGROUP_PREFIX } from './paths.js';
import { sleep } from './sh.js';

interface Hierarchy {
  mountPoint: string;
  /** This process's cgroup in that hierarchy. */
  current: string;
}

/** Every mounted cgroup hierarchy (v1 controllers, name=systemd, the unified v2 one) with our place in it. */
export function hierarchies(): Hierarchy[] {
  const mounts: { mountPoint: string; root: string; fstype: string; superOpts: string[] }[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!post) continue;
    const f = pre.split(' ');
    const [fstype, , superOpts] = post.split(' ');
    if (fstype === 'cgroup' || fstype === 'cgroup2') mounts.push({ mountPoint: f[4], root: f[3], fstype, superOpts: superOpts.split(',') });
  }
  const out: Hierarchy[] = [];
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n')) {
    const parsed = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!parsed) continue;
    const [, , ctrls, path] = parsed;
    const names = ctrls ? ctrls.split(',') : [];
    const m =
      names.length === 0
        ? mounts.find((x) => x.fstype === 'cgroup2')
        : mounts.find((x) => x.fstype === 'cgroup' && names.every((n) => x.superOpts.includes(n)));
    if (!m) continue;
    const rel = m.root === '/' ? path : path.startsWith(m.root) ? path.slice(m.root.length) || '/' : path;
    out.push({ mountPoint: m.mountPoint, current: rel });
  }
  return out;
}

/** The host's own cgroup in every hierarchy: `<our cgroup>/hoist-fleet-<name>`. */
export function hostCgroupDirs(name: string): string[] {
  return hierarchies().map((h) => join(h.mountPoint, h.current, `${CGROUP_PREFIX}${name}`));
}

export function createCgroups(dirs: string[]): void {
  for (const d of dirs) {
    mkdirSync(d, { recursive: true });
    // A fresh v1 cpuset cgroup has no CPUs or memory nodes and refuses tasks until given some.
    if (existsSync(join(d, 'cpuset.cpus'))) {
      for (const f of ['cpuset.cpus', 'cpuset.mems']) {
        if (readFileSync(join(d, f), 'utf8').trim() === '') writeFileSync(join(d, f), readFileSync(join(d, '..', f), 'utf8').trim());
      }
    }
  }
}

function walkDeepestFirst(dir: string): string[] {
  const out: string[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  } catch {
    return out;
  }
  for (const e of entries) out.push(...walkDeepestFirst(join(dir, e)));
  out.push(dir);
  return out;
}

export function cgroupPids(dir: string): number[] {
  const pids = new Set<number>();
  for (const d of walkDeepestFirst(dir)) {
    try {
      for (const p of readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n')) if (p) pids.add(Number(p));
    } catch {
      /* removed meanwhile */
    }
  }
  return [...pids];
}

/** Kill whatever is left in the trees, then remove them bottom-up. */
export async function removeCgroups(dirs: string[], timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = dirs.filter((d) => existsSync(d));
    if (left.length === 0) return;
    for (const d of left) {
      for (const pid of cgroupPids(d)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      for (const sub of walkDeepestFirst(d)) {
        try {
          rmdirSync(sub);
        } catch {
          /* busy until its processes are reaped; retried */
        }
      }
    }
    if (Date.now() > deadline) throw new Error(`cgroups still present: ${dirs.filter((d) => existsSync(d)).join(', ')}`);
    await sleep(100);
  }
}

/** Every harness cgroup in any hierarchy, wherever a previous run put it. */
export function findFleetCgroups(): string[] {
  const found: string[] = [];
  const seen = new Set<string>();
  const visit = (dir: string, depth: number) => {
    let entries: string[];
    try {
      entries = readdirSync(dir, { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => e.name);
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(dir, e);
      if (e.startsWith(CGROUP_PREFIX)) found.push(p);
      else if (depth < 4) visit(p, depth + 1);
    }
  };
  for (const h of hierarchies()) {
    if (seen.has(h.mountPoint)) continue;
    seen.add(h.mountPoint);
    visit(h.mountPoint, 0);
  }
  return found;
}
