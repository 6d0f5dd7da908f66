/**
 * What a person at a terminal sees of runs against the fleet (deploy through the bastion), on a real
 * pty (test/support/pty.ts): every error class on screen within 2 s, each host's changes kept in the
 * scrollback, Ctrl-C and SIGTERM accounted for with 130/143 and no controller process left behind.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as fleet from '../fleet/fleet.js';
import { HOIST_BUILT, killPty, onPty } from '../support/pty.js';
import { hoist, hoistJson, onHost } from '../support/hoist.js';

let info: fleet.FleetInfo;
let dir: string;
const inv = () => info.inventoryPath;
const PLAYBOOK = path.resolve(path.dirname(HOIST_BUILT), '../playbooks/containerd.toml');

before(async () => {
  info = await fleet.info();
  dir = await mkdtemp(path.join(os.tmpdir(), 'hoist-terminal-'));
});
after(() => rm(dir, { recursive: true, force: true }));

async function playbook(name: string, text: string): Promise<string> {
  const f = path.join(dir, `${name}.toml`);
  await writeFile(f, text);
  return f;
}

/** Processes on this machine whose command line is exactly `line` (a hook's `sleep N`). */
const processesRunning = (line: string) =>
  execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.trim().replace(/^\d+\s+/, '') === line);

/**
 * An error shown in the live view must be on screen within 2 s, and hoist must end. The clock starts
 * at hoist's start, or for a host's own failure when the screen shows `from` (its host reached).
 */
async function shownWithin2s(args: string[], expected: RegExp, code: number, from?: RegExp) {
  const run = onPty(args, { env: { XDG_STATE_HOME: dir } });
  try {
    const t0 = from ? await run.waitFor(from, 30_000) : 0;
    const ms = (await run.waitFor(expected, 2000)) - t0;
    assert.ok(ms <= 2000, `${ms} ms`);
    const end = await Promise.race([run.exited, new Promise<null>((r) => setTimeout(() => r(null), 5000))]);
    assert.ok(end, `hoist still running 5 s after the error showed. Screen:\n${run.screen()}`);
    assert.equal(end.code, code, run.screen());
    assert.doesNotMatch(run.screen(), /: waiting$/m, 'a host row was left waiting');
    return { ms, screen: run.screen() };
  } finally {
    killPty(run);
  }
}

test('a release missing from the mirror, on a terminal: the error within 2 s, exit 3, rows ended', async () => {
  // The clock starts when the live view does: the inputs are checked, the download is under way.
  const { screen } = await shownWithin2s(['check', PLAYBOOK, '-i', inv(), '-e', 'containerd_version=1.7.99'], /is not on the release mirror/, 3, /h1: /);
  assert.match(screen, /h1: not run/);
});

test('an unreachable host and a failing host, on a terminal: each error within 2 s', async () => {
  // h1's address on a port nothing listens on: refused through the bastion at once.
  const text = (await readFile(inv(), 'utf8')).replace(/\[hosts\.h1\]\n/, '[hosts.h1]\nport = 1\n');
  const broken = path.join(dir, 'port1.toml');
  await writeFile(broken, text);
  await shownWithin2s(['ping', '-i', broken, '-l', 'h1'], /h1 \| unreachable: .+/, 4);
  const fails = await playbook(
    'fails',
    `name = "fails"\nhosts = "all"\n[[tasks]]\ntask = "command"\nname = "exits 3"\n[tasks.params]\ncmd = "echo broken-on-purpose >&2; exit 3"\n`,
  );
  await shownWithin2s(['apply', fails, '-i', inv(), '-l', 'h2'], /h2 \| failed: exits 3: .*broken-on-purpose/, 2, /h2: (gathering facts|exits 3)/);
});

