import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Inventory } from '../inventory/inventory.js';
import { HostConnection } from '../ssh/connection.js';
import { Credentials, type SecretSources } from '../ssh/credentials.js';
import { describeRoute, endpointFor, type Endpoint } from '../ssh/endpoint.js';
import { GLOBAL_KNOWN_HOSTS, KnownHosts } from '../ssh/known-hosts.js';
import { batchesOf, type Playbook } from '../playbook/playbook.js';
import { InputError, InterruptedError } from '../util/errors.js';
import { maskVariables, redact } from '../util/redact.js';
import type { Controller, RunOptions } from '../tasks/types.js';
import { resolvePlay, type HostPlay } from './play.js';
import { Semaphore } from './semaphore.js';
import { FanOut } from './fan-out.js';
import { exitCodeOf, type HostReport, type RunEvents, type RunReport } from './report.js';
import type { Logger } from '../util/log.js';
import type { TaskCatalog } from '../tasks/catalog.js';
import type { VarLayer } from '../util/var-layer.js';
import { HostRun } from './host-run.js';
import { interruption } from './interrupt.js';
import { RestartGate, restartBatchSize } from './restart-gate.js';
import os from 'node:os';

export interface RunRequest {
  inventory: Inventory;
  playbook: Playbook;
  /** The tasks and modules the playbook was loaded with, whose variables are checked on every host. */
  catalog: TaskCatalog;
  /** -e layers, highest precedence; a plain table stands for one layer. */
  extraVars: Record<string, unknown> | VarLayer[];
  limit?: string;
  forks?: number;
  options: RunOptions;
  acceptNewHostKeys: boolean;
  knownHostsFile?: string;
  /** Passphrases and the sudo password when they are not in files (environment, terminal). */
  secrets?: SecretSources;
  connectTimeoutMs?: number;
  commandTimeoutMs?: number;
  cacheDir?: string;
  /** -v count: 1 each step per host with its duration, 2 each remote command, 3 scripts and remote output (the log has steps and commands always). */
  verbosity?: number;
  /** Seconds to wait for another run's host lock (0: refuse at once). */
  lockWaitSeconds?: number;
  log: Logger;
  events: RunEvents;
  /** Run the modules' checks across hosts once every host is done (`hoist verify`). */
  fleetChecks?: boolean;
  /** Also read systemd's overall state (`hoist facts`); planning doesn't use it, and it costs each host a systemctl. */
  systemState?: boolean;
}

/**
 * The known_hosts file hoist checks keys against (and records accepted ones in), plus OpenSSH's global
 * file. One named explicitly (--known-hosts, the inventory's known_hosts_file) must exist before any
 * host is contacted, unless new keys are to be recorded in it.
 */
async function loadKnownHosts(req: RunRequest, inv: Inventory): Promise<KnownHosts> {
  const explicit = req.knownHostsFile
    ? { file: req.knownHostsFile, from: '--known-hosts' }
    : inv.knownHostsFile
      ? { file: inv.knownHostsFile, from: `known_hosts_file in ${inv.file}` }
      : undefined;
  const file = explicit?.file ?? path.join(os.homedir(), '.ssh', 'known_hosts');
  if (explicit && !req.acceptNewHostKeys && !existsSync(explicit.file)) {
    throw new InputError(
      `known_hosts file ${explicit.file} (${explicit.from}) does not exist: no host key could be checked. Fix the path, or run with --accept-new-host-keys to create it.`,
    );
  }
  try {
    return await KnownHosts.load(file, [GLOBAL_KNOWN_HOSTS]);
  } catch (e) {
    throw new InputError(`cannot read known_hosts file ${file}${explicit ? ` (${explicit.from})` : ''}: ${(e as Error).message}`);
  }
}

interface Prepared {
  play: HostPlay;
  prepared: unknown[];
}

import { owedBefore } from './drain-journal.js';

