import { EXIT } from '../util/errors.js';

export type TaskStatus = 'ok' | 'changed' | 'failed' | 'skipped';
export type HostStatus = 'ok' | 'changed' | 'failed' | 'unreachable' | 'skipped';

export interface TaskReport {
  index: number;
  title: string;
  task: string;
  status: TaskStatus;
  /** Change summaries: what was (or, under --check, would be) done. */
  changes: string[];
  diffs: string[];
  notes: string[];
  durationMs: number;
  error?: string;
}

export interface HostReport {
  name: string;
  address: string;
  facts?: import('../facts/facts.js').Facts;
  status: HostStatus;
  tasks: TaskReport[];
  /** Host-level remarks (a stale lock taken over, a rollback). */
  notes: string[];
  /** Bytes hoist uploaded to the host during the run. */
  bytesPushed?: number;
  error?: string;
  /**
   * Why a host that failed did so, when a wrapper may act on it: another run held its lock (retry
   * later), its host key was unknown or changed (a person must look), or hoist was interrupted.
   */
  reason?: 'locked' | 'host-key' | 'interrupted';
  /**
   * Set when the host's before_host hooks (a drain) ran and its after_host hooks (the uncordon) have
   * not succeeded: why. The next run of any playbook on the host runs them first.
   */
  stillDrained?: string;
  durationMs: number;
}

/** A before_host/after_host hook of the play, with the playbook file and line that define it. */
export interface HookReport {
  kind: 'before_host' | 'after_host';
  run: string;
  on: 'controller' | 'host';
  timeout: number;
  file: string;
  line?: number;
}

export interface RunReport {
  playbook: string;
  check: boolean;
  /** The play's hooks, base playbooks' first. */
  hooks?: HookReport[];
  hosts: HostReport[];
  durationMs: number;
  exitCode: number;
  aborted?: string;
}

export interface RecapCounts {
  ok: number;
  changed: number;
  failed: number;
  unreachable: number;
  skipped: number;
}

export function recapOf(h: HostReport): RecapCounts {
  const c: RecapCounts = { ok: 0, changed: 0, failed: 0, unreachable: h.status === 'unreachable' ? 1 : 0, skipped: 0 };
  for (const t of h.tasks) c[t.status]++;
  // A host can fail before any task does (a lock, a lost connection while planning).
  if (h.status === 'failed' && c.failed === 0) c.failed = 1;
  // The task that was running when the host went away counts as unreachable, as in Ansible's recap.
  if (h.status === 'unreachable') c.failed = 0;
  return c;
}

/** Exit codes of a run, for wrappers: util/errors.ts holds them with the error kinds that give them. */
export { EXIT };

/**
 * 0 all well; 2 a host failed or is left drained (its after_host hooks owed); else 6 a host key was
 * refused, 5 another run held a host's lock, 4 a host was unreachable. A plain failure outranks the
 * others: it is the one a retry won't cure.
 */
export function exitCodeOf(hosts: HostReport[]): number {
  const failed = hosts.filter((h) => h.status === 'failed');
  if (failed.some((h) => h.reason !== 'locked' && h.reason !== 'host-key')) return EXIT.hostFailed;
  if (hosts.some((h) => h.stillDrained && h.status !== 'unreachable')) return EXIT.hostFailed;
  if (failed.some((h) => h.reason === 'host-key')) return EXIT.hostKey;
  if (failed.some((h) => h.reason === 'locked')) return EXIT.locked;
  if (hosts.some((h) => h.status === 'unreachable')) return EXIT.unreachable;
  return EXIT.ok;
}

/** Events the output layer draws from; the runner knows nothing of terminals. */
export interface RunEvents {
  /** The run's inputs are checked and its hosts known: a live view may start drawing them. */
  start?(hosts: string[]): void;
  hostPhase(host: string, phase: string): void;
  taskDone(host: string, t: TaskReport): void;
  hostDone(h: HostReport): void;
  progress(label: string, done: number, total: number | undefined): void;
  message(text: string): void;
}
