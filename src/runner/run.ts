import path from 'node:path';
import type { Inventory } from '../inventory/inventory.js';
import { HostConnection, HostKeyError, type HostLock, type SecurityOptions } from '../ssh/connection.js';
import { endpointFor } from '../ssh/endpoint.js';
import { KnownHosts } from '../ssh/known-hosts.js';
import { gather } from '../facts/probe.js';
import { batchesOf, type Playbook } from '../playbook/playbook.js';
import { InputError, errorMessage } from '../util/errors.js';
import { redact } from '../util/redact.js';
import { PlanState, type Action, type Controller, type RunOptions, type TaskPlan } from '../tasks/types.js';
import type { Facts } from '../facts/facts.js';
import { resolvePlay, type HostPlay } from './play.js';
import { Semaphore } from './semaphore.js';
import { exitCodeOf, type HostReport, type RunEvents, type RunReport, type TaskReport } from './report.js';
import type { Logger } from './log.js';
import { runHook } from './hooks.js';
import os from 'node:os';

export interface RunRequest {
  inventory: Inventory;
  playbook: Playbook;
  extraVars: Record<string, unknown>;
  limit?: string;
  forks?: number;
  options: RunOptions;
  acceptNewHostKeys: boolean;
  knownHostsFile?: string;
  security?: Partial<SecurityOptions>;
  connectTimeoutMs?: number;
  commandTimeoutMs?: number;
  cacheDir?: string;
  /** Seconds to wait for another run's host lock (0: refuse at once). */
  lockWaitSeconds?: number;
  log: Logger;
  events: RunEvents;
}

interface Prepared {
  play: HostPlay;
  prepared: unknown[];
}

/** Hosts currently inside a task, for a clean Ctrl-C message. */
export const inFlight = new Map<string, string>();

export async function runPlaybook(req: RunRequest): Promise<RunReport> {
  const started = Date.now();
  const { inventory: inv, playbook: pb, options, events, log } = req;
  const plays = await resolvePlay(inv, pb, req.extraVars, req.limit);
  if (plays.length === 0) throw new InputError(`no hosts match ${JSON.stringify(pb.hosts)}${req.limit ? ` limited to "${req.limit}"` : ''}`);

  const controller: Controller = {
    playbookDir: pb.dir,
    inventoryDir: path.dirname(path.resolve(inv.file)),
    cacheDir: req.cacheDir,
    log,
    progress: (l, d, t) => events.progress(l, d, t),
  };
  const knownHosts = await KnownHosts.load(req.knownHostsFile ?? inv.knownHostsFile ?? path.join(os.homedir(), '.ssh', 'known_hosts'));
  const security: SecurityOptions = {
    knownHosts,
    acceptNewHostKeys: req.acceptNewHostKeys,
    passphrase: req.security?.passphrase ?? (async () => process.env.HOIST_SSH_PASSPHRASE),
    becomePassword: req.security?.becomePassword ?? (async () => process.env.HOIST_BECOME_PASSWORD),
  };
  const forks = new Semaphore(Math.min(req.forks ?? 50, 50));
  const epDefaults = { connectTimeoutMs: req.connectTimeoutMs ?? 10_000, commandTimeoutMs: req.commandTimeoutMs ?? 600_000 };

  // Connections open while the controller prepares (downloads, renders): neither waits for the other.
  const connecting = new Map(
    plays.map((p) => [
      p.host.name,
      forks.run(async () => {
        events.hostPhase(p.host.name, 'connecting');
        const ep = await endpointFor(p.host, inv, epDefaults);
        const conn = await HostConnection.connect(ep, security);
        log.log(p.host.name, `connected to ${ep.user}@${ep.host}:${ep.port}`);
        return conn;
      }),
    ]),
  );
  for (const c of connecting.values()) c.catch(() => undefined);
  let prepared: Prepared[];
  try {
    const t0 = Date.now();
    prepared = await prepareAll(plays, options, controller);
    log.log('hoist', `prepared ${plays.length} host(s) in ${Date.now() - t0} ms`);
  } catch (e) {
    for (const c of connecting.values()) void c.then((x) => x.close(), () => undefined);
    throw e;
  }

  const reports = new Map<string, HostReport>();
  let aborted: string | undefined;
  const batches = batchesOf(prepared, pb.serial);
  try {
    for (const [bi, batch] of batches.entries()) {
      if (aborted) {
        for (const p of batch) reports.set(p.play.host.name, skippedHost(p.play, aborted));
        continue;
      }
      const results = await Promise.all(
        batch.map((p) =>
          forks.run(() => runHost(p, connecting.get(p.play.host.name)!, { req, controller, pb })).then((r) => {
            reports.set(r.name, r);
            events.hostDone(r);
            return r;
          }),
        ),
      );
      if (bi < batches.length - 1) aborted = stopReason(results, prepared.length, pb.maxFailPercentage);
    }
  } finally {
    for (const c of connecting.values()) void c.then((x) => x.close(), () => undefined);
  }
  const hosts = prepared.map((p) => reports.get(p.play.host.name)!);
  return { playbook: pb.name, check: options.check, hosts, durationMs: Date.now() - started, exitCode: exitCodeOf(hosts), aborted };
}

