import os from 'node:os';
import { HostConnection, HostKeyError, type HostLock } from '../ssh/connection.js';
import type { Connection } from '../tasks/connection.js';
import { gather, type Gathered, type Probe } from '../facts/probe.js';
import { errorMessage, LockHeldError } from '../util/errors.js';
import { redact } from '../util/redact.js';
import { PlanState, type Action, type Controller, type RunOptions, type TaskPlan } from '../tasks/types.js';
import type { Hook, Playbook } from '../playbook/playbook.js';
import type { TaskCatalog } from '../tasks/catalog.js';
import { describeDebt } from './drain-journal.js';
import { DRAIN_PROBE, HostDebt, UnpayableDebt, drainProbe } from './drain-debt.js';
import type { HostPlay } from './play.js';
import type { HostReport, RunEvents, TaskReport } from './report.js';
import type { Logger } from '../util/log.js';
import { runHook } from './hooks.js';
import { hostProgress, interruption } from './interrupt.js';
import { factSkip } from '../playbook/condition.js';
import { quote } from '../ssh/quote.js';
import type { RestartGate } from './restart-gate.js';
import { checkHostPaths, pathProbe, readHostPaths } from './path-check.js';
import { pinCheckScript } from '../facts/paths.js';
import type { HostPathSpec, TaskModule } from '../tasks/types.js';

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
}

const secs = (t0: number) => `${((Date.now() - t0) / 1000).toFixed(2)} s`;

/** Ends a host's run early with a status and a reason. */
class Stop extends Error {
  constructor(readonly status: HostReport['status'], message: string, readonly reason?: HostReport['reason']) {
    super(message);
  }
}