export async function runPlaybook(req: RunRequest): Promise<RunReport> {
  const started = Date.now();
  const { inventory: inv, playbook: pb, options, events, log } = req;
  const plays = await resolvePlay(inv, pb, req.extraVars, { catalog: req.catalog, limit: req.limit });
  if (plays.length === 0) throw new InputError(`no hosts match ${JSON.stringify(pb.hosts)}${req.limit ? ` limited to "${req.limit}"` : ''}`);
  // The plan's inputs in the log: each host's resolved variables, credentials masked.
  for (const p of plays) log.log(p.host.name, `variables: ${JSON.stringify(maskVariables(p.vars))}`);

  const controller: Controller = {
    playbookDir: pb.dir,
    inventoryDir: path.dirname(path.resolve(inv.file)),
    cacheDir: req.cacheDir,
    log,
    progress: (l, d, t) => events.progress(l, d, t),
    deliver: new FanOut(log).deliver,
  };
  const knownHosts = await loadKnownHosts(req, inv);
  for (const n of knownHosts.notes) {
    log.log('hoist', n);
    if ((req.verbosity ?? 0) >= 1) events.message(`known_hosts: ${n}`);
  }
  const epDefaults = { connectTimeoutMs: req.connectTimeoutMs ?? 10_000, commandTimeoutMs: req.commandTimeoutMs ?? 600_000 };
  // Every route, key and password is resolved before the first connection: bad credentials are bad input.
  const endpoints = new Map<string, Endpoint>();
  for (const p of plays) endpoints.set(p.host.name, await endpointFor(p.host, inv, epDefaults));
  const credentials = await Credentials.prepare([...endpoints.values()], req.secrets ?? envSecrets());
  const transport = { knownHosts, acceptNewHostKeys: req.acceptNewHostKeys, credentials };
  checkOpenFiles([...endpoints.values()]);
  const forks = new Semaphore(forkLimit(req.forks, plays.length));
  // Every input is checked and every question asked: only now may a live view take the terminal.
  events.start?.(plays.map((p) => p.host.name));

  // Connections open while the controller prepares (downloads, renders): neither waits for the other.
  const connecting = new Map(
    plays.map((p) => [
      p.host.name,
      forks.run(async () => {
        events.hostPhase(p.host.name, 'connecting');
        const ep = endpoints.get(p.host.name)!;
        const tConnect = Date.now();
        const conn = await HostConnection.connect(ep, transport);
        const verbosity = req.verbosity ?? 0;
        conn.trace = (level, text) => {
          // Remote output (level 3) can hold file contents a probe read back, credentials included in
          // forms hoist never saw as secrets (a base64 auth): it is logged only when asked for with -vvv.
          if (level < 3 || verbosity >= 3) log.log(p.host.name, text);
          // -v is hoist's own steps (HostContext.step); -vv adds each remote command, -vvv scripts and output.
          if ((level === 1 ? 2 : 3) <= verbosity)
            events.message(
              redact(
                text
                  .split('\n')
                  .map((l) => `${p.host.name} | ${l}`)
                  .join('\n'),
              ),
            );
        };
        const connected = `connected: ${describeRoute(ep)}${ep.become ? ` (become ${ep.become.user})` : ''} in ${((Date.now() - tConnect) / 1000).toFixed(2)} s`;
        log.log(p.host.name, connected);
        if (verbosity >= 1) events.message(`${p.host.name} | ${redact(connected)}`);
        return conn;
      }),
    ]),
  );
  for (const c of connecting.values()) c.catch(() => undefined);
  // Rendering is synchronous work: the dials go out first, and the hosts answer while it runs.
  await new Promise<void>((resolve) => setImmediate(resolve));
  let prepared: Prepared[];
  try {
    const t0 = Date.now();
    // A download can take minutes; an interrupt while it runs ends the run before any host is touched.
    prepared = await Promise.race([
      prepareAll(plays, options, controller),
      interruption.wait().then((s) => {
        throw new InterruptedError(s, 'while preparing the run (downloads, templates); no host was changed');
      }),
    ]);
    log.log('hoist', `prepared ${plays.length} host(s) in ${Date.now() - t0} ms`);
  } catch (e) {
    for (const c of connecting.values())
      void c.then(
        (x) => x.close(),
        () => undefined,
      );
    throw e;
  }

  const reports = new Map<string, HostReport>();
  let aborted: string | undefined;
  const gate = new RestartGate(restartBatchSize(pb.restartBatch, prepared.length));
  const hostOptions = {
    options,
    controller,
    playbook: pb,
    events,
    log,
    lockWaitSeconds: req.lockWaitSeconds ?? 0,
    verbosity: req.verbosity ?? 0,
    catalog: req.catalog,
    gate,
    systemState: req.systemState,
  };
  const batches = batchesOf(prepared, pb.serial);
  try {
    for (const [bi, batch] of batches.entries()) {
      if (!aborted && interruption.signal) aborted = `roll-out stopped: interrupted by ${interruption.signal}`;
      if (aborted) {
        for (const p of batch) {
          const r = skippedHost(p.play, aborted);
          reports.set(r.name, r);
          events.hostDone(r);
        }
        continue;
      }
      const results = await Promise.all(
        batch.map((p) =>
          forks
            .run(() => new HostRun(p.play, p.prepared, hostOptions).run(connecting.get(p.play.host.name)!))
            .then((r) => {
              reports.set(r.name, r);
              events.hostDone(r);
              return r;
            }),
        ),
      );
      if (bi < batches.length - 1) aborted = stopReason(results, prepared.length, pb.maxFailPercentage);
    }
  } finally {
    for (const c of connecting.values())
      void c.then(
        (x) => x.close(),
        () => undefined,
      );
  }
  const hosts = prepared.map((p) => reports.get(p.play.host.name)!);
  if (req.fleetChecks) fleetChecks(hosts, pb, req.catalog);
  const hooks = [...pb.beforeHost.map((h) => ({ kind: 'before_host' as const, ...h })), ...pb.afterHost.map((h) => ({ kind: 'after_host' as const, ...h }))];
  return {
    playbook: pb.name,
    check: options.check,
    hosts,
    durationMs: Date.now() - started,
    exitCode: exitCodeOf(hosts),
    aborted,
    ...(hooks.length ? { hooks } : {}),
  };
}