async function prepareAll(plays: HostPlay[], options: RunOptions, controller: Controller): Promise<Prepared[]> {
  return Promise.all(
    plays.map(async (play) => ({
      play,
      prepared: await Promise.all(
        play.tasks.map((t) => (t.def.prepare ? t.def.prepare(t.params, { host: play.host, vars: play.vars, options, controller }) : undefined)),
      ),
    })),
  );
}

function skippedHost(play: HostPlay, reason: string): HostReport {
  return {
    name: play.host.name,
    address: play.host.address,
    status: 'skipped',
    error: reason,
    notes: [],
    durationMs: 0,
    tasks: play.tasks.map((t) => ({ index: t.spec.index, title: t.spec.title, task: t.spec.task, status: 'skipped', changes: [], diffs: [], notes: [reason], durationMs: 0 })),
  };
}

interface HostRunCtx {
  req: RunRequest;
  controller: Controller;
  pb: Playbook;
}

async function runHost(p: Prepared, connP: Promise<HostConnection>, c: HostRunCtx): Promise<HostReport> {
  const lockHolder: { p?: Promise<HostLock> } = {};
  try {
    return await runHostLocked(p, connP, c, lockHolder);
  } finally {
    // Released before the connection closes, so the lock's holder file is cleaned up rather than looking stale.
    await lockHolder.p?.then((l) => l.release(), () => undefined);
  }
}

async function runHostLocked(p: Prepared, connP: Promise<HostConnection>, { req, controller, pb }: HostRunCtx, lockHolder: { p?: Promise<HostLock> }): Promise<HostReport> {
  const { play } = p;
  const name = play.host.name;
  const started = Date.now();
  const { options, events, log } = req;
  const report: HostReport = { name, address: play.host.address, status: 'ok', tasks: [], notes: [], durationMs: 0 };
  let connection: HostConnection | undefined;
  const finish = (status: HostReport['status'], error?: string) => {
    report.status = status;
    report.bytesPushed = connection?.bytesPushed ?? 0;
    if (error) report.error = redact(error);
    report.durationMs = Date.now() - started;
    for (const t of play.tasks.slice(report.tasks.length)) {
      report.tasks.push({ index: t.spec.index, title: t.spec.title, task: t.spec.task, status: 'skipped', changes: [], diffs: [], notes: [], durationMs: 0 });
    }
    log.log(name, `host ${status}${error ? `: ${error}` : ''}`);
    return report;
  };

  let conn: HostConnection;
  try {
    conn = connection = await connP;
  } catch (e) {
    return finish(e instanceof HostKeyError ? 'failed' : 'unreachable', errorMessage(e));
  }
  const state = new PlanState();
  let facts: Facts;
  const plans: (TaskPlan | Error)[] = [];
  // Read-only runs need no lock. Without waiting, the lock is taken alongside the gathering round
  // trip; when waiting for another run, facts are read only once that run is done.
  const wait = req.lockWaitSeconds ?? 0;
  const lockP = (lockHolder.p = options.check ? undefined : conn.lock(`${os.userInfo().username}@${os.hostname()} pid ${process.pid}, started ${new Date(started).toISOString()}, playbook ${pb.name}`, wait));
  lockP?.catch(() => undefined);
  let lock: HostLock | undefined;
  try {
    if (lockP && wait > 0) lock = await lockP;
  } catch (e) {
    return finish('failed', errorMessage(e));
  }
  try {
    events.hostPhase(name, 'gathering facts');
    const probes = new Map<string, string>();
    play.tasks.forEach((t, i) => {
      const ps = t.def.probes?.(t.params, { host: play.host, vars: play.vars, options, controller, prepared: p.prepared[i] }) ?? {};
      for (const [id, body] of Object.entries(ps)) probes.set(`${i}:${id}`, body);
    });
    const g = await gather(conn, probes);
    try {
      lock ??= await lockP;
    } catch (e) {
      return finish('failed', errorMessage(e));
    }
    if (lock?.staleHolder) report.notes.push(`took over a stale host lock left by a killed run (${lock.staleHolder})`);
    facts = g.facts;
    report.facts = facts;
    log.log(name, `facts: ${JSON.stringify(facts)}`);
    for (let i = 0; i < play.tasks.length; i++) {
      const t = play.tasks[i];
      try {
        plans.push(
          await t.def.plan(t.params, {
            host: play.host,
            vars: play.vars,
            options,
            controller,
            facts,
            prepared: p.prepared[i],
            state,
            probe: (id) => g.results.get(`${i}:${id}`) ?? { out: '', code: 255 },
          }),
        );
      } catch (e) {
        plans.push(e instanceof Error ? e : new Error(String(e)));
        break;
      }
    }
  } catch (e) {
    return finish(conn.isClosed ? 'unreachable' : 'failed', errorMessage(e));
  }

  const hasChanges = plans.some((pl) => !(pl instanceof Error) && pl.actions.some((a) => a.kind === 'change'));
  if (!options.check && hasChanges && pb.beforeHost.length) {
    events.hostPhase(name, 'before_host hooks');
    for (const h of pb.beforeHost) {
      const err = await runHook(h, conn, play, log);
      if (err) return finish('failed', `before_host hook failed, host left unchanged: ${err}`);
    }
  }

  let changedBefore = false;
  for (let i = 0; i < plans.length; i++) {
    const t = play.tasks[i];
    const pl = plans[i];
    const tr: TaskReport = { index: t.spec.index, title: t.spec.title, task: t.spec.task, status: 'ok', changes: [], diffs: [], notes: [], durationMs: 0 };
    const t0 = Date.now();
    report.tasks.push(tr);
    if (pl instanceof Error) {
      tr.status = 'failed';
      tr.error = redact(pl.message);
      events.taskDone(name, tr);
      return finish('failed', `${t.spec.title}: ${pl.message}`);
    }
    if (pl.skipped) {
      tr.status = 'skipped';
      tr.notes.push(pl.skipped);
    }
    events.hostPhase(name, t.spec.title);
    inFlight.set(name, t.spec.title);
    try {
      for (const a of pl.actions) {
        // Counted as soon as it starts: a change that failed halfway still needs undoing.
        const before = changedBefore;
        if (a.kind === 'change') changedBefore = true;
        await runAction(a, conn, tr, { options, log, state, changedBefore: before, name });
      }
    } catch (e) {
      tr.status = 'failed';
      tr.error = redact(errorMessage(e));
      tr.durationMs = Date.now() - t0;
      events.taskDone(name, tr);
      inFlight.delete(name);
      if (conn.isClosed) return finish('unreachable', `${t.spec.title}: ${errorMessage(e)}`);
      let rolledBack = '';
      if (changedBefore && state.rollback && !options.check) {
        events.hostPhase(name, 'rolling back');
        rolledBack = await state.rollback(conn, log).catch((re: unknown) => `rollback FAILED: ${errorMessage(re)}`);
        report.notes.push(rolledBack);
      }
      return finish('failed', `${t.spec.title}: ${errorMessage(e)}${rolledBack ? ` — ${rolledBack}` : ''}`);
    }
    inFlight.delete(name);
    tr.durationMs = Date.now() - t0;
    events.taskDone(name, tr);
  }

  if (!options.check && changedBefore && pb.afterHost.length) {
    events.hostPhase(name, 'after_host hooks');
    for (const h of pb.afterHost) {
      const err = await runHook(h, conn, play, log);
      if (err) return finish('failed', `after_host hook failed: ${err}`);
    }
  }
  return finish(report.tasks.some((t) => t.status === 'changed') ? 'changed' : 'ok');
}

