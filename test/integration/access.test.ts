/**
 * How operators reach real fleets: a sudo user through a bastion, keys in an agent, ~/.ssh/config.
 * Each test names the failure it guards against.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as fleet from '../fleet/fleet.js';
import { hoist, hoistJson, onHost } from '../support/hoist.js';

let info: fleet.FleetInfo;
let dir: string;
let logDir: string;

before(async () => {
  info = await fleet.info();
  dir = mkdtempSync(path.join(os.tmpdir(), 'hoist-access-'));
  logDir = path.join(dir, 'state');
});

after(() => rmSync(dir, { recursive: true, force: true }));

/** The fleet's operator inventory with some [defaults] lines replaced or added. */
function inventory(name: string, change: (text: string) => string): string {
  const f = path.join(dir, `${name}.toml`);
  writeFileSync(f, change(readFileSync(info.inventoryPath, 'utf8')));
  return f;
}
const asUser =
  (user: string, extra = '') =>
  (t: string) =>
    t.replace(/^user = "deploy"$/m, `user = "${user}"${extra ? `\n${extra}` : ''}`);
const withLogs = (env: Record<string, string> = {}) => ({ XDG_STATE_HOME: logDir, ...env });
const allLogs = () => {
  const d = path.join(logDir, 'hoist', 'logs');
  try {
    return readdirSync(d)
      .map((f) => readFileSync(path.join(d, f), 'utf8'))
      .join('\n');
  } catch {
    return '';
  }
};

test('the become password never reaches a shell when sudo does not ask for it', async () => {
  const marker = `/tmp/hoist-pw-${process.pid}`;
  const r = await hoistJson(['ping', '-i', info.inventoryPath], withLogs({ HOIST_BECOME_PASSWORD: `touch ${marker}` }));
  assert.equal(r.code, 0, r.stderr);
  for (const h of ['h1', 'h2', 'h3'])
    assert.equal((await onHost(info, h, `test -e ${marker} && echo made || echo none`)).out.trim(), 'none', `${h} ran the password as a command`);
  assert.ok(!`${r.stdout}${r.stderr}${allLogs()}`.includes(`touch ${marker}`), 'the password text appears in output or logs');
});

test('ops: sudo with a password from a 0600 file works, and the password shows nowhere', async () => {
  const pw = readFileSync(info.opsPasswordFile, 'utf8').trim();
  const inv = inventory('ops', asUser('ops', `become_password_file = ${JSON.stringify(info.opsPasswordFile)}`));
  const r = await hoistJson(['facts', '-i', inv], withLogs());
  assert.equal(r.code, 0, r.stderr);
  const pb = path.join(dir, 'whoami.toml');
  writeFileSync(pb, 'name = "whoami"\n[[tasks]]\ntask = "command"\n[tasks.params]\ncmd = "id -un > /tmp/hoist-whoami"\n');
  const run = await hoistJson(['apply', pb, '-i', inv], withLogs());
  assert.equal(run.code, 0, run.stderr);
  assert.equal((await onHost(info, 'h2', 'cat /tmp/hoist-whoami')).out.trim(), 'root');
  assert.ok(!`${r.stdout}${r.stderr}${run.stdout}${run.stderr}${allLogs()}`.includes(pw));
  // Nor in any process's arguments on the host while a command runs.
  const ps = await onHost(info, 'h1', 'ps -eo args');
  assert.ok(!ps.out.includes(pw));
});

test('ops: become_password by reference (a command, once for every host) works; a broken reference is bad input with file:line', async () => {
  const pw = readFileSync(info.opsPasswordFile, 'utf8').trim();
  const count = path.join(dir, 'pw-command-runs');
  writeFileSync(count, '');
  const cmd = `echo x >> ${count}; cat ${info.opsPasswordFile}`;
  const inv = inventory('ops-ref', asUser('ops', `become_password = { command = ${JSON.stringify(cmd)} }`));
  const r = await hoistJson(['facts', '-i', inv, '-vvv'], withLogs());
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.report.hosts.length, info.hosts.length);
  assert.equal(readFileSync(count, 'utf8'), 'x\n', 'the command ran once for the whole run');
  assert.ok(!`${r.stdout}${r.stderr}${allLogs()}`.includes(pw));

  const broken = inventory('ops-ref-broken', asUser('ops', 'become_password = { env = "HOIST_TEST_NO_SUCH_VAR" }'));
  const line =
    readFileSync(broken, 'utf8')
      .split('\n')
      .findIndex((l) => l.startsWith('become_password')) + 1;
  const t0 = Date.now();
  const bad = await hoistJson(['ping', '-i', broken]);
  assert.equal(bad.code, 1, bad.stderr);
  assert.match(
    bad.report.error?.message ?? '',
    new RegExp(`ops-ref-broken\\.toml:${line} \\(defaults\\.become_password\\): environment variable HOIST_TEST_NO_SUCH_VAR is not set`),
  );
  assert.ok(Date.now() - t0 < 5_000);
});

