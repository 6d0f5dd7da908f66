import { stat } from 'node:fs/promises';
import path from 'node:path';
import { loadInventory } from '../inventory/inventory.js';
import { loadPlaybook, type Playbook } from '../playbook/playbook.js';
import { runPlaybook } from '../runner/run.js';
import { interruption } from '../runner/interrupt.js';
import { exitCodeOfSignal, interruptAccount, watchSignals, type SignalWatch } from './signals.js';
import { playHosts } from '../runner/play.js';
import { Logger } from '../util/log.js';
import { makeReporter } from '../output/reporter.js';
import { formatPlan, formatRecap, formatFacts, color } from '../output/format.js';
import { dataEnvelope, errorEnvelope, runEnvelope, writeJson } from '../output/json.js';
import type { RunReport } from '../runner/report.js';
import type { Inventory } from '../inventory/inventory.js';
import { formatHostDetail, formatHostList, hostDetail, listHosts } from './inventory-command.js';
import { formatTaskDoc, taskDoc } from './task-doc.js';
import { didYouMean } from '../util/suggest.js';
import { HOIST_VERSION } from './version.js';
import { referenceMarkdown } from './reference.js';
import { fetchArtifacts } from './fetch.js';
import { InputError, InterruptedError, classify, errorMessage } from '../util/errors.js';
import { redact } from '../util/redact.js';
import { printableLines, terminalText } from '../util/printable.js';
import { extraVarLayers } from './extra-vars.js';
import { taskCatalog } from './catalog.js';
import type { TaskCatalog } from '../tasks/catalog.js';
import { parseToml } from '../util/toml-file.js';
import { PACKAGE_ROOT } from '../paths.js';
import { cliSecrets } from './secrets.js';
import { codeCacheState, keepCodeCache } from './code-cache.js';

const DEFAULT_PLAYBOOK = path.join(PACKAGE_ROOT, 'playbooks', 'containerd.toml');

interface CliOptions {
  pullTest?: string[];
  podTest?: string;
  inventory?: string;
  playbook?: string;
  limit?: string;
  forks?: number;
  json?: boolean;
  acceptNewHostKeys?: boolean;
  knownHosts?: string;
  connectTimeout?: number;
  commandTimeout?: number;
  check?: boolean;
  diff?: boolean;
  extraVars?: string[];
  offline?: boolean;
  cacheDir?: string;
  lockWait?: number;
  yes?: boolean;
  askBecomePass?: boolean;
  verbose?: number;
  host?: string;
  task?: string;
}

/** Playbooks hoist builds in memory for its one-task commands. */
function inlinePlaybook(name: string, task: string, catalog: TaskCatalog): Playbook {
  const text = `name = "${name}"\nhosts = "all"\n[[tasks]]\ntask = "${task}"\n`;
  const doc = parseToml(path.join(PACKAGE_ROOT, `<${name}>`), text);
  return {
    file: doc.file,
    dir: process.cwd(),
    name,
    hosts: ['all'],
    maxFailPercentage: undefined,
    defaults: {},
    vars: {},
    defaultLayers: [],
    varLayers: [],
    beforeHost: [],
    afterHost: [],
    tasks: [{ file: doc.file, doc, index: 0, title: task, task, def: catalog.get(task)!, params: {}, line: 4 }],
    doc,
  };
}

export async function runCli(command: string, raw: Record<string, unknown>): Promise<void> {
  const o = raw as CliOptions;
  // The log starts with the command line, so even a run refused for bad input leaves its story.
  const log = command === 'tasks' || command === 'reference' ? new Logger() : Logger.forRun();
  log.log(
    'hoist',
    `hoist ${maskedArgv(process.argv.slice(2)).join(' ')} (cwd ${process.cwd()}, hoist ${HOIST_VERSION}, node ${process.version}${codeCacheState() ? `, code cache ${codeCacheState()}` : ''})`,
  );
  const signals = watchSignals(log);
  let code = 1;
  try {
    code = await dispatch(command, o, log, signals);
  } catch (e) {
    const { kind, exitCode } = classify(e);
    const message = kind === 'internal' ? `internal error: ${errorMessage(e)}` : errorMessage(e);
    log.log('hoist', `${kind} error: ${message}`);
    if (e instanceof Error && kind === 'internal' && e.stack) log.log('hoist', e.stack);
    if (o.json) writeJson(errorEnvelope(command, exitCode, kind, message, log.file));
    process.stderr.write(terminalText(`${color.red('error')}: ${printableLines(redact(message))}\n`));
    code = exitCode;
  } finally {
    signals.dispose();
  }
  // Every run says where its story is, --json runs too (stdout holds only the envelope).
  if (log.file) process.stderr.write(terminalText(color.dim(`log: ${log.file}`) + '\n'));
  log.log('hoist', `exit ${code}`);
  await log.close();
  process.exitCode = code;
}

