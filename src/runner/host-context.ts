import type { HostLock } from '../ssh/connection.js';
import type { Connection } from '../tasks/connection.js';
import { redact } from '../util/redact.js';
import { PlanState, type Controller, type RunOptions } from '../tasks/types.js';
import type { Playbook } from '../playbook/playbook.js';
import type { TaskCatalog } from '../tasks/catalog.js';
import { HostDebt } from './drain-debt.js';
import type { HostPlay } from './play.js';
import type { HostReport, RunEvents, TaskReport } from './report.js';
import type { Logger } from '../util/log.js';
import { interruption } from './interrupt.js';
import type { RestartGate } from './restart-gate.js';
import { HostStates } from './host-state.js';
import { HostError } from '../util/errors.js';

export interface HostRunOptions {
  options: RunOptions;
  controller: Controller;
  playbook: Playbook;
  events: RunEvents;
  log: Logger;
  lockWaitSeconds: number;
  /** -v: each step of the host with its duration on the output too (the log always has them). */
  verbosity?: number;
  /** To load the playbook whose after_host hooks a host owes, when it is not this run's. */
  catalog?: TaskCatalog;
  /** Shared by the run's hosts: restarts of running services go a batch at a time. */
  gate?: RestartGate;
  /** Read systemd's overall state too (RunRequest.systemState). */
  systemState?: boolean;
}

export const secs = (t0: number) => `${((Date.now() - t0) / 1000).toFixed(2)} s`;

/** Ends a host's run early with a status and a reason: a host's failure, caught by HostRun.run(). */
export class Stop extends HostError {
  constructor(
    readonly status: HostReport['status'],
    message: string,
    readonly reason?: HostReport['reason'],
  ) {
    super(message);
  }
}

export const emptyTask = (t: HostPlay['tasks'][number], status: TaskReport['status'], notes: string[] = []): TaskReport => ({
  index: t.spec.index,
  title: t.spec.title,
  task: t.spec.task,
  status,
  changes: [],
  diffs: [],
  notes,
  durationMs: 0,
});

/**
 * What the steps of one host's run share: its play, its report so far, the plan state, the drain
 * debt and where the run stands (`states`). The steps themselves live in host-planning.ts,
 * host-hooks.ts and host-apply.ts; host-run.ts runs them in order.
 */
export class HostContext {
  readonly report: HostReport;
  state = new PlanState();
  readonly started = Date.now();
  conn?: Connection;
  lock?: Promise<HostLock>;
  /** Whether a change action has started (under --check: would have): a failure past it has something to undo. */
  changedBefore = false;
  rolledBack: 'ok' | 'failed' | undefined;
  /** The after_host hooks this host owes (drain journal): from an earlier run, or since this run's before_host. */
  readonly debt: HostDebt;
  /** Set while the host holds a place in the run's restart gate. */
  releaseTurn?: () => void;
  readonly states: HostStates;

  constructor(
    readonly play: HostPlay,
    readonly prepared: unknown[],
    readonly o: HostRunOptions,
  ) {
    this.report = { name: play.host.name, address: play.host.address, status: 'ok', tasks: [], notes: [], durationMs: 0 };
    this.debt = new HostDebt(play.host.name, play.host.address);
    this.states = new HostStates(play.host.name);
  }

  get name(): string {
    return this.play.host.name;
  }

  /** One logical step of this host (a read, a plan, an action, the lock), with its duration. */
  step(text: string): void {
    this.o.log.log(this.name, text);
    if ((this.o.verbosity ?? 0) >= 1) this.o.events.message(`${this.name} | ${redact(text)}`);
  }

  /**
   * Once hoist is interrupted no new step starts: the host stops here, with what it has done so far
   * (whole tasks; a task's actions are never cut short by the first signal).
   */
  stopIfInterrupted(where: string, status: HostReport['status'] = 'failed'): void {
    const signal = interruption.signal;
    if (signal) throw new Stop(status, `interrupted by ${signal} ${where}`, 'interrupted');
  }
}