test('a wrong sudo password fails each host within seconds, naming user, host and where it came from', async () => {
  const bad = path.join(dir, 'wrong-pw');
  writeFileSync(bad, 'not-the-password\n', { mode: 0o600 });
  const inv = inventory('ops-wrong', asUser('ops', `become_password_file = ${JSON.stringify(bad)}`));
  const t0 = Date.now();
  const r = await hoistJson(['ping', '-i', inv]);
  const took = (Date.now() - t0) / 1000;
  assert.equal(r.code, 2, r.stderr);
  for (const h of r.report.hosts) {
    assert.equal(h.status, 'failed');
    assert.match(h.error ?? '', new RegExp(`sudo on ${h.name} refused the password for ops \\(from become_password_file ${bad.replace(/[/.]/g, '\\$&')}\\)`));
  }
  // sudo itself waits 2 s (pam_unix) before it says a password was wrong; hoist adds no retry on top.
  assert.ok(took < 6, `took ${took} s`);
});

test('sudo asking for a password nobody gave, and a user without sudo rights, are sentences with the fix', async () => {
  const r = await hoistJson(['ping', '-i', inventory('ops-none', asUser('ops'))]);
  assert.equal(r.code, 2);
  assert.match(r.report.hosts[0].error ?? '', /sudo asks ops on h\d for a password; give it with -K/);
  const n = await hoistJson(['ping', '-i', inventory('nosudo', asUser('nosudo'))], { HOIST_BECOME_PASSWORD: 'anything' });
  assert.equal(n.code, 2);
  assert.match(n.report.hosts[0].error ?? '', /sudo on h\d refused the password for nosudo|nosudo on h\d has no sudo rights/);
});

test('a password file that is missing or readable by others is bad input: exit 1, nothing contacted', async () => {
  const open = path.join(dir, 'open-pw');
  writeFileSync(open, 'x\n');
  chmodSync(open, 0o644);
  const r = await hoist(['ping', '-i', inventory('pw-open', asUser('ops', `become_password_file = ${JSON.stringify(open)}`))]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /open-pw is readable by others \(mode 0644\); chmod 600 it \(become_password_file of h1, h2, h3\)/);
  const m = await hoist(['ping', '-i', inventory('pw-missing', asUser('ops', `become_password_file = "${dir}/nope"`))]);
  assert.equal(m.code, 1);
  assert.match(m.stderr, /nope does not exist/);
});

test('a host behind the bastion whose own host key is unknown fails at once and the process exits', async () => {
  const kh = path.join(dir, 'known_hosts_bastion_only');
  writeFileSync(
    kh,
    readFileSync(info.knownHostsPath, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith(`${info.bastion.address} `))
      .join('\n') + '\n',
  );
  const t0 = Date.now();
  const r = await hoistJson(['ping', '-i', info.inventoryPath, '--known-hosts', kh]);
  assert.equal(r.code, 6, r.stderr);
  assert.match(r.report.hosts[0].error ?? '', /unknown host key for h\d/);
  assert.ok(Date.now() - t0 < 15_000);
});

test('ProxyCommand from ~/.ssh/config carries the connection (%h %p %r), and one that exits at once says so', async () => {
  const cfg = path.join(dir, 'ssh_config');
  const prefix = info.hosts[0].address.split('.').slice(0, 2).join('.');
  const hosts = info.hosts.map((h) => h.address).join(' ');
  const ssh = `ssh -o BatchMode=yes -o UserKnownHostsFile=${info.knownHostsPath} -i ${info.identityPath}`;
  writeFileSync(cfg, `Host ${hosts}\n  ProxyCommand ${ssh} -W %h:%p %r@${info.bastion.address}\n`);
  const inv = inventory('proxycmd', (t) => t.replace(/^jump = .*$/m, ''));
  const r = await hoistJson(['ping', '-i', inv], { HOIST_SSH_CONFIG: cfg });
  assert.equal(r.code, 0, r.stderr);
  // Without the ProxyCommand deploy is refused: the hosts only let it in from the bastion.
  const direct = await hoistJson(['ping', '-i', inv, '--limit', 'h1']);
  assert.equal(direct.code, 4);

  writeFileSync(cfg, `Host ${prefix}.*\n  ProxyCommand sh -c 'echo "proxy: no route to %h" >&2; exit 3'\n`);
  const t0 = Date.now();
  const bad = await hoistJson(['ping', '-i', inv, '--limit', 'h1'], { HOIST_SSH_CONFIG: cfg });
  assert.equal(bad.code, 4);
  assert.match(bad.report.hosts[0].error ?? '', /ProxyCommand for h1 .* exited with 3: proxy: no route to /);
  assert.ok(Date.now() - t0 < 10_000);
});