/**
 * The command line for the log, -e values left out: a credential given with -e is not known to be one
 * until a module's schema says so, which is after this line is written. The resolved variables are
 * logged later, redacted.
 */
function maskedArgv(argv: string[]): string[] {
  return argv.map((a, i) => {
    const prev = argv[i - 1];
    const value = (v: string) => (v.startsWith('@') ? v : `${v.split('=')[0]}=…`);
    if (prev === '-e' || prev === '--extra-vars') return value(a);
    const inline = /^(--extra-vars=|-e)(.+)$/.exec(a);
    return inline && a !== '-e' ? `${inline[1]}${value(inline[2])}` : a;
  });
}

/** --cache-dir must be a directory (or not exist yet): found out before any host is contacted. */
async function checkCacheDir(dir: string): Promise<void> {
  const st = await stat(dir).catch((e: NodeJS.ErrnoException) =>
    e.code === 'ENOENT' ? null : Promise.reject(new InputError(`--cache-dir ${dir}: ${e.message}`)),
  );
  if (st && !st.isDirectory()) throw new InputError(`--cache-dir ${dir} is not a directory (it is a file); name a directory for downloaded artifacts`);
}

async function dispatch(asked: string, o: CliOptions, log: Logger, signals: SignalWatch): Promise<number> {
  let command = asked;
  const catalog = taskCatalog();
  // `check` is `apply --check`, reported as itself.
  if (command === 'check') command = 'apply';
  if ((command === 'fetch' || command === 'reference') && o.json) {
    throw new InputError(
      command === 'fetch'
        ? 'fetch has no JSON output: it prints a line per artifact; run it without --json'
        : 'reference is Markdown only; `hoist tasks --json` prints the task reference as JSON',
    );
  }
  if (command === 'tasks') return tasksCommand(catalog, o);
  if (command === 'reference') {
    process.stdout.write(referenceMarkdown(catalog)); // Markdown for a file, not a terminal: as is.
    return 0;
  }
  if (command === 'fetch') return fetchArtifacts(o, catalog);
  const inventory = await loadInventory(o.inventory!);
  if (command === 'inventory') return inventoryCommand(inventory, o, catalog);
  let playbook: Playbook;
  if (command === 'apply') playbook = await loadPlaybook(o.playbook!, catalog);
  else if (command === 'verify') {
    // The playbook's variables and its verifying tasks only: a read-only health check after a roll-out.
    const pb = await loadPlaybook(o.playbook ?? DEFAULT_PLAYBOOK, catalog);
    playbook = { ...pb, tasks: pb.tasks.filter((t) => t.def.verifies), beforeHost: [], afterHost: [] };
    // --pull-test feeds the verifying tasks that pull images.
    if (o.pullTest?.length)
      playbook.tasks = playbook.tasks.map((t) => ('pull_test' in t.def.params.shape ? { ...t, params: { ...t.params, pull_test: o.pullTest } } : t));
    // --pod-test feeds the verifying task that runs a pod; a playbook without one would ignore it.
    if (o.podTest) {
      if (!playbook.tasks.some((t) => 'pod_test' in t.def.params.shape))
        throw new InputError(`--pod-test: playbook ${pb.file} has no verifying task that runs a pod (such as containerd_pod_test)`);
      playbook.tasks = playbook.tasks.map((t) => ('pod_test' in t.def.params.shape ? { ...t, params: { ...t.params, pod_test: o.podTest } } : t));
    }
  } else playbook = inlinePlaybook(command, 'ping', catalog);
  log.log('hoist', `playbook ${playbook.file}: ${playbook.tasks.map((t) => t.task).join(', ')}; inventory ${inventory.file} (${inventory.hosts.length} hosts)`);
  const extraVars = await extraVarLayers(o.extraVars ?? []);
  // Without a terminal the question can't be asked: --yes is required, before any host is contacted.
  const asks = !!playbook.confirm && !o.check && !o.yes;
  if (asks && !process.stdin.isTTY) throw new InputError(`this playbook asks "${playbook.confirm}"; pass --yes to confirm when not on a terminal`);
  if (o.cacheDir) await checkCacheDir(o.cacheDir);
  const secrets = await cliSecrets(!!o.askBecomePass);
  const hostNames = playHosts(inventory, playbook, o.limit).map((h) => h.name);
  const check = !!o.check;
  const run = (asCheck: boolean, events: Awaited<ReturnType<typeof makeReporter>>) =>
    runPlaybook({
      inventory,
      playbook,
      catalog,
      extraVars,
      limit: o.limit,
      forks: o.forks,
      // ping, facts and verify only read: they plan like --check, so they take no host lock and change nothing.
      options: { check: asCheck || command !== 'apply', diff: !!o.diff, offline: !!o.offline },
      acceptNewHostKeys: !!o.acceptNewHostKeys,
      knownHostsFile: o.knownHosts,
      connectTimeoutMs: o.connectTimeout ? o.connectTimeout * 1000 : undefined,
      commandTimeoutMs: o.commandTimeout ? o.commandTimeout * 1000 : undefined,
      cacheDir: o.cacheDir,
      lockWaitSeconds: o.lockWait,
      secrets,
      verbosity: o.verbose ?? 0,
      log,
      events,
      fleetChecks: command === 'verify',
      systemState: command === 'facts',
    }).then((report) => {
      // A run that reached a host compiled most of hoist: worth keeping for the next start.
      if (report.hosts.some((h) => h.status !== 'unreachable' && h.status !== 'skipped')) keepCodeCache();
      return report;
    });
  if (asks) {
    // The question comes after the plan: every host is planned (read-only, as --check), the plan shown,
    // and the hosts that would change named. Nothing to change: no question.
    // With --json, stdout carries only the run's JSON: the plan goes to the terminal on stderr.
    const planReporter = await makeReporter(!!o.json, hostNames.length, (o.verbose ?? 0) > 0);
    signals.running(hostNames, (signal) => planReporter.interrupted(signal));
    let plan: RunReport;
    try {
      plan = await run(true, planReporter);
    } finally {
      await planReporter.stop();
    }
    if (interruption.signal) throw new InterruptedError(interruption.signal, 'while planning; nothing was done');
    const changing = plan.hosts.filter((h) => h.tasks.some((t) => t.changes.length > 0));
    if (changing.length) {
      (o.json ? process.stderr : process.stdout).write(terminalText('\n' + formatPlan(plan, !!o.diff)));
      const lines = changing.map((h) => `  ${h.name}: ${h.tasks.flatMap((t) => t.changes).join('; ')}`);
      const failed = plan.hosts.filter((h) => h.status === 'failed' || h.status === 'unreachable');
      const tail = failed.length
        ? `\n${failed.map((h) => `  ${h.name}: not changed (${h.error ?? h.tasks.find((t) => t.error)?.error ?? h.status})`).join('\n')}`
        : '';
      process.stderr.write(terminalText(`\n${changing.length} host(s) would change:\n${lines.join('\n')}${tail}\n`));
      if (!(await confirm(playbook.confirm!))) {
        process.stderr.write(terminalText('not confirmed; nothing was done\n'));
        log.log('hoist', 'not confirmed');
        return 1;
      }
    }
  }
  const reporter = await makeReporter(!!o.json, hostNames.length, (o.verbose ?? 0) > 0);
  signals.running(hostNames, (signal) => reporter.interrupted(signal));
  try {
    const report = await run(check, reporter);
    await reporter.stop();
    logReport(log, report);
    const signal = interruption.signal;
    if (signal) report.exitCode = exitCodeOfSignal(signal);
    if (o.json) writeJson(runEnvelope(asked, report, check, log.file));
    else if (command === 'facts') process.stdout.write(terminalText(formatFacts(report) + '\n'));
    else {
      if (check) process.stdout.write(terminalText('\n' + formatPlan(report, !!o.diff)));
      else if (o.diff) {
        const diffs = report.hosts.flatMap((h) => h.tasks.flatMap((t) => t.diffs.map((d) => `── ${h.name}: ${t.title}\n${d}`)));
        if (diffs.length) process.stdout.write(terminalText('\n' + diffs.join('\n') + '\n'));
      }
      process.stdout.write(terminalText('\n' + formatRecap(report) + '\n'));
    }
    if (signal) {
      const text = interruptAccount({ signal, hosts: hostNames, midStep: signals.midStep, reports: report.hosts, stopped: signals.stopped, atOnce: false });
      process.stderr.write(terminalText(`\n${color.red(text)}\n`));
      log.log('hoist', text);
    }
    return report.exitCode;
  } finally {
    await reporter.stop();
  }
}

