#!/usr/bin/env node
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { errorEnvelope, writeJson } from '../output/json.js';
import { HOIST_VERSION } from './version.js';
import { signalChildren } from '../util/children.js';
import { terminalText } from '../util/printable.js';
import { takeDeferredExtraCa } from '../artifacts/extra-ca.js';

// Before anything can start a process: NODE_EXTRA_CA_CERTS back as the user set it (bin/hoist moved it aside).
takeDeferredExtraCa();

/** Whole numbers only: parseInt would read "3abc" as 3 and "abc" as NaN, and a run with NaN forks does nothing. */
const count =
  (min: number) =>
  (v: string): number => {
    if (!/^\d+$/.test(v.trim()) || Number(v) < min)
      throw new InvalidArgumentError(min > 0 ? 'expected a positive integer.' : 'expected a whole number of seconds (0 or more).');
    return Number(v);
  };

// The commands, and everything they load (ssh2, undici, the modules), are read only once a command
// runs: `hoist --version`, `--help` and a usage error start in a fraction of the time.
const runCli = async (command: string, raw: Record<string, unknown>): Promise<void> => (await import('./commands.js')).runCli(command, raw);

/**
 * Repeated -l adds. A pattern that is empty (or only separators) after trimming is refused: `-l "$LIMIT"`
 * with LIMIT unset would otherwise mean every host.
 */
const limit = (v: string, prev: string | undefined): string => {
  if (!v.split(/[,:]/).some((p) => p.trim())) throw new InvalidArgumentError('the limit is empty; name hosts or groups (use "all" for every host).');
  return prev ? `${prev},${v}` : v;
};

/** One inventory per run: a second -i would silently replace the first (a typo in one of them unnoticed). */
const inventory = (v: string, prev: string | undefined): string => {
  if (prev !== undefined) throw new InvalidArgumentError(`only one inventory per run (-i ${prev} and -i ${v}); merge them into one file or run twice.`);
  return v;
};

const program = new Command();
// A usage error quotes what was typed (a -l value may hold ESC or NUL): escaped like all output.
program.configureOutput({ outputError: (str, write) => write(terminalText(str)) });
program.name('hoist').description('Provision containerd nodes over SSH: facts, plan, apply only what differs.').version(HOIST_VERSION);

const common = (c: Command) =>
  c
    .requiredOption('-i, --inventory <file>', 'inventory TOML file', inventory)
    .option('-l, --limit <pattern>', 'only these hosts/groups: globs, "," or ":" between patterns, "!" excludes, "&" intersects; repeated -l adds', limit)
    .option('-f, --forks <n>', 'hosts worked on at once (default: all)', count(1))
    .option('--json', 'print a machine-readable report on stdout')
    .option('--accept-new-host-keys', 'record unknown host keys in known_hosts instead of refusing')
    .option('--known-hosts <file>', "known_hosts file (default: the inventory's, else ~/.ssh/known_hosts)")
    .option('--connect-timeout <s>', 'SSH handshake timeout in seconds', count(1))
    .option('--command-timeout <s>', 'timeout of one remote command in seconds', count(1))
    .option(
      '-v, --verbose',
      'show each step per host with its duration (-vv: each remote command, -vvv: scripts and their output)',
      (_v: string, n: number) => n + 1,
      0,
    )
    .option('-K, --ask-become-pass', 'ask for the sudo password once, on the terminal (else HOIST_BECOME_PASSWORD or become_password_file)');

const collect = (v: string, prev: string[]) => [...prev, v];

common(program.command('apply').argument('<playbook>', 'playbook TOML file').description('run a playbook'))
  .option('-C, --check', 'gather facts and plan; change nothing')
  .option('-D, --diff', 'show file diffs')
  .option('-e, --extra-vars <kv>', 'key=value or @file.toml (repeatable; highest precedence)', collect, [])
  .option('--offline', 'never download; artifacts must be in the cache (see hoist fetch)')
  .option('--lock-wait <s>', 'wait this many seconds for another hoist run holding a host (default: refuse at once)', count(0))
  .option('-y, --yes', "answer yes to a playbook's confirmation question")
  .option('--cache-dir <dir>', 'artifact cache directory')
  .action((playbook: string, o: Record<string, unknown>) => runCli('apply', { ...o, playbook }));

common(program.command('check').argument('<playbook>').description('same as apply --check'))
  .option('-D, --diff', 'show file diffs')
  .option('-e, --extra-vars <kv>', 'key=value or @file.toml', collect, [])
  .option('--offline', 'never download')
  .option('--cache-dir <dir>', 'artifact cache directory')
  .action((playbook: string, o: Record<string, unknown>) => runCli('check', { ...o, playbook, check: true }));

common(
  program
    .command('verify')
    .argument('[playbook]', 'playbook whose variables and verify tasks to use (default: the containerd playbook)')
    .description('run only the verification of a playbook, changing nothing'),
)
  .option('-e, --extra-vars <kv>', 'key=value or @file.toml', collect, [])
  .option('--pull-test <image>', 'also pull this image over CRI on every host (repeatable)', collect, [])
  .option('--pod-test <image>', 'also run a pod with a container of this image (with sh and sleep) through CRI on every host, then remove it')
  .action((playbook: string | undefined, o: Record<string, unknown>) => runCli('verify', { ...o, playbook }));