test('an Include (glob) of ssh_config sets the jump host, as it does for ssh itself', async () => {
  const incDir = path.join(dir, 'ssh_config.d');
  mkdirSync(incDir, { recursive: true });
  const hosts = info.hosts.map((h) => h.address).join(' ');
  writeFileSync(path.join(incDir, '50-fleet.conf'), `Host ${hosts}\n  ProxyJump deploy@${info.bastion.address}\n`);
  // A later file's value for the same host loses: the first obtained wins.
  writeFileSync(path.join(incDir, '90-late.conf'), `Host ${hosts}\n  ProxyJump nobody@192.0.2.1\n`);
  const cfg = path.join(dir, 'ssh_config_include');
  // Both hops of OpenSSH's own connection need the fleet's key and known_hosts; hoist takes them from its inventory.
  writeFileSync(cfg, `Include ${incDir}/*.conf\nHost *\n  IdentityFile ${info.identityPath}\n  UserKnownHostsFile ${info.knownHostsPath}\n  BatchMode yes\n`);
  const inv = inventory('include', (t) => t.replace(/^jump = .*$/m, ''));
  const r = await hoistJson(['ping', '-i', inv, '--limit', 'h1'], withLogs({ HOIST_SSH_CONFIG: cfg }));
  assert.equal(r.code, 0, r.stderr);
  assert.match(allLogs(), new RegExp(`connected: deploy@${info.bastion.address.replace(/\./g, '\\.')}:22 → deploy@`));
  // OpenSSH, given the same file, takes the same route.
  execFileSync('ssh', ['-F', cfg, `deploy@${info.hosts[0].address}`, 'true'], { timeout: 20_000 });
});

test('ProxyJump chains from ~/.ssh/config: deploy@bastion, then root@h2, then h1', async () => {
  const cfg = path.join(dir, 'ssh_config_jump');
  writeFileSync(
    cfg,
    `Host hop1\n  HostName ${info.bastion.address}\n  User deploy\nHost hop2\n  HostName ${info.hosts[1].address}\n  User root\nHost ${info.hosts[0].address}\n  ProxyJump hop1,hop2\n`,
  );
  const inv = inventory('proxyjump', (t) =>
    t
      .replace(/^jump = .*$/m, '')
      .replace(/^user = "deploy"$/m, 'user = "root"')
      .replace(/^become = true$/m, ''),
  );
  const r = await hoistJson(['ping', '-i', inv, '--limit', 'h1'], withLogs({ HOIST_SSH_CONFIG: cfg }));
  assert.equal(r.code, 0, r.stderr);
  // The log names the route it took.
  assert.match(allLogs(), /connected: deploy@\S+ → root@\S+ → root@\S+/);
});

