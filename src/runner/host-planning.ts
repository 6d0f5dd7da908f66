import os from 'node:os';
import type { HostLock } from '../ssh/connection.js';
import type { Connection } from '../tasks/connection.js';
import { gather, type Gathered, type Probe } from '../facts/probe.js';
import { errorMessage, InternalError, LockHeldError } from '../util/errors.js';
import { PlanState, type HostPathSpec, type TaskModule, type TaskPlan } from '../tasks/types.js';
import { DRAIN_PROBE, drainProbe } from './drain-debt.js';
import { factSkip } from '../playbook/condition.js';
import { checkHostPaths, pathProbe, readHostPaths } from './path-check.js';
import { Stop, secs, type HostContext } from './host-context.js';

/**
 * Read-only runs need no lock, and neither does a run that finds nothing to change: the host is
 * read first (facts and every probe in one round trip, which also notes the lock's generation and
 * whether a run holds it), and the lock is taken only when the plan changes something. The plan
 * stands if nobody held or took the lock since that read; otherwise it is made again under the
 * lock. With --lock-wait the lock comes first, and the host is read once the other run is done.
 */
export async function lockAndPlan(hr: HostContext, conn: Connection): Promise<(TaskPlan | Error)[]> {
  const { options, playbook, log } = hr.o;
  const wait = hr.o.lockWaitSeconds;
  const takeLock = () => {
    hr.states.to('locking');
    const holder = `${os.userInfo().username}@${os.hostname()} pid ${process.pid}, started ${new Date(hr.started).toISOString()}, playbook ${playbook.name}`;
    hr.lock = conn.lock(holder, wait);
    hr.lock.catch(() => undefined);
    return heldLock(hr);
  };
  if (!options.check && wait > 0) await takeLock();
  hr.states.to('planning');
  let read = await readAndPlan(hr, conn, startLive(hr, conn));
  // Owed after_host hooks are run under the lock: the run that drained the host may still hold it.
  if (options.check || hr.lock || (!writes(read.plans) && !hr.debt.seen)) return read.plans;
  const lock = await takeLock();
  const seen = read.lock;
  if (!seen || seen.held || lock.generation === undefined || lock.generation !== seen.generation) {
    log.log(
      hr.name,
      `planning again under the host lock: ${!seen ? 'its state could not be read' : seen.held ? 'another run held it while the host was read' : 'another run took it since the host was read'}`,
    );
    // Everything is read again, the CRI calls too: another run may have changed the daemon.
    hr.states.to('planning');
    read = await readAndPlan(hr, conn, startLive(hr, conn));
  }
  return read.plans;
}

function startLive(hr: HostContext, conn: Connection): (Promise<unknown> | undefined)[] {
  const { host, vars, tasks } = hr.play;
  const base = { host, vars, options: hr.o.options, controller: hr.o.controller };
  return tasks.map((t, i) =>
    t.def
      .live?.(t.params, { ...base, settings: t.settings, prepared: hr.prepared[i], conn })
      .catch((e: unknown) => (e instanceof Error ? e : new InternalError(`a task threw a non-error: ${String(e)}`))),
  );
}

