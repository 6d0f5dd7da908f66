import os from 'node:os';
import { HostKeyError, type HostLock } from '../ssh/connection.js';
import type { Connection } from '../tasks/connection.js';
import { gather, type Gathered, type Probe } from '../facts/probe.js';
import { errorMessage } from '../util/errors.js';
import { redact } from '../util/redact.js';
import { PlanState, type Action, type Controller, type RunOptions, type TaskPlan } from '../tasks/types.js';
import type { Playbook } from '../playbook/playbook.js';
import type { HostPlay } from './play.js';
import type { HostReport, RunEvents, TaskReport } from './report.js';
import type { Logger } from '../util/log.js';
import { runHook } from './hooks.js';
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
}

/** Hosts currently inside a task, for a clean Ctrl-C message. */
export const inFlight = new Map<string, string>();

/** Ends a host's run early with a status and a reason. */
class Stop extends Error {
  constructor(readonly status: HostReport['status'], message: string) {
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

  constructor(private readonly play: HostPlay, private readonly prepared: unknown[], private readonly o: HostRunOptions) {
    this.report = { name: play.host.name, address: play.host.address, status: 'ok', tasks: [], notes: [], durationMs: 0 };
  }

  private get name(): string {
    return this.play.host.name;
  }

  async run(connecting: Promise<Connection>): Promise<HostReport> {
    try {
      this.conn = await connecting.catch((e: unknown) => {
        throw new Stop(e instanceof HostKeyError ? 'failed' : 'unreachable', errorMessage(e));
      });
      const plans = await this.lockAndPlan(this.conn);
      const changes = plans.some((pl) => !(pl instanceof Error) && pl.actions.some((a) => a.kind === 'change'));
      if (changes && this.o.options.check) this.noteHooksThatWouldRun();
      if (changes && !this.o.options.check) await this.hooks('before_host', this.conn);
      await this.apply(this.conn, plans);
      if (this.changedBefore && !this.o.options.check) await this.hooks('after_host', this.conn);
      return this.finish(this.report.tasks.some((t) => t.status === 'changed') ? 'changed' : 'ok');
    } catch (e) {
      await this.closeHookPair();
      if (e instanceof Stop) return this.finish(e.status, e.message);
      return this.finish(this.conn?.isClosed ? 'unreachable' : 'failed', errorMessage(e));
    } finally {
      inFlight.delete(this.name);
      // Released before the connection closes, so the lock's holder file is cleaned up rather than looking stale.
      await this.lock?.then((l) => l.release(), () => undefined);
    }
  }

  private finish(status: HostReport['status'], error?: string): HostReport {
    const r = this.report;
    r.status = status;
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
    if (options.check || this.lock || !writes(read.plans)) return read.plans;
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
      for (const [id, body] of Object.entries(t.def.probes?.(t.params, { ...base, settings: t.settings, prepared: this.prepared[i] }) ?? {})) probes.set(`${i}:${id}`, body);
    });
    const specs = this.pathSpecs();
    for (const [name, spec] of specs) probes.set(`paths:${name}`, pathProbe(spec));
    const g = await gather(conn, probes);
    this.report.facts = g.facts;
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
      try {
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
    const lock = await this.lock!.catch((e: unknown) => {
      // Another run's lock fails the host; a host gone while the lock was being taken is unreachable.
      throw new Stop(this.conn?.isClosed ? 'unreachable' : 'failed', errorMessage(e));
    });
    if (lock.staleHolder && !this.report.notes.some((n) => n.includes(lock.staleHolder!))) {
      this.report.notes.push(`took over a stale host lock left by a killed run (${lock.staleHolder})`);
    }
    return lock;
  }

  private async hooks(kind: 'before_host' | 'after_host', conn: Connection): Promise<void> {
    const hooks = kind === 'before_host' ? this.o.playbook.beforeHost : this.o.playbook.afterHost;
    if (!hooks.length) return;
    if (kind === 'before_host') this.beforeHostRan = true;
    else this.afterHostRan = true;
    this.o.events.hostPhase(this.name, `${kind} hooks`);
    for (const h of hooks) {
      const t0 = Date.now();
      const err = await runHook(h, conn, this.play, this.o.log);
      const line = `${kind} hook (${h.on}) "${h.run}": ${err ? 'failed' : 'ok'} in ${((Date.now() - t0) / 1000).toFixed(1)} s`;
      this.report.notes.push(redact(line));
      this.o.events.message(`${this.name} | ${redact(line)}`);
      if (err) throw new Stop('failed', kind === 'before_host' ? `before_host hook failed, host left unchanged: ${err}` : `after_host hook failed: ${err}`);
    }
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
        this.report.notes.push(`STILL DRAINED: after_host hooks failed after the failure (${errorMessage(e)}); before_host hooks ran`);
        return;
      }
    }
    const why = this.conn.isClosed ? 'the host is unreachable' : this.rolledBack === 'failed' ? 'the rollback failed' : 'its changes could not be undone';
    this.report.notes.push(`STILL DRAINED: before_host hooks ran and after_host hooks did not, because ${why}`);
  }

  private async apply(raw: Connection, plans: (TaskPlan | Error)[]): Promise<void> {
    const { events } = this.o;
    // Every command an action sends first checks that the path variables still resolve as planned.
    const conn = pinned(raw, pinCheckScript([...this.state.paths.values()]));
    for (const [i, pl] of plans.entries()) {
      const t = this.play.tasks[i];
      const tr = emptyTask(t, 'ok');
      const t0 = Date.now();
      this.report.tasks.push(tr);
      if (pl instanceof Error) {
        tr.status = 'failed';
        tr.error = redact(pl.message);
        events.taskDone(this.name, tr);
        throw new Stop('failed', `${t.spec.title}: ${pl.message}`);
      }
      if (pl.skipped) {
        tr.status = 'skipped';
        tr.notes.push(pl.skipped);
      }
      events.hostPhase(this.name, t.spec.title);
      inFlight.set(this.name, t.spec.title);
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
        throw new Stop('failed', `${t.spec.title}: ${errorMessage(e)}${await this.rollback(raw)}`);
      }
      inFlight.delete(this.name);
      tr.durationMs = Date.now() - t0;
      events.taskDone(this.name, tr);
    }
  }

  /** Undoes a failed host's changes with the steps its tasks added; returns text for the error. */
  private async rollback(conn: Connection): Promise<string> {
    if (!this.changedBefore || this.state.rollback.empty || this.o.options.check) return '';
    this.o.events.hostPhase(this.name, 'rolling back');
    const said = await this.state.rollback.run(conn, this.o.log).then(
      (lines) => {
        this.rolledBack = 'ok';
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