/** The end of the story in the log: every host's tasks, changes, diffs, notes and timings. */
function logReport(log: Logger, report: RunReport): void {
  for (const h of report.hosts) {
    for (const t of h.tasks) {
      log.log(h.name, `task "${t.title}" (${t.task}): ${t.status} in ${t.durationMs} ms${t.error ? `: ${t.error}` : ''}`);
      for (const c of t.changes) log.log(h.name, `  ${report.check ? 'would ' : ''}${c}`);
      for (const n of t.notes) log.log(h.name, `  note: ${n}`);
      for (const d of t.diffs) log.log(h.name, `  diff:\n${d}`);
    }
    log.log(h.name, `host ${h.status} in ${h.durationMs} ms${h.bytesPushed ? `, ${h.bytesPushed} bytes pushed` : ''}${h.error ? `: ${h.error}` : ''}`);
  }
  log.log(
    'hoist',
    `recap: ${report.hosts.map((h) => `${h.name}=${h.status}`).join(' ')} in ${report.durationMs} ms${report.aborted ? `; ${report.aborted}` : ''}`,
  );
}

async function inventoryCommand(inventory: Inventory, o: CliOptions, catalog: TaskCatalog): Promise<number> {
  const playbook = o.playbook ? await loadPlaybook(o.playbook, catalog) : undefined;
  if (o.host) {
    const detail = hostDetail(inventory, o.host, { playbook, extra: await extraVarLayers(o.extraVars ?? []), catalog });
    if (o.json) writeJson(dataEnvelope('inventory', { hosts: [detail] }));
    else process.stdout.write(terminalText(`${formatHostDetail(detail)}\n`));
    return 0;
  }
  const hosts = listHosts(inventory, o.limit, playbook);
  if (o.json) writeJson(dataEnvelope('inventory', { hosts }));
  else process.stdout.write(terminalText(`${formatHostList(hosts)}\n`));
  return 0;
}