/** An ssh-agent of the test's own, holding `keys` (passphrases fed by SSH_ASKPASS). */
async function agentWith(keys: { file: string; passphrase: string }[]): Promise<{ sock: string; proc: ChildProcess }> {
  const sock = path.join(dir, `agent-${Date.now()}.sock`);
  const proc = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
  for (let i = 0; i < 50; i++) {
    try {
      execFileSync('test', ['-S', sock]);
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  for (const k of keys) {
    const askpass = path.join(dir, 'askpass.sh');
    writeFileSync(askpass, `#!/bin/sh\nprintf '%s\\n' '${k.passphrase}'\n`, { mode: 0o700 });
    execFileSync('ssh-add', [k.file], {
      env: { ...process.env, SSH_AUTH_SOCK: sock, SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: ':0' },
      stdio: 'ignore',
    });
  }
  return { sock, proc };
}

test('an encrypted identity file: the agent holding it is used without a passphrase; a wrong passphrase is named as such', async () => {
  const key = path.join(dir, 'id_encrypted');
  copyFileSync(info.identityPath, key);
  chmodSync(key, 0o600);
  execFileSync('ssh-keygen', ['-q', '-p', '-P', '', '-N', 'correct horse', '-f', key]);
  const inv = inventory('encrypted', (t) => t.replace(/^identity_file = .*$/m, `identity_file = ${JSON.stringify(key)}`));

  const none = await hoist(['ping', '-i', inv], { SSH_AUTH_SOCK: '' });
  assert.equal(none.code, 1);
  assert.match(none.stderr, /id_encrypted is encrypted and not in the ssh-agent/);

  const wrong = await hoist(['ping', '-i', inv], { SSH_AUTH_SOCK: '', HOIST_SSH_PASSPHRASE: 'battery staple' });
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /cannot decrypt identity file .*id_encrypted with the passphrase from HOIST_SSH_PASSPHRASE: wrong passphrase/);

  const right = await hoistJson(['ping', '-i', inv], { SSH_AUTH_SOCK: '', HOIST_SSH_PASSPHRASE: 'correct horse' });
  assert.equal(right.code, 0, right.stderr);

  const agent = await agentWith([{ file: key, passphrase: 'correct horse' }]);
  try {
    const viaAgent = await hoistJson(['ping', '-i', inv], { SSH_AUTH_SOCK: agent.sock });
    assert.equal(viaAgent.code, 0, viaAgent.stderr);
  } finally {
    agent.proc.kill();
  }
});

test('a host that dies mid-command is reported unreachable within 5 s, and the run ends', async () => {
  const pb = path.join(dir, 'sleep.toml');
  writeFileSync(pb, 'name = "sleep"\n[[tasks]]\ntask = "command"\n[tasks.params]\ncmd = "sleep 60"\n');
  const run = hoistJson(['apply', pb, '-i', info.inventoryPath, '--limit', 'h3']);
  // Let the command start, then pull the plug.
  for (let i = 0; i < 100; i++) {
    if ((await onHost(info, 'h3', 'pgrep -x sleep >/dev/null && echo yes || echo no')).out.trim() === 'yes') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const t0 = Date.now();
  await fleet.stopHost('h3', { abrupt: true });
  const r = await run;
  const took = (Date.now() - t0) / 1000;
  await fleet.startHost('h3');
  assert.equal(r.code, 4, r.stderr);
  assert.equal(r.report.hosts[0].status, 'unreachable');
  assert.ok(took < 6, `noticed after ${took} s`);
});

/** Runs hoist on a pseudo-terminal (util-linux `script`), answering each prompt as it appears. */
function onTerminal(args: string[], answers: { prompt: RegExp; reply: string }[], env: Record<string, string> = {}): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const cmd = [process.execPath, HOIST_CLI, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    const p = spawn('script', ['-qfec', cmd, '/dev/null'], { env: { ...process.env, ...env, TERM: 'dumb', NO_COLOR: '1' } });
    let out = '';
    const pending = [...answers];
    const onData = (d: Buffer) => {
      out += d.toString();
      if (pending.length && pending[0].prompt.test(out)) p.stdin.write(`${pending.shift()!.reply}\r`);
    };
    p.stdout.on('data', onData);
    p.stderr.on('data', onData);
    p.on('close', (code) => resolve({ code: code ?? -1, out }));
  });
}
const HOIST_CLI = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../dist/hoist.cjs');

test('on a terminal: -K asks for the sudo password once, the passphrase of an encrypted key is asked for, neither is echoed', async () => {
  const pw = readFileSync(info.opsPasswordFile, 'utf8').trim();
  const key = path.join(dir, 'id_tty');
  copyFileSync(info.identityPath, key);
  chmodSync(key, 0o600);
  execFileSync('ssh-keygen', ['-q', '-p', '-P', '', '-N', 'tty passphrase', '-f', key]);
  const inv = inventory('tty', (t) => asUser('ops')(t).replace(/^identity_file = .*$/m, `identity_file = ${JSON.stringify(key)}`));
  const r = await onTerminal(
    ['ping', '-i', inv, '-K'],
    [
      { prompt: /BECOME password: /, reply: pw },
      { prompt: /Enter passphrase for key '[^']*id_tty': /, reply: 'tty passphrase' },
    ],
    { SSH_AUTH_SOCK: '' },
  );
  assert.equal(r.code, 0, r.out);
  assert.equal(r.out.match(/BECOME password/g)?.length, 1);
  assert.equal(r.out.match(/Enter passphrase/g)?.length, 1, 'one question per key, however many hosts');
  assert.ok(!r.out.includes(pw) && !r.out.includes('tty passphrase'), 'a secret was echoed');
  assert.match(r.out, /h3 +ok=1/);
});