program
  .command('fetch')
  .argument('[playbook]', 'playbook whose artifacts to fetch (default: the containerd playbook)')
  .description('download and verify release artifacts into the cache, for an --offline run later')
  .option('-i, --inventory <file>', 'also fetch what each host of this inventory needs')
  .option('-e, --extra-vars <kv>', 'key=value or @file.toml', collect, [])
  .option('--cache-dir <dir>', 'artifact cache directory')
  .option('--json', 'not available: fetch prints progress lines (refused with a --json error envelope)')
  .action((playbook: string | undefined, o: Record<string, unknown>) => runCli('fetch', { ...o, playbook }));

common(program.command('ping').description('log in to every host and run a command')).action((o: Record<string, unknown>) => runCli('ping', o));
common(program.command('facts').description('print the facts hoist gathers')).action((o: Record<string, unknown>) => runCli('facts', o));

program
  .command('inventory')
  .description("the hosts a --limit selects, or one host's settings and variables with the layer each came from")
  .requiredOption('-i, --inventory <file>', 'inventory TOML file', inventory)
  .option('-l, --limit <pattern>', 'only these hosts/groups (as for apply)', limit)
  .option('--host <name>', 'one host: connection settings and resolved variables, secrets masked')
  .option('-p, --playbook <file>', "include this playbook's hosts, [defaults] and [vars]")
  .option('-e, --extra-vars <kv>', 'key=value or @file.toml, as for apply', collect, [])
  .option('--json', 'print the result as JSON')
  .action((o: Record<string, unknown>) => runCli('inventory', o));

program
  .command('reference')
  .description('print the reference (inventory and playbook keys, hooks, tasks, module variables, environment) as Markdown')
  .option('--json', 'not available: the reference is Markdown (hoist tasks --json has the tasks as JSON)')
  .action((o: Record<string, unknown>) => runCli('reference', o));

program
  .command('tasks')
  .argument('[name]', 'one task: its typed parameters, defaults and an example')
  .description('list the tasks a playbook can use and their parameters')
  .option('--json', 'print the reference as JSON')
  .action((name: string | undefined, o: Record<string, unknown>) => runCli('tasks', { ...o, task: name }));

program.addOption(new Option('--no-color', 'plain output').hideHelp());

const RUN_EXIT_CODES = `Exit codes:
  0    all well
  1    bad input or usage: nothing was contacted
  2    a host failed
  3    the controller could not prepare the run (download, checksum, cache); no host was changed
  4    a host was unreachable
  5    another hoist run holds a host's lock (retry later), and no host failed otherwise
  6    a host key was unknown or changed, and no host failed otherwise
  130  interrupted by Ctrl-C (SIGINT); 143 by SIGTERM: each host stopped after its current step`;
const SIMPLE_EXIT_CODES = `Exit codes:
  0    done
  1    bad input or usage`;
const EXAMPLES: Record<string, [string, string]> = {
  apply: ['hoist apply playbooks/containerd.toml -i inventories/prod.toml -l workers --diff', RUN_EXIT_CODES],
  check: ['hoist check playbooks/containerd.toml -i inventories/prod.toml -e containerd_version=2.1.4', RUN_EXIT_CODES],
  verify: ['hoist verify -i inventories/prod.toml --pull-test busybox:1.36', RUN_EXIT_CODES],
  ping: ['hoist ping -i inventories/prod.toml -l "web*"', RUN_EXIT_CODES],
  facts: ['hoist facts -i inventories/prod.toml --json', RUN_EXIT_CODES],
  fetch: [
    'hoist fetch playbooks/containerd.toml -i inventories/prod.toml --cache-dir /srv/hoist-cache',
    `${SIMPLE_EXIT_CODES}\n  3    a download failed or a checksum did not match`,
  ],
  inventory: ['hoist inventory -i inventories/prod.toml --host node1 -p playbooks/containerd.toml', SIMPLE_EXIT_CODES],
  reference: ['hoist reference > docs/reference.md', SIMPLE_EXIT_CODES],
  tasks: ['hoist tasks file', SIMPLE_EXIT_CODES],
};
for (const c of program.commands) {
  const e = EXAMPLES[c.name()];
  if (e) c.addHelpText('after', `\nExample:\n  ${e[0]}\n\n${e[1]}\n`);
}

// Usage errors (an unknown option, --forks abc) come from commander before any command runs; with
// --json they are reported in the same envelope as every other error.
program.exitOverride();
for (const c of program.commands) c.exitOverride();
program.parseAsync().then(
  () => exitWhenFlushed(),
  (e: unknown) => {
    if (e instanceof CommanderError && (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help')) {
      process.exitCode = 0;
      return exitWhenFlushed();
    }
    const message = e instanceof Error ? e.message.replace(/^error: /, '') : String(e);
    if (process.argv.includes('--json')) {
      const command = program.commands.find((c) => process.argv.slice(2).includes(c.name()))?.name() ?? 'hoist';
      writeJson(errorEnvelope(command, 1, 'input', message));
    }
    if (!(e instanceof CommanderError)) process.stderr.write(terminalText(`hoist: ${message}\n`));
    process.exitCode = 1;
    exitWhenFlushed();
  },
);

/**
 * Once the report is out, nothing may keep hoist running: a host's session that some path forgot to
 * close (a dead host behind a live bastion, say) must not hold a CI job until its own timeout.
 */
function exitWhenFlushed(): void {
  // Nor may a process hoist started (a ProxyCommand whose connection was never closed) outlive it.
  signalChildren('SIGTERM', 'all');
  process.stdout.write('', () => process.stderr.write('', () => process.exit(process.exitCode ?? 0)));
}
