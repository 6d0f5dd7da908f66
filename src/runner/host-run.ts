import { HostConnection, HostKeyError } from '../ssh/connection.js';
import type { Connection } from '../tasks/connection.js';
import { errorMessage, LockHeldError } from '../util/errors.js';
import { redact } from '../util/redact.js';
import type { TaskPlan } from '../tasks/types.js';
import type { HostReport } from './report.js';
import { hostProgress } from './interrupt.js';
import { HostContext, Stop, emptyTask } from './host-context.js';
import { endingOf, type HostState } from './host-state.js';
import { lockAndPlan } from './host-planning.js';
import { closeHookPair, hooks, noteHooksThatWouldRun, readDebt, settleDebt } from './host-hooks.js';
import { apply, dropSecretBackups } from './host-apply.js';

export type { HostRunOptions } from './host-context.js';

/**
 * One host's run, as the states of host-state.ts: connecting → planning (facts and every task's
 * probes in one round trip, then the plans), locking when they write → paying an owed debt →
 * waiting for a restart turn → recording the drain, draining (before_host hooks) → applying
 * (rolling back on failure) → undraining (after_host hooks) → done. Every state may stop the
 * host with a status; the others go on.
 */
export class HostRun extends HostContext {
  /** Every state this host's run has been in, 'new' first and its ending last. */
  get path(): readonly HostState[] {
    return this.states.history;
  }

  async run(connecting: Promise<Connection>): Promise<HostReport> {
    hostProgress.started.add(this.name);
    try {
      this.states.to('connecting');
      // Read before connecting: a host that owes its after_host hooks is named even when it can't be reached.
      readDebt(this);
      this.stopIfInterrupted('before it started', 'skipped');
      this.conn = await connecting.catch((e: unknown) => {
        throw new Stop(e instanceof HostKeyError ? 'failed' : 'unreachable', errorMessage(e), e instanceof HostKeyError ? 'host-key' : undefined);
      });
      if (this.conn instanceof HostConnection) {
        this.conn.lockWaitSeconds = this.o.lockWaitSeconds;
        this.conn.onNote = (n) => {
          this.report.notes.push(redact(n));
          this.o.log.log(this.name, n);
        };
      }
      const plans = await lockAndPlan(this, this.conn);
      this.stopIfInterrupted('after planning, before any change', 'skipped');
      // Read again under the lock: another run may have settled the debt since.
      readDebt(this);
      await settleDebt(this, this.conn);
      // A host where a task could not plan applies nothing (apply() says so per task): it neither waits
      // for a restart turn nor is drained for changes that will not happen.
      const planFailed = plans.some((pl) => pl instanceof Error);
      const changes = !planFailed && plans.some((pl) => !(pl instanceof Error) && pl.actions.some((a) => a.kind === 'change'));
      if (changes && this.o.options.check) noteHooksThatWouldRun(this);
      if (!this.o.options.check && !planFailed) await this.waitForRestartTurn(plans);
      if (changes && !this.o.options.check) await hooks(this, 'before_host', this.conn);
      await apply(this, this.conn, plans);
      if (!this.o.options.check) await dropSecretBackups(this, this.conn);
      if (this.changedBefore && !this.o.options.check) await hooks(this, 'after_host', this.conn);
      return this.finish(this.report.tasks.some((t) => t.status === 'changed') ? 'changed' : 'ok');
    } catch (e) {
      await closeHookPair(this);
      const status = e instanceof Stop ? e.status : this.conn?.isClosed ? 'unreachable' : 'failed';
      // A host that failed while holding a restart place stops the roll-out: the others keep running as they are.
      const interrupted = e instanceof Stop && e.reason === 'interrupted';
      if (this.releaseTurn && !interrupted && (status === 'failed' || status === 'unreachable'))
        this.o.gate?.stop(`not restarted: ${this.name} failed during its rolling restart, and the hosts still waiting were left as they are`);
      if (e instanceof Stop) return this.finish(e.status, e.message, e.reason);
      // Another run's lock met by any command (its commands.lock, not only the host lock): exit 5, retry later.
      return this.finish(status, errorMessage(e), e instanceof LockHeldError ? 'locked' : undefined);
    } finally {
      this.releaseTurn?.();
      hostProgress.inFlight.delete(this.name);
      hostProgress.done.set(this.name, this.report.status);
      // Released before the connection closes, so the lock's holder file is cleaned up rather than looking stale.
      await this.lock?.then(
        (l) => l.release(),
        () => undefined,
      );
    }
  }

  private finish(status: HostReport['status'], error?: string, reason?: HostReport['reason']): HostReport {
    try {
      this.states.to(endingOf(status, reason));
    } catch (e) {
      // An ending the runner never meant to reach is its own bug: the host is reported failed, saying so.
      [status, error, reason] = ['failed', errorMessage(e), undefined];
      this.states.to('failed');
    }
    const r = this.report;
    r.status = status;
    if (reason) r.reason = reason;
    const why = this.debt.stillDrained(this.o.options.check);
    if (why) {
      r.stillDrained = redact(why);
      r.notes.push(redact(`STILL DRAINED: ${why}`));
    }
    r.bytesPushed = this.conn?.bytesPushed ?? 0;
    if (error) r.error = redact(error);
    r.durationMs = Date.now() - this.started;
    for (const t of this.play.tasks.slice(r.tasks.length)) r.tasks.push(emptyTask(t, 'skipped'));
    this.o.log.log(this.name, `host ${status}${error ? `: ${error}` : ''}`);
    return r;
  }

  /**
   * A host whose plan restarts a running service waits for a place in the run's restart gate, before
   * its hooks (a host waiting its turn is not drained yet) and before any change.
   */
  private async waitForRestartTurn(plans: (TaskPlan | Error)[]): Promise<void> {
    const disruptive = plans.flatMap((pl) => (pl instanceof Error ? [] : pl.actions.filter((a) => a.kind === 'change' && a.disruptive)));
    if (!disruptive.length || !this.o.gate) return;
    this.states.to('waiting turn');
    this.o.events.hostPhase(this.name, `waiting for its turn (${disruptive[0].disruptive}, ${this.o.gate.size} host(s) at a time)`);
    const t0 = Date.now();
    this.releaseTurn = await this.o.gate.enter().catch((e: Error) => {
      throw new Stop('skipped', e.message);
    });
    const waited = Date.now() - t0;
    this.o.log.log(this.name, `restart turn after ${waited} ms (${disruptive.map((a) => a.disruptive).join(', ')})`);
    if (waited >= 1000)
      this.report.notes.push(`waited ${(waited / 1000).toFixed(1)} s for its turn: ${disruptive[0].disruptive}, ${this.o.gate.size} host(s) at a time`);
  }
}
