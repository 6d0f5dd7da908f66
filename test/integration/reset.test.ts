import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as fleet from '../fleet/fleet.js';
import { hoistJson, onHost, ROOT } from '../support/hoist.js';
import { killPty, onPty } from '../support/pty.js';

/*
 * A reset of a node that runs a container, through the bastion with sudo: refused while the
 * container runs, then, with stop_workloads=true and asked on a terminal after the plan, the
 * container, containerd, hoist's bookkeeping and the empty directories containerd made all go.
 * h1 is bootstrapped with the fleet's 1.7 release; h2 has nothing for a reset to remove.
 */

const RESET = path.join(ROOT, 'playbooks', 'reset.toml');
let info: fleet.FleetInfo;
let dir: string;
let cacheDir: string;
let version: string[];
const env = () => ({ XDG_STATE_HOME: path.join(dir, 'state') });
const base = (...extra: string[]) => ['-i', info.inventoryPath, '--cache-dir', cacheDir, ...version, ...extra];

before(async () => {
  info = await fleet.info();
  const r = info.releases.find((x) => x.line === '1.7');
  assert.ok(r, 'the fleet mirror has a 1.7 release');
  version = ['-e', `containerd_version="${r.containerd}"`];
  dir = await mkdtemp(path.join(os.tmpdir(), 'hoist-reset-'));
  cacheDir = path.join(dir, 'cache');
  await Promise.all(['h1', 'h2'].map((h) => fleet.resetHost(h)));
  const boot = await hoistJson(['apply', path.join(ROOT, 'playbooks', 'containerd.toml'), ...base('-l', 'h1')], env());
  assert.equal(boot.code, 0, `${boot.stderr}\n${JSON.stringify(boot.report, null, 1)}`);
  const addr = info.hosts.find((h) => h.name === 'h1')!.address;
  execFileSync('scp', [
    '-q',
    '-o',
    'BatchMode=yes',
    '-o',
    `UserKnownHostsFile=${info.knownHostsPath}`,
    '-i',
    info.identityPath,
    info.ociImagePath,
    `root@${addr}:/tmp/busybox.tar`,
  ]);
  const c = await onHost(
    info,
    'h1',
    `ctr image import /tmp/busybox.tar >/dev/null && ctr run -d ${info.ociImageName} resetme /bin/busybox sleep 100123 >/dev/null && sleep 0.5 && ctr task ls | awk '$1=="resetme"{print $3}' && pgrep -c containerd-shim`,
  );
  // The shim counted here is the one that must be gone after the reset.
  assert.equal(c.out.trim(), 'RUNNING\n1', c.out);
});

after(() => rm(dir, { recursive: true, force: true }));

test('a host running a container is refused, naming the count, namespace and variable; --check says the same; nothing is removed', async () => {
  for (const check of [['--check'], ['--yes']]) {
    const r = await hoistJson(['apply', RESET, ...base('-l', 'h1,h2', ...check)], env());
    assert.notEqual(r.code, 0, JSON.stringify(r.report.hosts));
    const h1 = r.report.hosts.find((h) => h.name === 'h1')!;
    const why = h1.error ?? h1.tasks.find((t) => t.error)?.error ?? '';
    assert.match(why, /1 container task\(s\) \(1 running\) in namespace\(s\) default: .*-e stop_workloads=true.*nothing was removed/, JSON.stringify(h1));
  }
  const left = await onHost(info, 'h1', `test -x /usr/local/bin/containerd && systemctl is-active containerd && ctr task ls | awk '$1=="resetme"{print $3}'`);
  assert.equal(left.out.trim(), 'active\nRUNNING', left.out);
});

/** Runs the reset on a pty until its question, then answers `keys`. */
async function answered(keys: string, ...extra: string[]) {
  const run = onPty(['apply', RESET, ...base('-l', 'h1,h2', ...extra)], { env: env(), cols: 250 });
  try {
    await run.waitFor(/\[y\/N\]$/m, 120_000);
    const before = run.screen();
    run.type(keys);
    const end = await run.exited;
    return { code: end.code, before, screen: run.screen() };
  } finally {
    killPty(run);
  }
}