/** One round trip for facts and every probe, then each task's plan from what it found. */
async function readAndPlan(
  hr: HostContext,
  conn: Connection,
  live: (Promise<unknown> | undefined)[],
): Promise<{ plans: (TaskPlan | Error)[]; lock: Gathered['lock'] }> {
  const { options, controller, events, log } = hr.o;
  const { host, vars, tasks } = hr.play;
  const base = { host, vars, options, controller };
  events.hostPhase(hr.name, 'gathering facts');
  const probes = new Map<string, Probe>();
  tasks.forEach((t, i) => {
    if (t.skip) return;
    for (const [id, body] of Object.entries(t.def.probes?.(t.params, { ...base, settings: t.settings, prepared: hr.prepared[i] }) ?? {}))
      probes.set(`${i}:${id}`, body);
  });
  probes.set(DRAIN_PROBE, drainProbe());
  const specs = pathSpecs(hr);
  for (const [name, spec] of specs) probes.set(`paths:${name}`, pathProbe(spec));
  const tRead = Date.now();
  const g = await gather(conn, probes, { systemState: hr.o.systemState });
  hr.step(`read facts and ${probes.size} probe(s) of ${tasks.length} task(s) in one round trip: ${secs(tRead)}`);
  hr.report.facts = g.facts;
  hr.debt.readFromHost(g.results.get(DRAIN_PROBE)?.file?.content);
  log.log(hr.name, `facts: ${JSON.stringify(g.facts)}`);
  // A plan made again starts from a clean slate: what earlier tasks predicted came from the first read.
  hr.state = new PlanState();
  // The path variables, as this host resolves them, before any task plans from them.
  const refusals: string[] = [];
  for (const [name, spec] of specs) {
    const found = readHostPaths(spec, g.results.get(`paths:${name}`) ?? { out: '', code: 255 });
    log.log(hr.name, `paths of ${name}: ${JSON.stringify([...found.paths.values()])}`);
    const { problems, checked } = checkHostPaths(spec, found, hr.name, (v) => hr.play.origin?.(v));
    refusals.push(...problems);
    for (const c of checked) hr.state.paths.set(c.variable, c);
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
          prepared: hr.prepared[i],
          state: hr.state,
          probe: (id) => g.results.get(`${i}:${id}`) ?? { out: '', code: 255 },
          live: live[i],
        }),
      );
      const pl = plans[plans.length - 1] as TaskPlan;
      const kinds = pl.actions.map((a) => a.kind);
      const n = (k: string) => kinds.filter((x) => x === k).length;
      const counts = (['change', 'check', 'record'] as const).filter((k) => n(k)).map((k) => `${n(k)} ${k}${n(k) > 1 ? 's' : ''}`);
      hr.step(`plan "${t.spec.title}": ${pl.skipped ? `skipped (${pl.skipped})` : counts.length ? counts.join(', ') : 'nothing to do'} in ${secs(tPlan)}`);
    } catch (e) {
      // Later tasks plan from what this one would have done; past a failed plan there is nothing to go on.
      plans.push(e instanceof Error ? e : new InternalError(`a task threw a non-error: ${String(e)}`));
      break;
    }
  }
  return { plans, lock: g.lock };
}

/** The path variables of each module this host's tasks belong to. */
function pathSpecs(hr: HostContext): Map<string, HostPathSpec> {
  const specs = new Map<string, HostPathSpec>();
  for (const t of hr.play.tasks) {
    const m = t.module as TaskModule<never, unknown> | undefined;
    if (m?.hostPaths && !specs.has(m.name) && t.settings !== undefined) specs.set(m.name, m.hostPaths(t.settings));
  }
  return specs;
}

async function heldLock(hr: HostContext): Promise<HostLock> {
  const tLock = Date.now();
  const lock = await hr.lock!.catch((e: unknown) => {
    // Another run's lock fails the host; a host gone while the lock was being taken is unreachable.
    throw new Stop(hr.conn?.isClosed ? 'unreachable' : 'failed', errorMessage(e), e instanceof LockHeldError ? 'locked' : undefined);
  });
  hr.step(`host lock taken in ${secs(tLock)}`);
  if (lock.staleHolder && !hr.report.notes.some((n) => n.includes(lock.staleHolder!))) {
    hr.report.notes.push(`took over a stale host lock left by a killed run (${lock.staleHolder})`);
  }
  return lock;
}

/** Whether applying these plans writes to the host (a change, or hoist's own bookkeeping). */
function writes(plans: (TaskPlan | Error)[]): boolean {
  return plans.some((p) => !(p instanceof Error) && p.actions.some((a) => a.kind !== 'check'));
}