test('after a live-view apply the scrollback keeps a line per changed task per host', async () => {
  const stamp = `${process.pid}-${Date.now()}`;
  const pb = await playbook(
    'two-changes',
    `name = "two"\nhosts = "all"\n[[tasks]]\ntask = "file"\nname = "motd"\n[tasks.params]\npath = "/etc/hoist-test/terminal-${stamp}"\ncontent = "{{ inventory_hostname }}\\n"\n` +
      `[[tasks]]\ntask = "command"\nname = "marker"\n[tasks.params]\ncmd = "touch /etc/hoist-test/terminal-${stamp}.done"\ncreates = "/etc/hoist-test/terminal-${stamp}.done"\n`,
  );
  // 80 columns: the long change lines wrap, and each redraw must still erase exactly what it drew.
  const run = onPty(['apply', pb, '-i', inv()], { env: { XDG_STATE_HOME: dir }, cols: 80 });
  try {
    const end = await run.exited;
    const screen = run.screen();
    assert.equal(end.code, 0, screen);
    // A change line wrapped by the view continues indented on the next line.
    const unwrapped = screen.replace(/\n {3,}/g, ' ');
    for (const h of ['h1', 'h2', 'h3']) {
      assert.match(unwrapped, new RegExp(`${h} \\| motd \\| changed: .*terminal-${stamp}`), `${h}'s file change is gone from the scrollback:\n${screen}`);
      assert.match(screen, new RegExp(`${h} \\| marker \\| changed: run: touch`), `${h}'s command is gone from the scrollback:\n${screen}`);
      assert.equal(screen.split('\n').filter((l) => l === `✔ ${h} | changed`).length, 1, `${h}'s row is not on screen exactly once:\n${screen}`);
    }
    assert.match(screen, /PLAY RECAP/);
    assert.doesNotMatch(screen, /⠋|⠙|⠹|⠸|⠼|⠴|⠦|⠧|⠇|⠏/, 'a spinner frame was left on screen');
  } finally {
    killPty(run);
  }
});

/** A changed host whose after_host hook (on the controller) sleeps: the hook is what runs when the signal comes. */
async function hookPlaybook(seconds: number) {
  return playbook(
    `hook-${seconds}`,
    `name = "hook"\nhosts = "all"\n[[after_host]]\nrun = "sleep ${seconds}"\non = "controller"\ntimeout = 300\n[[tasks]]\ntask = "command"\nname = "mark"\n[tasks.params]\ncmd = "true"\n`,
  );
}

test('Ctrl-C during a controller hook: exit 130, the host accounted for, the hook and its sleep gone', async () => {
  const seconds = 200 + (process.pid % 97);
  // Wide enough that the account's lines do not wrap.
  const run = onPty(['apply', await hookPlaybook(seconds), '-i', inv(), '-l', 'h1'], { env: { XDG_STATE_HOME: dir }, cols: 250 });
  try {
    await run.waitFor(/h1: after_host hooks/, 30_000);
    for (let i = 0; i < 50 && processesRunning(`sleep ${seconds}`).length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(processesRunning(`sleep ${seconds}`).length, 1, 'the hook never started');
    run.type('\x03');
    const end = await Promise.race([run.exited, new Promise<null>((r) => setTimeout(() => r(null), 10_000))]);
    assert.ok(end, `hoist still running 10 s after Ctrl-C:\n${run.screen()}`);
    const screen = run.screen();
    assert.equal(end.code, 130, screen);
    assert.match(screen, /interrupted by SIGINT:\n {2}h1: was in after_host hook "sleep \d+"/);
    assert.match(screen, /stopped after_host hook "sleep \d+" of h1/);
    assert.match(screen, /run the same command again to converge/);
    assert.deepEqual(processesRunning(`sleep ${seconds}`), [], "the hook's sleep outlived hoist");
  } finally {
    killPty(run);
  }
});

test('a second Ctrl-C during a long remote step exits at once with the same accounting', async () => {
  const pb = await playbook('slow', `name = "slow"\nhosts = "all"\n[[tasks]]\ntask = "command"\nname = "slow step"\n[tasks.params]\ncmd = "sleep 25"\n`);
  const run = onPty(['apply', pb, '-i', inv(), '-l', 'h3'], { env: { XDG_STATE_HOME: dir }, cols: 250 });
  try {
    await run.waitFor(/h3: slow step/, 30_000);
    run.type('\x03');
    await run.waitFor(/interrupted by SIGINT: finishing this step/, 2000);
    assert.equal(run.child.exitCode, null, 'the first Ctrl-C lets the step finish');
    run.type('\x03');
    const end = await Promise.race([run.exited, new Promise<null>((r) => setTimeout(() => r(null), 3000))]);
    assert.ok(end, `hoist still running 3 s after the second Ctrl-C:\n${run.screen()}`);
    assert.equal(end.code, 130, run.screen());
    assert.match(run.screen(), /interrupted by SIGINT, stopping at once:\n {2}h3: cut off in task "slow step"/);
  } finally {
    killPty(run);
  }
});

test('SIGTERM to hoist alone (timeout): exit 143, the log written, no hook process left', async () => {
  const seconds = 300 + (process.pid % 97);
  const pb = await hookPlaybook(seconds);
  const logs = path.join(dir, 'sigterm');
  const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
    const p = spawn('timeout', ['--preserve-status', '-s', 'TERM', '8', process.execPath, HOIST_BUILT, 'apply', pb, '-i', inv(), '-l', 'h2'], {
      env: { ...process.env, CI: '1', NO_COLOR: '1', XDG_STATE_HOME: logs },
    });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('close', (code) => resolve({ code, out }));
  });
  assert.equal(r.code, 143, r.out);
  assert.match(r.out, /stopped after_host hook "sleep \d+" of h2/, 'the hook was not running when the signal came (raise the timeout?)');
  assert.deepEqual(processesRunning(`sleep ${seconds}`), [], "the hook's sleep outlived hoist");
  const log = /log: (\S+)/.exec(r.out)?.[1];
  assert.ok(log, r.out);
  const text = await readFile(log, 'utf8');
  assert.match(text, /SIGTERM: no new step starts/);
  assert.match(text, /exit 143/);
});