test('at the question a plain answer is echoed and "no" does nothing (exit 1); Ctrl-C exits 130', async () => {
  const no = await answered('nope\r', '-e', 'stop_workloads=true');
  assert.equal(no.code, 1, no.screen);
  assert.match(no.before, /1 host\(s\) would change:\n {2}h1: stop 1 container task/, no.before);
  assert.match(no.screen, /\[y\/N\] nope\nnot confirmed; nothing was done/, no.screen);
  const cancel = await answered('\x03', '-e', 'stop_workloads=true');
  assert.equal(cancel.code, 130, cancel.screen);
  assert.match(cancel.screen, /^error: interrupted by SIGINT at the confirmation question; nothing was done/m, cancel.screen);
  const left = await onHost(info, 'h1', `ctr task ls | awk '$1=="resetme"{print $3}'`);
  assert.equal(left.out.trim(), 'RUNNING', left.out);
});

test('with stop_workloads=true the question comes after the plan and names h1 only; the container, containerd, its empty dirs and the bookkeeping go', async () => {
  const run = onPty(['apply', RESET, ...base('-l', 'h1,h2', '-e', 'stop_workloads=true')], { env: env(), cols: 250 });
  try {
    await run.waitFor(/\[y\/N\]$/m, 120_000);
    const screen = run.screen();
    const asked = screen.lastIndexOf('Remove containerd');
    const planned = screen.indexOf('1 host(s) would change:');
    assert.ok(planned >= 0 && planned < asked, `the hosts are not named before the question:\n${screen}`);
    assert.match(
      screen,
      /\n {2}h1: stop 1 container task\(s\) \(1 running\) in namespace\(s\) default and remove their containers; remove containerd as installed by hoist: \d+ file\(s\)/,
      screen,
    );
    assert.doesNotMatch(screen.slice(planned, asked), /\n {2}h2:/, `h2 has nothing to change and is named:\n${screen}`);
    run.type('y\r');
    const end = await run.exited;
    assert.equal(end.code, 0, run.screen());
    assert.match(
      run.screen(),
      /bookkeeping in \/var\/lib\/hoist stays.*data-dirs \(the records of \/var\/lib\/containerd, \/run\/containerd: kept without remove_data=true/,
      run.screen(),
    );
  } finally {
    killPty(run);
  }
  const after = await onHost(
    info,
    'h1',
    `pgrep -c containerd-shim; pgrep -fc 'sleep 10012[3]'; ls /usr/local/bin/containerd /opt/containerd /etc/cni/net.d 2>&1 | grep -c 'No such'; ls -A /var/lib/hoist | tr '\\n' ' '`,
  );
  const [shims, sleeps, missing, hoistDir] = after.out.split('\n');
  assert.deepEqual({ shims, sleeps, missing }, { shims: '0', sleeps: '0', missing: '3' }, after.out);
  assert.equal(
    hoistDir
      .trim()
      .split(' ')
      .filter((e) => !['lock', 'lock.gen', 'commands.lock'].includes(e))
      .join(' '),
    'data-dirs',
    after.out,
  );

  // The data's reset takes the records with the directories: only the lock's files stay.
  const data = await hoistJson(['apply', RESET, ...base('-l', 'h1', '--yes', '-e', 'remove_data=true')], env());
  assert.equal(data.code, 0, JSON.stringify(data.report.hosts));
  assert.deepEqual(
    data.report.hosts[0].tasks.flatMap((t) => t.notes),
    [],
  );
  const last = await onHost(info, 'h1', `ls -A /var/lib/hoist | tr '\\n' ' '; echo; [ -z "$(ls -A /var/lib/containerd 2>/dev/null)" ] && echo emptied`);
  assert.deepEqual(
    last.out
      .split('\n')[0]
      .trim()
      .split(' ')
      .filter((e) => !['lock', 'lock.gen', 'commands.lock'].includes(e)),
    [],
    last.out,
  );
  assert.match(last.out, /emptied/);
});
