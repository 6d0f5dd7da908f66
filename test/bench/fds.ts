/**
 * Open file descriptors while a run is going, sampled every 100 ms from /proc: all processes under
 * the measured one on the controller (hoist's node process; every ssh of a floor), and the busiest
 * sshd process on the bastion, which holds one socket per host it forwards to.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { BASTION, CGROUP_PREFIX } from '../fleet/paths.js';

export interface FdPeaks {
  controller: number;
  bastionSshd: number;
}

function fdCount(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
}

function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function descendants(pid: number): number[] {
  const out: number[] = [];
  for (let todo = children(pid); todo.length;) {
    const p = todo.pop()!;
    out.push(p);
    todo.push(...children(p));
  }
  return out;
}

function bastionSshdPids(): number[] {
  try {
    const pids = readFileSync(`/sys/fs/cgroup/pids/${CGROUP_PREFIX}${BASTION}/cgroup.procs`, 'utf8').trim().split('\n').map(Number);
    return pids.filter((p) => {
      try {
        return readFileSync(`/proc/${p}/comm`, 'utf8').startsWith('sshd');
      } catch {
        return false;
      }
    });
  } catch {
    return [];
  }
}

export function sampleFds(rootPid: number | undefined): { stop(): FdPeaks } {
  const peaks: FdPeaks = { controller: 0, bastionSshd: 0 };
  const sample = () => {
    if (rootPid !== undefined)
      peaks.controller = Math.max(
        peaks.controller,
        descendants(rootPid).reduce((n, p) => n + fdCount(p), 0),
      );
    peaks.bastionSshd = Math.max(peaks.bastionSshd, ...bastionSshdPids().map(fdCount));
  };
  const timer = setInterval(sample, 100);
  return {
    stop() {
      clearInterval(timer);
      return peaks;
    },
  };
}
