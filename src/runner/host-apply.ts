import type { Connection } from '../tasks/connection.js';
import { errorMessage } from '../util/errors.js';
import { redact } from '../util/redact.js';
import type { Action, TaskPlan } from '../tasks/types.js';
import type { TaskReport } from './report.js';
import { hostProgress } from './interrupt.js';
import { quote } from '../ssh/quote.js';
import { pinCheckScript } from '../facts/paths.js';
import { Stop, emptyTask, secs, type HostContext } from './host-context.js';

/** The plans' actions in order (under --check, reported and not run), rolling back on a failed change. */
export async function apply(hr: HostContext, raw: Connection, plans: (TaskPlan | Error)[]): Promise<void> {
  hr.states.to('applying');
  const { events } = hr.o;
  // Every command an action sends first checks that the path variables still resolve as planned.
  const conn = pinned(raw, pinCheckScript([...hr.state.paths.values()]));
  // A task that cannot plan here (a kernel module or parameter the host lacks) stops the host before
  // its first change: the earlier tasks' changes would leave it half way to a state it cannot reach.
  const failed = plans.findIndex((pl) => pl instanceof Error);
  if (failed > 0 && !hr.o.options.check) {
    for (const t of hr.play.tasks.slice(0, failed)) {
      const tr = emptyTask(t, 'skipped', [`not applied: task "${hr.play.tasks[failed].spec.title}" could not plan on this host`]);
      hr.report.tasks.push(tr);
      events.taskDone(hr.name, tr);
    }
    plans = plans.slice(failed);
  }
  const offset = hr.report.tasks.length;
  for (const [j, pl] of plans.entries()) {
    const i = j + offset;
    const t = hr.play.tasks[i];
    hr.stopIfInterrupted(`before "${t.spec.title}"${i ? '; the tasks before it are done' : ''}`, i === 0 && !hr.changedBefore ? 'skipped' : 'failed');
    const tr = emptyTask(t, 'ok');
    const t0 = Date.now();
    hr.report.tasks.push(tr);
    if (pl instanceof Error) {
      tr.status = 'failed';
      tr.error = redact(pl.message);
      events.taskDone(hr.name, tr);
      throw new Stop('failed', `${t.spec.title}: ${pl.message}${i > 0 && !hr.o.options.check ? ' (nothing was changed on this host)' : ''}`);
    }
    if (pl.notes) tr.notes.push(...pl.notes.map(redact));
    if (pl.skipped) {
      tr.status = 'skipped';
      tr.notes.push(pl.skipped);
    }
    events.hostPhase(hr.name, t.spec.title);
    hostProgress.inFlight.set(hr.name, `task "${t.spec.title}"`);
    try {
      for (const a of pl.actions) {
        // Counted as soon as it starts: a change that failed halfway still needs undoing.
        const pendingBefore = hr.changedBefore;
        if (a.kind === 'change') hr.changedBefore = true;
        await runAction(hr, a, conn, tr, pendingBefore);
      }
    } catch (e) {
      tr.status = 'failed';
      tr.error = redact(errorMessage(e));
      tr.durationMs = Date.now() - t0;
      events.taskDone(hr.name, tr);
      if (conn.isClosed) throw new Stop('unreachable', `${t.spec.title}: ${errorMessage(e)}`);
      throw new Stop('failed', `${t.spec.title}: ${errorMessage(e)}${await rollback(hr, conn)}`);
    }
    hostProgress.inFlight.delete(hr.name);
    tr.durationMs = Date.now() - t0;
    events.taskDone(hr.name, tr);
  }
}

/** Every task succeeded, verification included: copies of replaced credential files go (see PlanState.secretBackups). */
export async function dropSecretBackups(hr: HostContext, conn: Connection): Promise<void> {
  const paths = [...hr.state.secretBackups];
  if (!paths.length) return;
  const copies = paths.map((p) => `${p}.hoist-prev`);
  await conn.check(`rm -f -- ${copies.map(quote).join(' ')}`, 'removing copies of replaced credential files').then(
    () => hr.report.notes.push(`removed ${copies.join(', ')}: the replaced file held credentials, and the new one verified`),
    (e: unknown) => hr.report.notes.push(redact(`could not remove ${copies.join(', ')} (${errorMessage(e)}): they may hold old credentials`)),
  );
}

/** Undoes a failed host's changes with the steps its tasks added; returns text for the error. */
async function rollback(hr: HostContext, conn: Connection): Promise<string> {
  if (!hr.changedBefore || hr.state.rollback.empty || hr.o.options.check) return '';
  hr.states.to('rolling back');
  hr.o.events.hostPhase(hr.name, 'rolling back');
  const said = await hr.state.rollback.run(conn, hr.o.log).then(
    (lines) => {
      hr.rolledBack = 'ok';
      // What the tasks noted (a verification of the new release) describes an attempt that is gone.
      for (const t of hr.report.tasks) t.notes = t.notes.map((n) => `failed attempt, rolled back: ${n}`);
      return lines.join('; ') || 'rolled back';
    },
    (e: unknown) => {
      hr.rolledBack = 'failed';
      return `rollback FAILED: ${errorMessage(e)}`;
    },
  );
  hr.report.notes.push(said);
  return ` — ${said}`;
}

async function runAction(hr: HostContext, a: Action, conn: Connection, tr: TaskReport, pendingBefore: boolean): Promise<void> {
  const t0 = Date.now();
  try {
    await runActionInner(hr, a, conn, tr, pendingBefore);
    hr.step(
      `${a.kind} "${tr.title}": ${a.summary}: ${hr.o.options.check && (a.kind !== 'check' || pendingBefore) ? 'not run (check mode)' : `done in ${secs(t0)}`}`,
    );
  } catch (e) {
    hr.step(`${a.kind} "${tr.title}": ${a.summary}: failed after ${secs(t0)}`);
    throw e;
  }
}

async function runActionInner(hr: HostContext, a: Action, conn: Connection, tr: TaskReport, pendingBefore: boolean): Promise<void> {
  const { options, log } = hr.o;
  const ctx = { options, log, state: hr.state, note: (l: string) => tr.notes.push(redact(l)) };
  if (a.kind === 'change') {
    tr.status = 'changed';
    tr.changes.push(redact(a.summary));
    if (a.diff) tr.diffs.push(redact(a.diff));
    log.log(hr.name, `${options.check ? 'would ' : ''}${a.summary}`);
    if (!options.check) await a.run(conn, ctx);
    return;
  }
  if (a.kind === 'record') {
    log.log(hr.name, `${options.check ? 'would record' : 'record'}: ${a.summary}`);
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
      if (key === 'check')
        return (script: string, what: string, o?: Parameters<Connection['check']>[2]) => target.check(script, what, { ...o, precheck: join(pre, o?.precheck) });
      if (key === 'upload')
        return (data: Parameters<Connection['upload']>[0], p: string, o: Parameters<Connection['upload']>[2]) =>
          target.upload(data, p, { ...o, precheck: join(pre, o.precheck) });
      const v: unknown = Reflect.get(target, key, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
