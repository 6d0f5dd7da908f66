import path from 'node:path';
import { loadInventory } from '../inventory/inventory.js';
import { loadPlaybook, type Playbook } from '../playbook/playbook.js';
import { runPlaybook, inFlight } from '../runner/run.js';
import { playHosts } from '../runner/play.js';
import { Logger } from '../util/log.js';
import { makeReporter } from '../output/reporter.js';
import { formatPlan, formatRecap, formatFacts, color } from '../output/format.js';
import { fetchArtifacts } from './fetch.js';
import { InputError, errorMessage } from '../util/errors.js';
import { redact, redactDeep } from '../util/redact.js';
import { extraVarLayers } from './extra-vars.js';
import { taskCatalog } from './catalog.js';
import type { TaskCatalog } from '../tasks/catalog.js';
import { parseToml } from '../util/toml-file.js';
import { PACKAGE_ROOT } from '../paths.js';
import { cliSecrets } from './secrets.js';

const DEFAULT_PLAYBOOK = path.join(PACKAGE_ROOT, 'playbooks', 'containerd.toml');

interface CliOptions {
  pullTest?: string[];
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
  let code = 1;
  try {
    code = await dispatch(command, o);
  } catch (e) {
    process.stderr.write(`${color.red('error')}: ${redact(errorMessage(e))}\n`);
    // Anything that stops a run before hosts report (bad input, a refused download) is exit 1.
    code = 1;
  }
  process.exitCode = code;
}

async function dispatch(command: string, o: CliOptions): Promise<number> {
  const catalog = taskCatalog();
  if (command === 'tasks') {
    for (const n of catalog.names()) {
      const t = catalog.get(n)!;
      const module = catalog.moduleOf(n);
      process.stdout.write(`${color.bold(n)}${module ? color.dim(` (${module.name})`) : ''}: ${t.summary}\n`);
      for (const [k, sch] of Object.entries(t.params.shape)) {
        process.stdout.write(`  ${k}${sch.isOptional ? '' : ' (required)'}${sch.defaultValue !== undefined ? ` = ${JSON.stringify(sch.defaultValue)}` : ''}${sch.description ? ` — ${sch.description}` : ''}\n`);
      }
    }
    for (const m of catalog.modules) {
      process.stdout.write(`\n${color.bold(`variables of ${m.name}`)}: ${Object.entries(m.variables).map(([k, sch]) => `${k}${sch.isOptional ? '' : ' (required)'}`).join(', ')}\n`);
    }
    return 0;
  }
  if (command === 'fetch') return fetchArtifacts(o, catalog);
  const inventory = await loadInventory(o.inventory!);
  let playbook: Playbook;
  if (command === 'apply') playbook = await loadPlaybook(o.playbook!, catalog);
  else if (command === 'verify') {
    // The playbook's variables and its verifying tasks only: a read-only health check after a roll-out.
    const pb = await loadPlaybook(o.playbook ?? DEFAULT_PLAYBOOK, catalog);
    playbook = { ...pb, tasks: pb.tasks.filter((t) => t.def.verifies), beforeHost: [], afterHost: [] };
    // --pull-test feeds the verifying tasks that pull images.
    if (o.pullTest?.length) playbook.tasks = playbook.tasks.map((t) => ('pull_test' in t.def.params.shape ? { ...t, params: { ...t.params, pull_test: o.pullTest } } : t));
  } else playbook = inlinePlaybook(command, 'ping', catalog);
  const extraVars = await extraVarLayers(o.extraVars ?? []);
  if (playbook.confirm && !o.check && !o.yes && !(await confirm(playbook.confirm))) {
    process.stderr.write('not confirmed; nothing was done\n');
    return 1;
  }
  const secrets = await cliSecrets(!!o.askBecomePass);
  const log = Logger.forRun();
  const reporter = await makeReporter(!!o.json);
  const check = !!o.check;
  const onSigint = () => {
    const mid = [...inFlight].map(([h, t]) => `${h} (in "${t}")`);
    process.stderr.write(`\ninterrupted${mid.length ? `; hosts mid-task: ${mid.join(', ')}` : ''}. Files hoist writes are replaced atomically; run again to converge.\n`);
    log.log('hoist', `interrupted; mid-task: ${mid.join(', ') || 'none'}`);
    void log.close().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSigint);
  try {
    reporter.start(playHosts(inventory, playbook, o.limit).map((h) => h.name));
    const report = await runPlaybook({
      inventory,
      playbook,
      catalog,
      extraVars,
      limit: o.limit,
      forks: o.forks,
      // ping, facts and verify only read: they plan like --check, so they take no host lock and change nothing.
      options: { check: check || command !== 'apply', diff: !!o.diff, offline: !!o.offline },
      acceptNewHostKeys: !!o.acceptNewHostKeys,
      knownHostsFile: o.knownHosts,
      connectTimeoutMs: o.connectTimeout ? o.connectTimeout * 1000 : undefined,
      commandTimeoutMs: o.commandTimeout ? o.commandTimeout * 1000 : undefined,
      cacheDir: o.cacheDir,
      lockWaitSeconds: o.lockWait,
      secrets,
      log,
      events: reporter,
    });
    await reporter.stop();
    if (command === 'facts') {
      if (o.json) process.stdout.write(JSON.stringify(Object.fromEntries(report.hosts.map((h) => [h.name, h.facts ?? { error: h.error }])), null, 2) + '\n');
      else process.stdout.write(formatFacts(report) + '\n');
      return report.exitCode;
    }
    if (o.json) process.stdout.write(JSON.stringify(redactDeep(report), null, 2) + '\n');
    else {
      if (check) process.stdout.write('\n' + formatPlan(report, !!o.diff));
      else if (o.diff) {
        const diffs = report.hosts.flatMap((h) => h.tasks.flatMap((t) => t.diffs.map((d) => `── ${h.name}: ${t.title}\n${d}`)));
        if (diffs.length) process.stdout.write('\n' + diffs.join('\n') + '\n');
      }
      process.stdout.write('\n' + formatRecap(report) + '\n');
      if (log.file) process.stdout.write(color.dim(`log: ${log.file}`) + '\n');
    }
    log.log('hoist', `exit ${report.exitCode}`);
    return report.exitCode;
  } finally {
    process.removeListener('SIGINT', onSigint);
    await reporter.stop();
    await log.close();
  }
}

/** Asks on the terminal; without one, a run that needs confirmation must be given --yes. */
async function confirm(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) throw new InputError(`this playbook asks "${question}"; pass --yes to confirm when not on a terminal`);
  const rl = (await import('node:readline/promises')).createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}
