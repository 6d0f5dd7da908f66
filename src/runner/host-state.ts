import { InternalError } from '../util/errors.js';
import type { HostReport } from './report.js';

/**
 * Where one host's run stands. The working states follow docs/architecture.md "The flow of a run";
 * each optional one is entered only when its step happens (a host that owes no hooks never pays
 * a debt, one whose plan restarts nothing never waits for a turn, a playbook without before_host
 * hooks never drains).
 */
export type HostState =
  | 'new'
  /** Reading the drain journal and waiting for the connection. */
  | 'connecting'
  /** One round trip for facts and every probe, then the plans (again under the lock when needed). */
  | 'planning'
  /** Taking the host lock: first with --lock-wait, else once a plan writes. */
  | 'locking'
  /** Running the after_host hooks an earlier run owes. */
  | 'paying debt'
  /** Waiting for a place in the run's restart gate. */
  | 'waiting turn'
  /** Recording on the host and the controller that the after_host hooks will be owed. */
  | 'recording drain'
  /** Running the before_host hooks. */
  | 'draining'
  /** Running the plans' actions (under --check: reporting them). */
  | 'applying'
  /** Running the undo steps of a host whose change failed. */
  | 'rolling back'
  /** Running the after_host hooks: after the changes, or to close a drain after a failure. */
  | 'undraining'
  | HostEnding;

/** How a host's run ended. */
export type HostEnding = 'done' | 'failed' | 'unreachable' | 'skipped' | 'interrupted';

/** Any step can fail or lose the host, and an interrupt stops a host before its next step. */
const stops = ['failed', 'unreachable', 'interrupted'] as const;

/** The steps a host may go on to, past the optional ones: after planning, any step from paying a debt on. */
const afterPlanning = ['paying debt', 'waiting turn', 'recording drain', 'applying'] as const;

/** Every legal transition; anything else is a bug in the runner. */
export const TRANSITIONS: Readonly<Record<HostState, readonly HostState[]>> = {
  new: ['connecting'],
  connecting: ['planning', 'locking', ...stops],
  // --lock-wait takes the lock before the read; otherwise a plan that writes takes it after.
  planning: ['locking', ...afterPlanning, ...stops],
  // A plan read before another run held or took the lock is made again under it.
  locking: ['planning', ...afterPlanning, ...stops],
  'paying debt': ['waiting turn', 'recording drain', 'applying', ...stops],
  // The gate stopped (a host of an earlier batch failed): this host is left as it is.
  'waiting turn': ['recording drain', 'applying', 'skipped', ...stops],
  'recording drain': ['draining', ...stops],
  // A failed before_host hook still gets the after_host hooks (the host is unchanged).
  draining: ['applying', 'undraining', ...stops],
  applying: ['rolling back', 'undraining', 'done', ...stops],
  'rolling back': ['undraining', ...stops],
  undraining: ['done', ...stops],
  done: [],
  failed: [],
  unreachable: [],
  skipped: [],
  interrupted: [],
};

/** The ending of a host's run with this status and reason. */
export function endingOf(status: HostReport['status'], reason?: HostReport['reason']): HostEnding {
  if (reason === 'interrupted') return 'interrupted';
  return status === 'ok' || status === 'changed' ? 'done' : status;
}

/** A host's state, moved only along TRANSITIONS; it remembers where it has been. */
export class HostStates {
  private readonly path: HostState[] = ['new'];

  constructor(private readonly host: string) {}

  get current(): HostState {
    return this.path[this.path.length - 1];
  }

  /** Every state so far, in order, 'new' first. */
  get history(): readonly HostState[] {
    return this.path;
  }

  /** Whether the run has been in `state`. */
  visited(state: HostState): boolean {
    return this.path.includes(state);
  }

  /** Moves to `next`; an illegal move is hoist's own bug, and fails the host rather than going on in an unknown state. */
  to(next: HostState): void {
    const from = this.current;
    if (!TRANSITIONS[from].includes(next)) throw new InternalError(`internal error: ${this.host} cannot go from ${from} to ${next}`);
    this.path.push(next);
  }
}