test('exit codes a wrapper can act on: 5 when another run holds the lock, 6 for a refused host key', async () => {
  // The first run holds h2's lock while its after_host hook sleeps.
  const stamp = `${process.pid}-${Date.now()}`;
  const write = (n: string) =>
    `name = "lock"\nhosts = "all"\n[[tasks]]\ntask = "file"\n[tasks.params]\npath = "/etc/hoist-test/lock-${stamp}"\ncontent = "${n}\\n"\n`;
  const holding = await playbook('holding', `${write('first')}[[after_host]]\nrun = "sleep 6"\n`);
  const first = hoistJson(['apply', holding, '-i', inv(), '-l', 'h2'], { XDG_STATE_HOME: dir });
  for (let i = 0; i < 100 && (await onHost(info, 'h2', 'test -s /var/lib/hoist/lock.holder && echo held')).out.trim() !== 'held'; i++)
    await new Promise((r) => setTimeout(r, 100));
  const refused = await hoistJson(['apply', await playbook('second', write('second')), '-i', inv(), '-l', 'h2'], { XDG_STATE_HOME: dir });
  assert.equal(refused.code, 5, refused.stderr);
  assert.equal(refused.report.hosts[0].reason, 'locked');
  assert.match(refused.report.hosts[0].error ?? '', /h2 is locked by another hoist run/);
  assert.equal((await first).code, 0);

  // Only the bastion's key is known: h1's own is refused.
  const kh = path.join(dir, 'known_hosts_bastion_only');
  await writeFile(
    kh,
    (await readFile(info.knownHostsPath, 'utf8'))
      .split('\n')
      .filter((l) => l.startsWith(`${info.bastion.address} `))
      .join('\n') + '\n',
  );
  const key = await hoistJson(['ping', '-i', inv(), '-l', 'h1', '--known-hosts', kh], { XDG_STATE_HOME: dir });
  assert.equal(key.code, 6, key.stderr);
  assert.equal(key.report.hosts[0].reason, 'host-key');
  assert.ok(key.report.log && key.stderr.includes(`log: ${key.report.log}`), 'the log is named in the envelope and on stderr');
});