function tasksCommand(catalog: TaskCatalog, o: CliOptions): number {
  const names = o.task ? [o.task] : catalog.names();
  if (o.task && !catalog.get(o.task)) throw new InputError(`no task named "${o.task}"${didYouMean(o.task, catalog.names())}`);
  const docs = names.map((n) => taskDoc(catalog, n));
  if (o.json) writeJson(dataEnvelope('tasks', { tasks: docs }));
  else {
    process.stdout.write(terminalText(`${docs.map((d) => formatTaskDoc(d, !!o.task)).join('\n')}\n`));
    // The variables each module reads: `hoist reference` has their types and meanings.
    if (!o.task)
      for (const m of catalog.modules)
        process.stdout.write(terminalText(`\n${color.bold(`variables of ${m.name}`)}: ${Object.keys(m.variables).join(', ')}\n`));
  }
  return 0;
}

/** Asks on the terminal; without one, a run that needs confirmation must be given --yes. */
async function confirm(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) throw new InputError(`this playbook asks "${question}"; pass --yes to confirm when not on a terminal`);
  const rl = (await import('node:readline/promises')).createInterface({ input: process.stdin, output: process.stderr });
  try {
    // readline takes Ctrl-C as a key here, not a signal: it ends the run as SIGINT would, with nothing done.
    const interrupted = new Promise<never>((_, reject) =>
      rl.once('SIGINT', () => {
        process.stderr.write('\n');
        reject(new InterruptedError('SIGINT', 'at the confirmation question; nothing was done'));
      }),
    );
    return /^y(es)?$/i.test((await Promise.race([rl.question(terminalText(`${question} [y/N] `)), interrupted])).trim());
  } finally {
    rl.close();
  }
}
