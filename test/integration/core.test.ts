import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile, readdir, rm } from 'node:fs/promises';
import { execFileSync, spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import * as fleet from '../fleet/fleet.js';
import { hoist, hoistJson, onHost, changedCount, HOIST, ROOT } from '../support/hoist.js';

let info: fleet.FleetInfo;
let dir: string;
const inv = () => info.inventoryPath;

before(async () => {
  info = await fleet.info();
  await Promise.all(info.hosts.map((h) => fleet.resetHost(h.name)));
  dir = await mkdtemp(path.join(os.tmpdir(), 'hoist-core-'));
});

after(() => rm(dir, { recursive: true, force: true }));

async function playbook(name: string, text: string): Promise<string> {
  const f = path.join(dir, `${name}.toml`);
  await writeFile(f, text);
  return f;
}

test('ping reaches every host with strict host-key checking', async () => {
  const r = await hoistJson(['ping', '-i', inv()]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(
    r.report.hosts.map((h) => [h.name, h.status]),
    [
      ['h1', 'ok'],
      ['h2', 'ok'],
      ['h3', 'ok'],
    ],
  );
});

test('facts are gathered from each host, in the one --json envelope', async () => {
  const r = await hoistJson(['facts', '-i', inv()]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.report.command, 'facts');
  const facts = Object.fromEntries(
    (r.report.hosts as unknown as { name: string; facts: { osId: string; init: string; packageManager: string; arch: string; systemdState?: string } }[]).map(
      (h) => [h.name, h.facts],
    ),
  );
  for (const h of ['h1', 'h2', 'h3']) {
    assert.equal(facts[h].osId, 'debian');
    assert.equal(facts[h].init, 'systemd');
    assert.equal(facts[h].packageManager, 'apt');
    assert.equal(facts[h].arch, 'x86_64');
    // Read for `hoist facts` only: a fleet host's systemd has finished booting.
    assert.match(facts[h].systemdState ?? '', /^(running|degraded)$/);
  }
  const ping = await hoistJson(['ping', '-i', inv()]);
  assert.equal(ping.report.check, false, 'ping is no --check run');
  const pinged = (ping.report.hosts as unknown as { facts?: { osId: string; systemdState?: string } }[]).map((h) => [h.facts?.osId, h.facts?.systemdState]);
  assert.deepEqual(
    pinged,
    [
      ['debian', undefined],
      ['debian', undefined],
      ['debian', undefined],
    ],
    "ping gathers facts, but not systemd's state: nothing plans from it",
  );
});

test('file task: changed on the first run, nothing on the second; --check touches nothing', async () => {
  const pb = await playbook(
    'file',
    `[defaults]\ngreeting = "hello"\n[[tasks]]\ntask = "file"\n[tasks.params]\npath = "/etc/hoist-test/motd"\ncontent = "{{ greeting }} {{ inventory_hostname }}\\n"\nmode = "0640"\n`,
  );
  const check = await hoistJson(['apply', pb, '-i', inv(), '--check']);
  assert.equal(check.code, 0, check.stderr);
  assert.equal(changedCount(check.report), 3);
  assert.equal((await onHost(info, 'h1', 'test -e /etc/hoist-test/motd && echo present || echo absent')).out.trim(), 'absent');

  const first = await hoistJson(['apply', pb, '-i', inv()]);
  assert.equal(first.code, 0, first.stderr);
  assert.equal(changedCount(first.report), 3);
  const h2 = await onHost(info, 'h2', 'cat /etc/hoist-test/motd; stat -c %a /etc/hoist-test/motd');
  assert.equal(h2.out, 'hello h2\n640\n');

  const second = await hoistJson(['apply', pb, '-i', inv()]);
  assert.equal(second.code, 0);
  assert.equal(changedCount(second.report), 0);

  // A changed variable shows up as exactly one diff under --check --diff, and the old file is kept on apply.
  const diff = await hoist(['apply', pb, '-i', inv(), '--check', '--diff', '--limit', 'h1', '-e', 'greeting=bye']);
  assert.equal(diff.code, 0, diff.stderr);
  assert.match(diff.stdout, /-hello h1\n\+bye h1/);
  assert.equal((await onHost(info, 'h1', 'cat /etc/hoist-test/motd')).out, 'hello h1\n');
});

test("file templates see the host's facts; a template error is bad input before any host is touched", async () => {
  const tpl = path.join(dir, 'facts.njk');
  await writeFile(tpl, '{{ inventory_hostname }} runs {{ facts.osId }} {{ facts.osVersion }} on {{ facts.arch }} with {{ facts.packageManager }}\n');
  const pb = await playbook('facts-tpl', `[[tasks]]\ntask = "file"\n[tasks.params]\npath = "/etc/hoist-facts"\ntemplate = "facts.njk"\n`);
  const r = await hoistJson(['apply', pb, '-i', inv(), '--limit', 'h1']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await onHost(info, 'h1', 'cat /etc/hoist-facts')).out, 'h1 runs debian 13 on x86_64 with apt\n');
  await writeFile(tpl, '{{ facts.osid }}\n');
  const bad = await hoist(['apply', pb, '-i', inv(), '--limit', 'h1']);
  assert.equal(bad.code, 1, bad.stderr);
  assert.match(bad.stderr, /template facts\.njk/);
});

test('a hostile variable reaches the host literally', async () => {
  const hostile = `$(touch /tmp/pwned) \`id\` it's "q" \\ ; rm -rf /nope\nline2`;
  await writeFile(path.join(dir, 'hostile-vars.toml'), `hostile = ${JSON.stringify(hostile)}\nweird_dir = "/tmp/hoist dir $(touch /tmp/pwned2) 'q'"\n`);
  const pb = await playbook(
    'hostile',
    `[[tasks]]\ntask = "file"\n[tasks.params]\npath = "{{ weird_dir }}/f.txt"\ncontent = "{{ hostile }}"\n[[tasks]]\ntask = "command"\n[tasks.params]\ncmd = "true"\ncreates = "{{ weird_dir }}/f.txt"\n`,
  );
  const r = await hoistJson(['apply', pb, '-i', inv(), '--limit', 'h1', '-e', `@${path.join(dir, 'hostile-vars.toml')}`]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const got = await onHost(
    info,
    'h1',
    `cat "/tmp/hoist dir \\$(touch /tmp/pwned2) 'q'/f.txt"; echo; ls /tmp/pwned /tmp/pwned2 2>&1 | wc -l; ls /tmp/pwned* 2>/dev/null | wc -l`,
  );
  const lines = got.out.split('\n');
  assert.equal(lines.slice(0, 2).join('\n'), hostile);
  assert.equal(lines[3].trim(), '0', 'no command inside a variable ran');
  // The command's creates guard knows the file task before it will create the file: nothing to run.
  assert.equal(r.report.hosts[0].tasks[1].status, 'ok');
});

test("package task installs from the hosts' apt source, then reports ok", async () => {
  const pb = await playbook('pkg', `[[tasks]]\ntask = "package"\n[tasks.params]\nname = "tree"\n`);
  const first = await hoistJson(['apply', pb, '-i', inv(), '--limit', 'h3']);
  assert.equal(first.code, 0, first.stderr + JSON.stringify(first.report));
  assert.equal(first.report.hosts[0].tasks[0].status, 'changed');
  assert.equal((await onHost(info, 'h3', 'tree --version >/dev/null && echo yes')).out.trim(), 'yes');
  const second = await hoistJson(['apply', pb, '-i', inv(), '--limit', 'h3']);
  assert.equal(second.report.hosts[0].tasks[0].status, 'ok');
});

test('service task: restart follows the files it depends on, across runs', async () => {
  const unitFor = (sleep: string) => `[Unit]\nDescription=hoist test\n[Service]\nExecStart=/bin/sleep ${sleep}\n[Install]\nWantedBy=multi-user.target\n`;
  const pb = (conf: string, sleep = 'infinity') =>
    playbook(
      `svc-${conf.trim()}-${sleep}`,
      `[[tasks]]\ntask = "file"\n[tasks.params]\npath = "/etc/systemd/system/hoist-sleep.service"\ncontent = ${JSON.stringify(unitFor(sleep))}\n[[tasks]]\ntask = "file"\n[tasks.params]\npath = "/etc/hoist-sleep.conf"\ncontent = "${conf}"\n[[tasks]]\ntask = "service"\n[tasks.params]\nname = "hoist-sleep"\nrestart_on = ["/etc/hoist-sleep.conf"]\nunit_files = ["/etc/systemd/system/hoist-sleep.service"]\n`,
    );
  const a = await hoistJson(['apply', await pb('a'), '-i', inv(), '--limit', 'h2']);
  assert.equal(a.code, 0, a.stderr + JSON.stringify(a.report));
  // enable reloads systemd itself: no separate daemon-reload for the new unit file.
  assert.deepEqual(a.report.hosts[0].tasks[2].changes, ['enable hoist-sleep.service', 'start hoist-sleep.service']);
  const pid1 = (await onHost(info, 'h2', 'systemctl show -p MainPID --value hoist-sleep')).out.trim();
  const again = await hoistJson(['apply', await pb('a'), '-i', inv(), '--limit', 'h2']);
  assert.equal(changedCount(again.report), 0);
  assert.equal((await onHost(info, 'h2', 'systemctl show -p MainPID --value hoist-sleep')).out.trim(), pid1);
  // The config changes behind hoist's back (a run that died before its restart looks the same): the next run restarts.
  await onHost(info, 'h2', 'printf b > /etc/hoist-sleep.conf');
  const next = await hoistJson(['apply', await pb('b'), '-i', inv(), '--limit', 'h2']);
  assert.deepEqual(next.report.hosts[0].tasks[2].changes, ['restart hoist-sleep.service (its files changed since it started)']);
  assert.notEqual((await onHost(info, 'h2', 'systemctl show -p MainPID --value hoist-sleep')).out.trim(), pid1);
  // The unit file changes on an enabled service: one daemon-reload, and systemd has read it.
  const unitChange = await hoistJson(['apply', await pb('b', '99999'), '-i', inv(), '--limit', 'h2']);
  assert.equal(unitChange.code, 0, unitChange.stderr);
  assert.deepEqual(unitChange.report.hosts[0].tasks[2].changes, ['systemctl daemon-reload']);
  assert.equal((await onHost(info, 'h2', 'systemctl show -p NeedDaemonReload --value hoist-sleep')).out.trim(), 'no');
});

test('service task adopts a service that runs with its current files (ssh) without restarting it; one started before its files changed is restarted', async () => {
  await onHost(info, 'h3', 'rm -f /var/lib/hoist/stamps/ssh.service');
  const pid = (await onHost(info, 'h3', 'systemctl show -p MainPID --value ssh')).out.trim();
  const pb = await playbook('adopt-ssh', `[[tasks]]\ntask = "service"\n[tasks.params]\nname = "ssh"\nrestart_on = ["/etc/ssh/sshd_config"]\n`);
  const r = await hoistJson(['apply', pb, '-i', inv(), '--limit', 'h3']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(changedCount(r.report), 0, JSON.stringify(r.report.hosts[0].tasks));
  assert.equal((await onHost(info, 'h3', 'systemctl show -p MainPID --value ssh')).out.trim(), pid, 'ssh was restarted');
  assert.match((await onHost(info, 'h3', 'cat /var/lib/hoist/stamps/ssh.service')).out, /^[0-9a-f]{64}$/m, 'no record written');

  // Its config changed after it started and hoist has no record: the running daemon may not have it.
  await onHost(info, 'h3', 'rm -f /var/lib/hoist/stamps/ssh.service; touch /etc/ssh/sshd_config');
  const stale = await hoistJson(['apply', pb, '-i', inv(), '--limit', 'h3', '--check']);
  assert.deepEqual(stale.report.hosts[0].tasks[0].changes, ['restart ssh.service (its files are newer than its start, and hoist has no record of it)']);
});

test('an unreachable host fails alone with exit code 4', async () => {
  const text = (await readFile(inv(), 'utf8')) + `\n[hosts.ghost]\naddress = "127.0.0.1"\nport = 1\n`;
  const f = path.join(dir, 'ghost.toml');
  await writeFile(f, text);
  const r = await hoistJson(['ping', '-i', f]);
  assert.equal(r.code, 4);
  const ghost = r.report.hosts.find((h) => h.name === 'ghost')!;
  assert.equal(ghost.status, 'unreachable');
  // Through the bastion, the refusal comes back as the bastion's channel-open failure.
  assert.match(ghost.error!, /ECONNREFUSED|Connection refused/);
  assert.deepEqual(
    r.report.hosts.filter((h) => h.name !== 'ghost').map((h) => h.status),
    ['ok', 'ok', 'ok'],
  );
});

test('a host whose key changed is refused; an unknown key needs --accept-new-host-keys', async () => {
  const kh = path.join(dir, 'known_hosts_bad');
  const keyFile = path.join(dir, 'otherkey');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', keyFile]);
  const other = (await readFile(`${keyFile}.pub`, 'utf8')).split(' ');
  const lines = (await readFile(info.knownHostsPath, 'utf8')).split('\n').filter((l) => !l.startsWith(`${info.hosts[0].address} `));
  await writeFile(kh, [`${info.hosts[0].address} ${other[0]} ${other[1]}`, ...lines].join('\n'));
  const r = await hoistJson(['ping', '-i', inv(), '--known-hosts', kh]);
  assert.equal(r.code, 6, 'a refused host key has its own exit code');
  assert.equal(r.report.hosts[0].status, 'failed');
  assert.match(r.report.hosts[0].error!, /HOST KEY CHANGED for h1/);
  assert.deepEqual(
    r.report.hosts.slice(1).map((h) => h.status),
    ['ok', 'ok'],
  );

  // Only the bastion is known: the host behind it is the one whose key is unknown.
  const empty = path.join(dir, 'known_hosts_bastion_only');
  await writeFile(
    empty,
    (await readFile(info.knownHostsPath, 'utf8'))
      .split('\n')
      .filter((l) => l.startsWith(`${info.bastion.address} `))
      .join('\n') + '\n',
  );
  const unknown = await hoistJson(['ping', '-i', inv(), '--known-hosts', empty, '--limit', 'h2']);
  assert.equal(unknown.code, 6);
  assert.match(unknown.report.hosts[0].error!, /unknown host key for h2/);
  const accepted = await hoistJson(['ping', '-i', inv(), '--known-hosts', empty, '--limit', 'h2', '--accept-new-host-keys']);
  assert.equal(accepted.code, 0);
  const strict = await hoistJson(['ping', '-i', inv(), '--known-hosts', empty, '--limit', 'h2']);
  assert.equal(strict.code, 0, 'the accepted key was recorded');
});

test('become: a non-root user works through sudo; one without sudo rights fails clearly', async () => {
  const text = (await readFile(inv(), 'utf8'))
    .replace(/\[hosts\.h1\]\naddress = "([^"]+)"/, '[hosts.h1]\naddress = "$1"\nuser = "deploy"\nbecome = true')
    .replace(/\[hosts\.h2\]\naddress = "([^"]+)"/, '[hosts.h2]\naddress = "$1"\nuser = "nosudo"\nbecome = true');
  const f = path.join(dir, 'become-inventory.toml');
  await writeFile(f, text);
  const pb = await playbook('become', `[[tasks]]\ntask = "file"\n[tasks.params]\npath = "/etc/hoist-become"\ncontent = "root only"\nmode = "0600"\n`);
  const r = await hoistJson(['apply', pb, '-i', f, '--limit', 'h1,h2']);
  assert.equal(r.report.hosts[0].status, 'changed', JSON.stringify(r.report.hosts[0]));
  assert.equal((await onHost(info, 'h1', 'stat -c "%U %a" /etc/hoist-become')).out.trim(), 'root 600');
  assert.equal(r.report.hosts[1].status, 'failed');
  assert.match(r.report.hosts[1].error!, /sudo/);
  assert.equal(r.code, 2);
});

test('secrets stay out of output, --json and the log', async () => {
  const secret = 'S3cr3t-Pa55w0rd-hoist';
  const pb = await playbook(
    'secret',
    `[[tasks]]\ntask = "file"\n[tasks.params]\npath = "/etc/hoist-secret"\ncontent = "password={{ pw }}"\nmode = "0600"\nsecret = true\n`,
  );
  const logs = await mkdtemp(path.join(os.tmpdir(), 'hoist-logs-'));
  const env = { XDG_STATE_HOME: logs };
  const plain = await hoist(['apply', pb, '-i', inv(), '--limit', 'h1', '-e', `pw="${secret}"`, '--diff'], env);
  const json = await hoist(['apply', pb, '-i', inv(), '--limit', 'h1', '-e', `pw="${secret}x"`, '--diff', '--json'], env);
  assert.equal(plain.code, 0, plain.stderr);
  assert.equal(json.code, 0, json.stderr);
  const logDir = path.join(logs, 'hoist', 'logs');
  const logText = (await Promise.all((await readdir(logDir)).map((f) => readFile(path.join(logDir, f), 'utf8')))).join('\n');
  assert.ok(logText.length > 0);
  for (const out of [plain.stdout, plain.stderr, json.stdout, json.stderr, logText]) assert.ok(!out.includes(secret), 'secret leaked');
  assert.equal((await onHost(info, 'h1', 'cat /etc/hoist-secret')).out, `password=${secret}x`);
});

test('bad input stops the run before any host is touched, naming file, line and key', async () => {
  const pb = await playbook('bad', `[[tasks]]\ntask = "file"\n[tasks.params]\npath = "/etc/hoist-bad"\ncontent = "x"\nowner = "root"\nmdoe = "0600"\n`);
  const r = await hoist(['apply', pb, '-i', inv()]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /bad\.toml:7 \(tasks\[0\]\.params\.mdoe\): unknown key "mdoe"; did you mean "mode"\?/);
  assert.equal((await onHost(info, 'h1', 'test -e /etc/hoist-bad && echo present || echo absent')).out.trim(), 'absent');
});

test("jump = an inventory host: root through h1 to h1's own sshd (the root variant)", async () => {
  // h1 is the jump host; through it hoist reaches h1's own sshd at 127.0.0.1, whose key must be known too.
  const h1 = info.hosts[0];
  const key = (await readFile(info.knownHostsPath, 'utf8')).split('\n').find((l) => l.startsWith(`${h1.address} `))!;
  const kh = path.join(dir, 'known_hosts_jump');
  await writeFile(kh, `${await readFile(info.knownHostsPath, 'utf8')}\n${key.replace(h1.address, '127.0.0.1')}\n`);
  const f = path.join(dir, 'jump-inventory.toml');
  await writeFile(f, `${await readFile(info.rootInventoryPath, 'utf8')}\n[hosts.inner]\naddress = "127.0.0.1"\njump = "h1"\n`);
  const r = await hoistJson(['ping', '-i', f, '--limit', 'inner', '--known-hosts', kh]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.report.hosts[0].status, 'ok');
  const plain = await hoist(['facts', '-i', f, '--limit', 'inner', '--known-hosts', kh]);
  assert.match(plain.stdout, /inner\s+debian 13/);
});

test('--forks 1 still reaches every host; Ctrl-C stops cleanly and names the hosts mid-task', async () => {
  const r = await hoistJson(['ping', '-i', inv(), '--forks', '1']);
  assert.equal(r.code, 0);
  assert.equal(r.report.hosts.length, 3);
  // The first SIGINT lets each host finish its current step: a short one.
  const pb = await playbook('slow', `[[tasks]]\ntask = "command"\n[tasks.params]\ncmd = "sleep 5"\n`);
  const child = spawn(process.execPath, [HOIST, 'apply', pb, '-i', inv()], { cwd: ROOT, env: { ...process.env, CI: '1', NO_COLOR: '1' } });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  await new Promise((res) => setTimeout(res, 2500));
  child.kill('SIGINT');
  const code = await new Promise<number | null>((res) => child.on('close', res));
  assert.equal(code, 130);
  assert.match(err, /interrupted by SIGINT:\n {2}h\d: was in task "command"/);
});