test('-v shows each step per host with its duration, -vv each remote command, -vvv the scripts', async () => {
  const pb = await playbook('verbose', `name = "v"\nhosts = "all"\n[[tasks]]\ntask = "command"\nname = "probe me"\n[tasks.params]\ncmd = "true"\n`);
  const plain = await hoist(['check', pb, '-i', inv(), '-l', 'h1'], { XDG_STATE_HOME: dir });
  assert.doesNotMatch(plain.stdout + plain.stderr, /read facts|\$ /);
  const v = await hoist(['check', pb, '-i', inv(), '-l', 'h1', '-v'], { XDG_STATE_HOME: dir });
  const out = v.stdout + v.stderr;
  assert.match(out, /h1 \| connected: .* in \d+\.\d\d s/);
  assert.match(out, /h1 \| read facts and \d+ probe\(s\) of 1 task\(s\) in one round trip: \d+\.\d\d s/);
  assert.match(out, /h1 \| plan "probe me": 1 change in \d+\.\d\d s/);
  assert.match(out, /h1 \| change "probe me": run: true: not run \(check mode\)/);
  assert.doesNotMatch(out, /h1 \| \$ /, '-v shows no remote commands');
  const vv = await hoist(['check', pb, '-i', inv(), '-l', 'h1', '-vv'], { XDG_STATE_HOME: dir });
  assert.match(vv.stdout + vv.stderr, /h1 \| \$ .*\n.*h1 \| exit 0 in \d+ ms/);
  // A script's body starts with its marker line, which the command's headline shows after "$ ".
  assert.doesNotMatch(vv.stdout + vv.stderr, /^h1 \| echo '@@hoist-/m, '-vv shows no whole scripts');
  const vvv = await hoist(['check', pb, '-i', inv(), '-l', 'h1', '-vvv'], { XDG_STATE_HOME: dir });
  assert.match(vvv.stdout + vvv.stderr, /^h1 \| echo '@@hoist-/m, '-vvv shows the scripts');
  assert.match(vvv.stdout + vvv.stderr, /^h1 \| stdout:/m, '-vvv shows their output');
});

test('Ctrl-C does not cut a ProxyCommand connection: the step finishes, then hoist exits 130 and stops the ProxyCommand', async () => {
  const cfg = path.join(dir, 'ssh_config');
  const ssh = `ssh -o BatchMode=yes -o UserKnownHostsFile=${info.knownHostsPath} -i ${info.identityPath}`;
  // A marker in the command line finds this test's ProxyCommand processes and no one else's.
  const marker = `ServerAliveCountMax=${3000 + (process.pid % 997)}`;
  await writeFile(cfg, `Host ${info.hosts[0].address}\n  ProxyCommand ${ssh} -o ${marker} -W %h:%p %r@${info.bastion.address}\n`);
  const proxied = path.join(dir, 'proxied.toml');
  await writeFile(proxied, (await readFile(inv(), 'utf8')).replace(/^jump = .*$/m, ''));
  const stamp = `${process.pid}-${Date.now()}`;
  const pb = await playbook(
    'proxied-slow',
    `name = "p"\nhosts = "all"\n[[tasks]]\ntask = "command"\nname = "slow step"\n[tasks.params]\ncmd = "sleep 3; touch /etc/hoist-test/proxied-${stamp}"\n`,
  );
  const run = onPty(['apply', pb, '-i', proxied, '-l', 'h1'], { env: { XDG_STATE_HOME: dir, HOIST_SSH_CONFIG: cfg }, cols: 250 });
  try {
    await run.waitFor(/h1: slow step/, 30_000);
    run.type('\x03');
    const end = await Promise.race([run.exited, new Promise<null>((r) => setTimeout(() => r(null), 15_000))]);
    assert.ok(end, `hoist still running:\n${run.screen()}`);
    assert.equal(end.code, 130, run.screen());
    assert.match(run.screen(), /h1: was in task "slow step"; ended changed/);
    assert.equal((await onHost(info, 'h1', `test -e /etc/hoist-test/proxied-${stamp} && echo done`)).out.trim(), 'done', 'the step was cut off');
    const left = execFileSync('ps', ['-eo', 'args='], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.includes(marker));
    assert.deepEqual(left, [], 'a ProxyCommand outlived hoist');
  } finally {
    killPty(run);
  }
});
