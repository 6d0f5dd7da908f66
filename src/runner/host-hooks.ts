import type { Connection } from '../tasks/connection.js';
import { errorMessage } from '../util/errors.js';
import { redact } from '../util/redact.js';
import type { Hook } from '../playbook/playbook.js';
import { describeDebt } from './drain-journal.js';
import { UnpayableDebt } from './drain-debt.js';
import { runHook } from './hooks.js';
import { hostProgress } from './interrupt.js';
import { Stop, type HostContext } from './host-context.js';

/**
 * The playbook's before_host hooks (the drain, recorded as owed first) or after_host hooks (the
 * undrain, settling the debt). Hooks wrap a changed host: what ran decides, after a failure,
 * whether the pair can still be closed (closeHookPair).
 */
export async function hooks(hr: HostContext, kind: 'before_host' | 'after_host', conn: Connection): Promise<void> {
  const hooks = kind === 'before_host' ? hr.o.playbook.beforeHost : hr.o.playbook.afterHost;
  if (!hooks.length) return;
  if (kind === 'before_host') {
    // Checked before the drain is recorded: a host interrupted while it waited its turn was never drained.
    hr.stopIfInterrupted(`before its ${kind} hooks`, hr.changedBefore ? 'failed' : 'skipped');
    hr.states.to('recording drain');
    await recordDebt(hr, conn);
    hr.states.to('draining');
  } else hr.states.to('undraining');
  hr.o.events.hostPhase(hr.name, `${kind} hooks`);
  for (const h of hooks) {
    const err = await runOneHook(hr, kind, h, conn);
    if (!err) continue;
    if (kind === 'after_host') hr.debt.why = `after_host hook "${h.run}" failed; the next run of any playbook on ${hr.name} runs it first`;
    throw new Stop('failed', kind === 'before_host' ? `before_host hook failed, host left unchanged: ${err}` : `after_host hook failed: ${err}`);
  }
  if (kind === 'after_host') await settle(hr, conn);
}

async function runOneHook(hr: HostContext, kind: string, h: Hook, conn: Connection): Promise<string | undefined> {
  hr.stopIfInterrupted(`before the ${kind} hook "${h.run}"`);
  const t0 = Date.now();
  hostProgress.inFlight.set(hr.name, `${kind} hook "${h.run}"`);
  const err = await runHook(h, conn, hr.play, hr.o.log, `${kind} hook`).finally(() => hostProgress.inFlight.delete(hr.name));
  const line = `${kind} hook (${h.on}) "${h.run}": ${err ? 'failed' : 'ok'} in ${((Date.now() - t0) / 1000).toFixed(1)} s`;
  hr.report.notes.push(redact(line));
  hr.o.events.message(`${hr.name} | ${redact(line)}`);
  return err;
}

/** Before the first before_host hook starts, the debt of the after_host hooks is recorded; a host where it can't be is not drained. */
async function recordDebt(hr: HostContext, conn: Connection): Promise<void> {
  await hr.debt.record(conn, hr.o.playbook).catch((e: unknown) => {
    throw new Stop(conn.isClosed ? 'unreachable' : 'failed', `could not record the drain on the host, before_host hooks not run: ${errorMessage(e)}`);
  });
}

async function settle(hr: HostContext, conn: Connection): Promise<void> {
  const note = await hr.debt.settle(conn);
  if (note) hr.report.notes.push(redact(note));
}

export function readDebt(hr: HostContext): void {
  try {
    hr.debt.refresh();
  } catch (e) {
    throw new Stop('failed', `${errorMessage(e)}: remove it once the host's after_host hooks have run`);
  }
}

/**
 * A debt from an earlier run (killed, interrupted, its after_host hooks failed, or its host lost)
 * is paid before anything else, even when the plan changes nothing. A check says so and runs nothing.
 */
export async function settleDebt(hr: HostContext, conn: Connection): Promise<void> {
  const rec = hr.debt.owes;
  if (!rec || hr.o.options.check) return;
  hr.states.to('paying debt');
  const { hooks, changed } = await hr.debt.owedHooks(hr.o.playbook, hr.o.catalog).catch((e: unknown) => {
    throw e instanceof UnpayableDebt ? new Stop('failed', e.message) : e;
  });
  if (changed) hr.report.notes.push(redact(`the after_host hooks of ${rec.playbook} changed since the drain; running them as they are now`));
  hr.o.events.hostPhase(hr.name, 'owed after_host hooks');
  for (const h of hooks) {
    const err = await runOneHook(hr, 'owed after_host', h, conn);
    if (err) {
      hr.debt.why = `the owed after_host hook "${h.run}" of playbook ${rec.playbookName} failed again (owed since ${rec.since}); the next run retries it`;
      throw new Stop('failed', `owed after_host hook failed: ${err}`);
    }
  }
  await settle(hr, conn);
  hr.report.notes.push(redact(`ran ${describeDebt(rec)}`));
}

export function noteHooksThatWouldRun(hr: HostContext): void {
  for (const [kind, hooks] of [
    ['before_host', hr.o.playbook.beforeHost],
    ['after_host', hr.o.playbook.afterHost],
  ] as const) {
    for (const h of hooks) hr.report.notes.push(redact(`would run ${kind} hook (${h.on}) "${h.run}"`));
  }
}

/**
 * A host that failed after its before_host hooks (a drain) gets its after_host hooks (the uncordon)
 * when it is back in a known state: nothing changed, or every change rolled back. Otherwise the
 * recap says the node is still drained, so nobody mistakes it for one that is serving.
 */
export async function closeHookPair(hr: HostContext): Promise<void> {
  if (!hr.states.visited('draining') || hr.states.visited('undraining') || !hr.conn || hr.o.options.check) return;
  const restored = !hr.changedBefore || hr.rolledBack === 'ok';
  if (restored && !hr.conn.isClosed && hr.o.playbook.afterHost.length) {
    try {
      await hooks(hr, 'after_host', hr.conn);
      hr.report.notes.push(hr.rolledBack === 'ok' ? 'after_host hooks ran after the rollback' : 'after_host hooks ran: the host was left unchanged');
      return;
    } catch (e) {
      hr.debt.why = `after_host hooks failed after the failure (${errorMessage(e)}); before_host hooks ran; the next run of any playbook on ${hr.name} runs them first`;
      return;
    }
  }
  const why = hr.conn.isClosed ? 'the host is unreachable' : hr.rolledBack === 'failed' ? 'the rollback failed' : 'its changes could not be undone';
  if (hr.debt.owes)
    hr.debt.why = `before_host hooks ran and after_host hooks did not, because ${why}; the next run of any playbook on ${hr.name} runs them first`;
  else hr.report.notes.push(`STILL DRAINED: before_host hooks ran and after_host hooks did not, because ${why}`);
}