const emptyTask = (t: HostPlay['tasks'][number], status: TaskReport['status'], notes: string[] = []): TaskReport => ({
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
 * One host's run, as named phases: connect → lock and plan (facts and every task's probes in one
 * round trip, then the plans) → before_host hooks → apply (rolling back on failure) → after_host
 * hooks. Every phase may stop the host with a status; the others go on.
 */
export class HostRun {
  private readonly report: HostReport;
  private state = new PlanState();
  private readonly started = Date.now();
  private conn?: Connection;
  private lock?: Promise<HostLock>;
  private changedBefore = false;
  /** Hooks wrap a changed host (drain … uncordon): what ran, so a failure can still close the pair. */
  private beforeHostRan = false;
  private afterHostRan = false;
  private rolledBack: 'ok' | 'failed' | undefined;
  /** The after_host hooks this host owes (drain journal): from an earlier run, or since this run's before_host. */
  private readonly debt: HostDebt;
  /** Set while the host holds a place in the run's restart gate. */
  private releaseTurn?: () => void;

  constructor(private readonly play: HostPlay, private readonly prepared: unknown[], private readonly o: HostRunOptions) {
    this.report = { name: play.host.name, address: play.host.address, status: 'ok', tasks: [], notes: [], durationMs: 0 };
    this.debt = new HostDebt(play.host.name, play.host.address);
  }

  private get name(): string {
    return this.play.host.name;
  }

  /** One logical step of this host (a read, a plan, an action, the lock), with its duration. */
  private step(text: string): void {
    this.o.log.log(this.name, text);
    if ((this.o.verbosity ?? 0) >= 1) this.o.events.message(`${this.name} | ${redact(text)}`);
  }

  async run(connecting: Promise<Connection>): Promise<HostReport> {
    hostProgress.started.add(this.name);
    try {
      // Read before connecting: a host that owes its after_host hooks is named even when it can't be reached.
      this.readDebt();
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
      const plans = await this.lockAndPlan(this.conn);
      this.stopIfInterrupted('after planning, before any change', 'skipped');
      // Read again under the lock: another run may have settled the debt since.
      this.readDebt();
      await this.settleDebt(this.conn);
      // A host where a task could not plan applies nothing (apply() says so per task): it neither waits
      // for a restart turn nor is drained for changes that will not happen.
      const planFailed = plans.some((pl) => pl instanceof Error);
      const changes = !planFailed && plans.some((pl) => !(pl instanceof Error) && pl.actions.some((a) => a.kind === 'change'));
      if (changes && this.o.options.check) this.noteHooksThatWouldRun();
      if (!this.o.options.check && !planFailed) await this.waitForRestartTurn(plans);
      if (changes && !this.o.options.check) await this.hooks('before_host', this.conn);
      await this.apply(this.conn, plans);
      if (!this.o.options.check) await this.dropSecretBackups(this.conn);
      if (this.changedBefore && !this.o.options.check) await this.hooks('after_host', this.conn);
      return this.finish(this.report.tasks.some((t) => t.status === 'changed') ? 'changed' : 'ok');
    } catch (e) {
      await this.closeHookPair();
      const status = e instanceof Stop ? e.status : this.conn?.isClosed ? 'unreachable' : 'failed';
      // A host that failed while holding a restart place stops the roll-out: the others keep running as they are.
      const interrupted = e instanceof Stop && e.reason === 'interrupted';
      if (this.releaseTurn && !interrupted && (status === 'failed' || status === 'unreachable')) this.o.gate?.stop(`not restarted: ${this.name} failed during its rolling restart, and the hosts still waiting were left as they are`);
      if (e instanceof Stop) return this.finish(e.status, e.message, e.reason);
      // Another run's lock met by any command (its commands.lock, not only the host lock): exit 5, retry later.
      return this.finish(status, errorMessage(e), e instanceof LockHeldError ? 'locked' : undefined);
    } finally {
      this.releaseTurn?.();
      hostProgress.inFlight.delete(this.name);
      hostProgress.done.set(this.name, this.report.status);
      // Released before the connection closes, so the lock's holder file is cleaned up rather than looking stale.
      await this.lock?.then((l) => l.release(), () => undefined);
    }
  }

  /**
   * Once hoist is interrupted no new step starts: the host stops here, with what it has done so far
   * (whole tasks; a task's actions are never cut short by the first signal).
   */
  private stopIfInterrupted(where: string, status: HostReport['status'] = 'failed'): void {
    const signal = interruption.signal;
    if (signal) throw new Stop(status, `interrupted by ${signal} ${where}`, 'interrupted');
  }

  private finish(status: HostReport['status'], error?: string, reason?: HostReport['reason']): HostReport {
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
   * Read-only runs need no lock, and neither does a run that finds nothing to change: the host is
   * read first (facts and every probe in one round trip, which also notes the lock's generation and
   * whether a run holds it), and the lock is taken only when the plan changes something. The plan
   * stands if nobody held or took the lock since that read; otherwise it is made again under the
   * lock. With --lock-wait the lock comes first, and the host is read once the other run is done.
   */
  private async lockAndPlan(conn: Connection): Promise<(TaskPlan | Error)[]> {
    const { options, playbook, log } = this.o;
    const wait = this.o.lockWaitSeconds;
    const takeLock = () => {
      const holder = `${os.userInfo().username}@${os.hostname()} pid ${process.pid}, started ${new Date(this.started).toISOString()}, playbook ${playbook.name}`;
      this.lock = conn.lock(holder, wait);
      this.lock.catch(() => undefined);
      return this.heldLock();
    };
    if (!options.check && wait > 0) await takeLock();
    let read = await this.readAndPlan(conn, this.startLive(conn));
    // Owed after_host hooks are run under the lock: the run that drained the host may still hold it.
    if (options.check || this.lock || (!writes(read.plans) && !this.debt.seen)) return read.plans;
    const lock = await takeLock();
    const seen = read.lock;
    if (!seen || seen.held || lock.generation === undefined || lock.generation !== seen.generation) {
      log.log(this.name, `planning again under the host lock: ${!seen ? 'its state could not be read' : seen.held ? 'another run held it while the host was read' : 'another run took it since the host was read'}`);
      // Everything is read again, the CRI calls too: another run may have changed the daemon.
      read = await this.readAndPlan(conn, this.startLive(conn));
    }
    return read.plans;
  }

  private startLive(conn: Connection): (Promise<unknown> | undefined)[] {
    const { host, vars, tasks } = this.play;
    const base = { host, vars, options: this.o.options, controller: this.o.controller };
    return tasks.map((t, i) => t.def.live?.(t.params, { ...base, settings: t.settings, prepared: this.prepared[i], conn }).catch((e: unknown) => (e instanceof Error ? e : new Error(String(e)))));
  }

  /** One round trip for facts and every probe, then each task's plan from what it found. */
  private async readAndPlan(conn: Connection, live: (Promise<unknown> | undefined)[]): Promise<{ plans: (TaskPlan | Error)[]; lock: Gathered['lock'] }> {
    const { options, controller, events, log } = this.o;
    const { host, vars, tasks } = this.play;
    const base = { host, vars, options, controller };
    events.hostPhase(this.name, 'gathering facts');
    const probes = new Map<string, Probe>();
    tasks.forEach((t, i) => {
      if (t.skip) return;
      for (const [id, body] of Object.entries(t.def.probes?.(t.params, { ...base, settings: t.settings, prepared: this.prepared[i] }) ?? {})) probes.set(`${i}:${id}`, body);
    });
    probes.set(DRAIN_PROBE, drainProbe());
    const specs = this.pathSpecs();
    for (const [name, spec] of specs) probes.set(`paths:${name}`, pathProbe(spec));
    const tRead = Date.now();
    const g = await gather(conn, probes);
    this.step(`read facts and ${probes.size} probe(s) of ${tasks.length} task(s) in one round trip: ${secs(tRead)}`);
    this.report.facts = g.facts;
    this.debt.readFromHost(g.results.get(DRAIN_PROBE)?.file?.content);
    log.log(this.name, `facts: ${JSON.stringify(g.facts)}`);
    // A plan made again starts from a clean slate: what earlier tasks predicted came from the first read.
    this.state = new PlanState();
    // The path variables, as this host resolves them, before any task plans from them.
    const refusals: string[] = [];
    for (const [name, spec] of specs) {
      const found = readHostPaths(spec, g.results.get(`paths:${name}`) ?? { out: '', code: 255 });
      log.log(this.name, `paths of ${name}: ${JSON.stringify([...found.paths.values()])}`);
      const { problems, checked } = checkHostPaths(spec, found, this.name, (v) => this.play.origin?.(v));
      refusals.push(...problems);
      for (const c of checked) this.state.paths.set(c.variable, c);
    }
    if (refusals.length) throw new Stop('failed', refusals.join('\n'));
    const plans: (TaskPlan | Error)[] = [];
    for (const [i, t] of tasks.entries()) {
      // A task limited to other hosts, or whose condition this host doesn't meet, plans nothing here.
      const skipped = t.skip ?? (t.spec.when?.fact !== undefined ? factSkip(t.spec.when, g.facts) : undefined);
      if (skipped) {
        plans.push({ actions: [], skipped });
        continue;
      }
      try {
        const tPlan = Date.now();
        plans.push(
          await t.def.plan(t.params, {
            ...base,
            settings: t.settings,
            facts: g.facts,
            prepared: this.prepared[i],
            state: this.state,
            probe: (id) => g.results.get(`${i}:${id}`) ?? { out: '', code: 255 },
            live: live[i],
          }),
        );
        const pl = plans[plans.length - 1] as TaskPlan;
        const kinds = pl.actions.map((a) => a.kind);
        const n = (k: string) => kinds.filter((x) => x === k).length;
        const counts = (['change', 'check', 'record'] as const).filter((k) => n(k)).map((k) => `${n(k)} ${k}${n(k) > 1 ? 's' : ''}`);
        this.step(`plan "${t.spec.title}": ${pl.skipped ? `skipped (${pl.skipped})` : counts.length ? counts.join(', ') : 'nothing to do'} in ${secs(tPlan)}`);
      } catch (e) {
        // Later tasks plan from what this one would have done; past a failed plan there is nothing to go on.
        plans.push(e instanceof Error ? e : new Error(String(e)));
        break;
      }
    }
    return { plans, lock: g.lock };
  }

  /** The path variables of each module this host's tasks belong to. */
  private pathSpecs(): Map<string, HostPathSpec> {
    const specs = new Map<string, HostPathSpec>();
    for (const t of this.play.tasks) {
      const m = t.module as TaskModule<never, unknown> | undefined;
      if (m?.hostPaths && !specs.has(m.name) && t.settings !== undefined) specs.set(m.name, m.hostPaths(t.settings));
    }
    return specs;
  }

  private async heldLock(): Promise<HostLock> {
    const tLock = Date.now();
    const lock = await this.lock!.catch((e: unknown) => {
      // Another run's lock fails the host; a host gone while the lock was being taken is unreachable.
      throw new Stop(this.conn?.isClosed ? 'unreachable' : 'failed', errorMessage(e), e instanceof LockHeldError ? 'locked' : undefined);
    });
    this.step(`host lock taken in ${secs(tLock)}`);
    if (lock.staleHolder && !this.report.notes.some((n) => n.includes(lock.staleHolder!))) {
      this.report.notes.push(`took over a stale host lock left by a killed run (${lock.staleHolder})`);
    }
    return lock;
  }

  private async hooks(kind: 'before_host' | 'after_host', conn: Connection): Promise<void> {
    const hooks = kind === 'before_host' ? this.o.playbook.beforeHost : this.o.playbook.afterHost;
    if (!hooks.length) return;
    if (kind === 'before_host') {
      // Checked before the drain is recorded: a host interrupted while it waited its turn was never drained.
      this.stopIfInterrupted(`before its ${kind} hooks`, this.changedBefore ? 'failed' : 'skipped');
      await this.recordDebt(conn);
      this.beforeHostRan = true;
    } else this.afterHostRan = true;
    this.o.events.hostPhase(this.name, `${kind} hooks`);
    for (const h of hooks) {
      const err = await this.runOneHook(kind, h, conn);
      if (!err) continue;
      if (kind === 'after_host') this.debt.why = `after_host hook "${h.run}" failed; the next run of any playbook on ${this.name} runs it first`;
      throw new Stop('failed', kind === 'before_host' ? `before_host hook failed, host left unchanged: ${err}` : `after_host hook failed: ${err}`);
    }
    if (kind === 'after_host') await this.settle(conn);
  }

  private async runOneHook(kind: string, h: Hook, conn: Connection): Promise<string | undefined> {
    this.stopIfInterrupted(`before the ${kind} hook "${h.run}"`);
    const t0 = Date.now();
    hostProgress.inFlight.set(this.name, `${kind} hook "${h.run}"`);
    const err = await runHook(h, conn, this.play, this.o.log, `${kind} hook`).finally(() => hostProgress.inFlight.delete(this.name));
    const line = `${kind} hook (${h.on}) "${h.run}": ${err ? 'failed' : 'ok'} in ${((Date.now() - t0) / 1000).toFixed(1)} s`;
    this.report.notes.push(redact(line));
    this.o.events.message(`${this.name} | ${redact(line)}`);
    return err;
  }

  /**
   * A host whose plan restarts a running service waits for a place in the run's restart gate, before
   * its hooks (a host waiting its turn is not drained yet) and before any change.
   */
  private async waitForRestartTurn(plans: (TaskPlan | Error)[]): Promise<void> {
    const disruptive = plans.flatMap((pl) => (pl instanceof Error ? [] : pl.actions.filter((a) => a.kind === 'change' && a.disruptive)));
    if (!disruptive.length || !this.o.gate) return;
    this.o.events.hostPhase(this.name, `waiting for its turn (${disruptive[0].disruptive}, ${this.o.gate.size} host(s) at a time)`);
    const t0 = Date.now();
    this.releaseTurn = await this.o.gate.enter().catch((e: Error) => {
      throw new Stop('skipped', e.message);
    });
    const waited = Date.now() - t0;
    this.o.log.log(this.name, `restart turn after ${waited} ms (${disruptive.map((a) => a.disruptive).join(', ')})`);
    if (waited >= 1000) this.report.notes.push(`waited ${(waited / 1000).toFixed(1)} s for its turn: ${disruptive[0].disruptive}, ${this.o.gate.size} host(s) at a time`);
  }

  /** Before the first before_host hook starts, the debt of the after_host hooks is recorded; a host where it can't be is not drained. */
  private async recordDebt(conn: Connection): Promise<void> {
    await this.debt.record(conn, this.o.playbook).catch((e: unknown) => {
      throw new Stop(conn.isClosed ? 'unreachable' : 'failed', `could not record the drain on the host, before_host hooks not run: ${errorMessage(e)}`);
    });
  }

  private async settle(conn: Connection): Promise<void> {
    const note = await this.debt.settle(conn);
    if (note) this.report.notes.push(redact(note));
  }

  private readDebt(): void {
    try {
      this.debt.refresh();
    } catch (e) {
      throw new Stop('failed', `${errorMessage(e)}: remove it once the host's after_host hooks have run`);
    }
  }

  /**
   * A debt from an earlier run (killed, interrupted, its after_host hooks failed, or its host lost)
   * is paid before anything else, even when the plan changes nothing. A check says so and runs nothing.
   */
  private async settleDebt(conn: Connection): Promise<void> {
    const rec = this.debt.owes;
    if (!rec || this.o.options.check) return;
    const { hooks, changed } = await this.debt.owedHooks(this.o.playbook, this.o.catalog).catch((e: unknown) => {
      throw e instanceof UnpayableDebt ? new Stop('failed', e.message) : e;
    });
    if (changed) this.report.notes.push(redact(`the after_host hooks of ${rec.playbook} changed since the drain; running them as they are now`));
    this.o.events.hostPhase(this.name, 'owed after_host hooks');
    for (const h of hooks) {
      const err = await this.runOneHook('owed after_host', h, conn);
      if (err) {
        this.debt.why = `the owed after_host hook "${h.run}" of playbook ${rec.playbookName} failed again (owed since ${rec.since}); the next run retries it`;
        throw new Stop('failed', `owed after_host hook failed: ${err}`);
      }
    }
    await this.settle(conn);
    this.report.notes.push(redact(`ran ${describeDebt(rec)}`));
  }

  private noteHooksThatWouldRun(): void {
    for (const [kind, hooks] of [['before_host', this.o.playbook.beforeHost], ['after_host', this.o.playbook.afterHost]] as const) {
      for (const h of hooks) this.report.notes.push(redact(`would run ${kind} hook (${h.on}) "${h.run}"`));
    }
  }

  /**
   * A host that failed after its before_host hooks (a drain) gets its after_host hooks (the uncordon)
   * when it is back in a known state: nothing changed, or every change rolled back. Otherwise the
   * recap says the node is still drained, so nobody mistakes it for one that is serving.
   */
  private async closeHookPair(): Promise<void> {
    if (!this.beforeHostRan || this.afterHostRan || !this.conn || this.o.options.check) return;
    const restored = !this.changedBefore || this.rolledBack === 'ok';
    if (restored && !this.conn.isClosed && this.o.playbook.afterHost.length) {
      try {
        await this.hooks('after_host', this.conn);
        this.report.notes.push(this.rolledBack === 'ok' ? 'after_host hooks ran after the rollback' : 'after_host hooks ran: the host was left unchanged');
        return;
      } catch (e) {
        this.debt.why = `after_host hooks failed after the failure (${errorMessage(e)}); before_host hooks ran; the next run of any playbook on ${this.name} runs them first`;
        return;
      }
    }
    const why = this.conn.isClosed ? 'the host is unreachable' : this.rolledBack === 'failed' ? 'the rollback failed' : 'its changes could not be undone';
    if (this.debt.owes) this.debt.why = `before_host hooks ran and after_host hooks did not, because ${why}; the next run of any playbook on ${this.name} runs them first`;
    else this.report.notes.push(`STILL DRAINED: before_host hooks ran and after_host hooks did not, because ${why}`);
  }

  private async apply(raw: Connection, plans: (TaskPlan | Error)[]): Promise<void> {
    const { events } = this.o;
    // Every command an action sends first checks that the path variables still resolve as planned.
    const conn = pinned(raw, pinCheckScript([...this.state.paths.values()]));
    // A task that cannot plan here (a kernel module or parameter the host lacks) stops the host before
    // its first change: the earlier tasks' changes would leave it half way to a state it cannot reach.
    const failed = plans.findIndex((pl) => pl instanceof Error);
    if (failed > 0 && !this.o.options.check) {
      for (const t of this.play.tasks.slice(0, failed)) {
        const tr = emptyTask(t, 'skipped', [`not applied: task "${this.play.tasks[failed].spec.title}" could not plan on this host`]);
        this.report.tasks.push(tr);
        events.taskDone(this.name, tr);
      }
      plans = plans.slice(failed);
    }
    const offset = this.report.tasks.length;
    for (const [j, pl] of plans.entries()) {
      const i = j + offset;
      const t = this.play.tasks[i];
      this.stopIfInterrupted(`before "${t.spec.title}"${i ? '; the tasks before it are done' : ''}`, i === 0 && !this.changedBefore ? 'skipped' : 'failed');
      const tr = emptyTask(t, 'ok');
      const t0 = Date.now();
      this.report.tasks.push(tr);
      if (pl instanceof Error) {
        tr.status = 'failed';
        tr.error = redact(pl.message);
        events.taskDone(this.name, tr);
        throw new Stop('failed', `${t.spec.title}: ${pl.message}${i > 0 && !this.o.options.check ? ' (nothing was changed on this host)' : ''}`);
      }
      if (pl.notes) tr.notes.push(...pl.notes.map(redact));
      if (pl.skipped) {
        tr.status = 'skipped';
        tr.notes.push(pl.skipped);
      }
      events.hostPhase(this.name, t.spec.title);
      hostProgress.inFlight.set(this.name, `task "${t.spec.title}"`);
      try {
        for (const a of pl.actions) {
          // Counted as soon as it starts: a change that failed halfway still needs undoing.
          const pendingBefore = this.changedBefore;
          if (a.kind === 'change') this.changedBefore = true;
          await this.runAction(a, conn, tr, pendingBefore);
        }
      } catch (e) {
        tr.status = 'failed';
        tr.error = redact(errorMessage(e));
        tr.durationMs = Date.now() - t0;
        events.taskDone(this.name, tr);
        if (conn.isClosed) throw new Stop('unreachable', `${t.spec.title}: ${errorMessage(e)}`);
        throw new Stop('failed', `${t.spec.title}: ${errorMessage(e)}${await this.rollback(conn)}`);
      }
      hostProgress.inFlight.delete(this.name);
      tr.durationMs = Date.now() - t0;
      events.taskDone(this.name, tr);
    }
  }

  /** Every task succeeded, verification included: copies of replaced credential files go (see PlanState.secretBackups). */
  private async dropSecretBackups(conn: Connection): Promise<void> {
    const paths = [...this.state.secretBackups];
    if (!paths.length) return;
    const copies = paths.map((p) => `${p}.hoist-prev`);
    await conn.check(`rm -f -- ${copies.map(quote).join(' ')}`, 'removing copies of replaced credential files').then(
      () => this.report.notes.push(`removed ${copies.join(', ')}: the replaced file held credentials, and the new one verified`),
      (e: unknown) => this.report.notes.push(redact(`could not remove ${copies.join(', ')} (${errorMessage(e)}): they may hold old credentials`)),
    );
  }

  /** Undoes a failed host's changes with the steps its tasks added; returns text for the error. */
  private async rollback(conn: Connection): Promise<string> {
    if (!this.changedBefore || this.state.rollback.empty || this.o.options.check) return '';
    this.o.events.hostPhase(this.name, 'rolling back');
    const said = await this.state.rollback.run(conn, this.o.log).then(
      (lines) => {
        this.rolledBack = 'ok';
        // What the tasks noted (a verification of the new release) describes an attempt that is gone.
        for (const t of this.report.tasks) t.notes = t.notes.map((n) => `failed attempt, rolled back: ${n}`);
        return lines.join('; ') || 'rolled back';
      },
      (e: unknown) => {
        this.rolledBack = 'failed';
        return `rollback FAILED: ${errorMessage(e)}`;
      },
    );
    this.report.notes.push(said);
    return ` — ${said}`;
  }

  private async runAction(a: Action, conn: Connection, tr: TaskReport, pendingBefore: boolean): Promise<void> {
    const t0 = Date.now();
    try {
      await this.runActionInner(a, conn, tr, pendingBefore);
      this.step(`${a.kind} "${tr.title}": ${a.summary}: ${this.o.options.check && (a.kind !== 'check' || pendingBefore) ? 'not run (check mode)' : `done in ${secs(t0)}`}`);
    } catch (e) {
      this.step(`${a.kind} "${tr.title}": ${a.summary}: failed after ${secs(t0)}`);
      throw e;
    }
  }

  private async runActionInner(a: Action, conn: Connection, tr: TaskReport, pendingBefore: boolean): Promise<void> {
    const { options, log } = this.o;
    const ctx = { options, log, state: this.state, note: (l: string) => tr.notes.push(redact(l)) };
    if (a.kind === 'change') {
      tr.status = 'changed';
      tr.changes.push(redact(a.summary));
      if (a.diff) tr.diffs.push(redact(a.diff));
      log.log(this.name, `${options.check ? 'would ' : ''}${a.summary}`);
      if (!options.check) await a.run(conn, ctx);
      return;
    }
    if (a.kind === 'record') {
      log.log(this.name, `${options.check ? 'would record' : 'record'}: ${a.summary}`);
      if (!options.check) await a.run(conn, ctx);
      return;
    }
    // Checks read the host; under --check they'd read a state the plan hasn't produced yet.
    if (options.check && pendingBefore) {
      tr.notes.push(`${a.summary}: not run, changes are pending`);
      return;
    }
    await a.run(conn, ctx);
    tr.notes.push(`${a.summary}: ok`);
  }
}

/** Whether applying these plans writes to the host (a change, or hoist's own bookkeeping). */
function writes(plans: (TaskPlan | Error)[]): boolean {
  return plans.some((p) => !(p instanceof Error) && p.actions.some((a) => a.kind !== 'check'));
}

/**
 * `conn` with `pre` run first in every command and upload: the same script, so a check and the write
 * it guards leave no gap for another round trip. The command's own first line stays its headline in
 * the trace and the log.
 */
export function pinned(conn: Connection, pre: string): Connection {
  if (!pre) return conn;
  const join = (...parts: (string | undefined)[]) => parts.filter(Boolean).join('\n');
  return new Proxy(conn, {
    get(target, key) {
      if (key === 'exec') return (script: string, o?: Parameters<Connection['exec']>[1]) => target.exec(script, { ...o, precheck: join(pre, o?.precheck) });
      if (key === 'check') return (script: string, what: string, o?: Parameters<Connection['check']>[2]) => target.check(script, what, { ...o, precheck: join(pre, o?.precheck) });
      if (key === 'upload') return (data: Parameters<Connection['upload']>[0], p: string, o: Parameters<Connection['upload']>[2]) => target.upload(data, p, { ...o, precheck: join(pre, o.precheck) });
      const v: unknown = Reflect.get(target, key, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
