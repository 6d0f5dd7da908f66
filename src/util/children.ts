import type { ChildProcess } from 'node:child_process';

/**
 * Processes hoist starts on the controller (hooks, ProxyCommands). A signal sent to hoist alone (a
 * cancelled CI job, `kill PID`, `timeout`) does not reach them, so hoist stops them itself: none may
 * keep running after hoist has exited without the interrupt message naming it.
 */
interface Tracked {
  child: ChildProcess;
  /** What it is, for the interrupt message: `after_host hook "sleep 30" of h1`. */
  what: string;
  /** Started as its own process group (detached): a signal goes to the whole group, its own children too. */
  group: boolean;
  /**
   * Stopped at the first interrupt (a hook: a step of its own that may take minutes), or only when
   * hoist exits (a ProxyCommand: the connection a host's current step still needs).
   */
  onInterrupt: boolean;
}

const live = new Set<Tracked>();

export function trackChild(child: ChildProcess, what: string, opts: { group: boolean; onInterrupt: boolean }): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const t: Tracked = { child, what, ...opts };
  live.add(t);
  child.once('exit', () => live.delete(t));
}

/** What is still running, by description. */
export function liveChildren(): string[] {
  return [...live].map((t) => t.what);
}

/**
 * Sends `signal` to the tracked processes (to a whole group when it has one): at an interrupt only
 * those stopped then, else all. Returns what was signalled.
 */
export function signalChildren(signal: NodeJS.Signals, which: 'interrupt' | 'all'): string[] {
  const hit: string[] = [];
  for (const t of live) {
    if (which === 'interrupt' && !t.onInterrupt) continue;
    try {
      if (t.group && t.child.pid) process.kill(-t.child.pid, signal);
      else t.child.kill(signal);
      hit.push(t.what);
    } catch {
      // Gone between the exit event and now: nothing left to stop.
      live.delete(t);
    }
  }
  return hit;
}