async function prepareAll(plays: HostPlay[], options: RunOptions, controller: Controller): Promise<Prepared[]> {
  return Promise.all(
    plays.map(async (play) => ({
      play,
      prepared: await Promise.all(
        play.tasks.map((t) =>
          t.def.prepare && !t.skip ? t.def.prepare(t.params, { host: play.host, vars: play.vars, settings: t.settings, options, controller }) : undefined,
        ),
      ),
    })),
  );
}

function skippedHost(play: HostPlay, reason: string): HostReport {
  const owed = owedBefore(play.host.name, play.host.address);
  return {
    ...(owed ? { stillDrained: owed } : {}),
    name: play.host.name,
    address: play.host.address,
    status: 'skipped',
    error: reason,
    notes: owed ? [`STILL DRAINED: ${owed}`] : [],
    durationMs: 0,
    tasks: play.tasks.map((t) => ({
      index: t.spec.index,
      title: t.spec.title,
      task: t.spec.task,
      status: 'skipped',
      changes: [],
      diffs: [],
      notes: [reason],
      durationMs: 0,
    })),
  };
}

/**
 * Whether the next batches must not start. With max_fail_percentage set, the share of failed hosts
 * in the whole play is compared with it; without it, only a batch in which every host failed stops
 * the roll-out.
 */
export function stopReason(batch: HostReport[], total: number, maxFail: number | undefined): string | undefined {
  const failed = batch.filter((r) => r.status === 'failed' || r.status === 'unreachable');
  if (failed.length === 0) return undefined;
  const names = failed.map((r) => r.name).join(', ');
  if (maxFail === undefined) return failed.length === batch.length ? `roll-out stopped: every host of the batch failed (${names})` : undefined;
  return (failed.length / total) * 100 > maxFail ? `roll-out stopped after ${names} failed (max_fail_percentage = ${maxFail})` : undefined;
}

/** Secrets from the environment only: what a run gets when no terminal is there to ask. */
export function envSecrets(): SecretSources {
  return {
    passphrase: async () => (process.env.HOIST_SSH_PASSPHRASE ? { value: process.env.HOIST_SSH_PASSPHRASE, source: 'HOIST_SSH_PASSPHRASE' } : undefined),
    becomePassword: async () =>
      process.env.HOIST_BECOME_PASSWORD !== undefined ? { value: process.env.HOIST_BECOME_PASSWORD, source: 'HOIST_BECOME_PASSWORD' } : undefined,
  };
}

/** Hosts worked on at once: every host by default, or --forks (checked). */
export function forkLimit(forks: number | undefined, hosts: number): number {
  if (forks !== undefined) {
    if (!Number.isInteger(forks) || forks < 1) throw new InputError(`--forks must be a positive integer, got ${forks}`);
    return forks;
  }
  return Math.max(1, hosts);
}

/**
 * Every host's connection stays open for the whole run, whatever --forks says: later hosts copy the
 * release from earlier ones over it, and a host's lock lives as long as its session. So the
 * descriptors a run needs are known before it starts: one socket per host dialled directly, one
 * per bastion session (the hosts behind it share it), a ProxyCommand's process and its three pipes,
 * and a few dozen for node, the log, the cache and downloads. A run that would not fit the open-files
 * limit is refused before any host is contacted, instead of failing hosts with EMFILE halfway.
 */
export function checkOpenFiles(endpoints: readonly Endpoint[], openFiles = openFilesLimit()): void {
  if (openFiles === undefined) return;
  const bastions = new Set<string>();
  let need = 64;
  for (const e of endpoints) {
    if (e.proxyCommand) need += 4;
    else if (e.jump) bastions.add(`${e.jump.user}@${e.jump.host}:${e.jump.port}`);
    else need += 1;
  }
  need += bastions.size;
  if (need > openFiles) {
    throw new InputError(
      `${endpoints.length} hosts keep about ${need} files open for the run (a socket per host dialled directly, one per bastion, 4 per ProxyCommand, 64 for hoist), over this shell's open-files limit (ulimit -n = ${openFiles}); raise it first, e.g. ulimit -n ${Math.ceil((need * 1.25) / 1024) * 1024}`,
    );
  }
}

/** The soft RLIMIT_NOFILE of this process (Linux), or undefined where it can't be read. */
function openFilesLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return !m || m[1] === 'unlimited' ? undefined : Number(m[1]);
  } catch {
    return undefined;
  }
}

/**
 * The checks of each module the play uses that need every host's facts at once; a host with a
 * problem fails, the problem as its error (the recap and --json name the host and the fix).
 */
function fleetChecks(hosts: HostReport[], pb: Playbook, catalog: TaskCatalog): void {
  const modules = new Set(pb.tasks.map((t) => catalog.moduleOf(t.task)).filter((m) => m?.fleetChecks));
  const seen = hosts.filter((h) => h.facts).map((h) => ({ name: h.name, facts: h.facts! }));
  for (const m of modules) {
    for (const { host, problem } of m!.fleetChecks!(seen)) {
      const h = hosts.find((x) => x.name === host);
      if (!h) continue;
      h.status = 'failed';
      h.error = h.error ? `${h.error}; ${problem}` : problem;
    }
  }
}