async function runAction(
  a: Action,
  conn: HostConnection,
  tr: TaskReport,
  c: { options: RunOptions; log: Logger; state: PlanState; changedBefore: boolean; name: string },
): Promise<void> {
  if (a.kind === 'change') {
    tr.status = 'changed';
    tr.changes.push(redact(a.summary));
    if (a.diff) tr.diffs.push(redact(a.diff));
    c.log.log(c.name, `${c.options.check ? 'would ' : ''}${a.summary}`);
    if (c.options.check) return;
    await a.run(conn, { options: c.options, log: c.log, state: c.state, note: (l) => tr.notes.push(redact(l)) });
    return;
  }
  // Checks read the host; under --check they'd read a state the plan hasn't produced yet.
  if (c.options.check && c.changedBefore) {
    tr.notes.push(`${a.summary}: not run, changes are pending`);
    return;
  }
  await a.run(conn, { options: c.options, log: c.log, state: c.state, note: (l) => tr.notes.push(redact(l)) });
  tr.notes.push(`${a.summary}: ok`);
}

/**
 * Whether the next batches must not start. With max_fail_percentage set, the share of failed hosts
 * in the whole play is compared with it; without it, only a batch in which every host failed stops
 * the roll-out.
 */
function stopReason(batch: HostReport[], total: number, maxFail: number | undefined): string | undefined {
  const failed = batch.filter((r) => r.status === 'failed' || r.status === 'unreachable');
  if (failed.length === 0) return undefined;
  const names = failed.map((r) => r.name).join(', ');
  if (maxFail === undefined) return failed.length === batch.length ? `roll-out stopped: every host of the batch failed (${names})` : undefined;
  return (failed.length / total) * 100 > maxFail ? `roll-out stopped after ${names} failed (max_fail_percentage = ${maxFail})` : undefined;
}
