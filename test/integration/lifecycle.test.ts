import { test, after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as fleet from '../fleet/fleet.js';
import { hoist, hoistJson, onHost, changedCount, ROOT, HOIST } from '../support/hoist.js';

const PB = (n: string) => path.join(ROOT, 'playbooks', `${n}.toml`);
let info: fleet.FleetInfo;
let cacheDir: string;

before(async () => {
  info = await fleet.info();
  cacheDir = path.join(await mkdtemp(path.join(os.tmpdir(), 'hoist-life-')), 'cache');
});

after(() => rm(path.dirname(cacheDir), { recursive: true, force: true }));

const rel = (line: string) => info.releases.find((r) => r.line === line);
function versionArgs(line: string): string[] {
  const r = rel(line)!;
  const args = ['-e', `containerd_version="${r.containerd}"`];
  if (r.kind === 'components') args.push('-e', 'crictl_version=false', '-e', `runc_version="${r.runc}"`, '-e', `cni_version="${r.cni}"`);
  return args;
}
const run = (pb: string, line: string, ...extra: string[]) =>
  hoistJson(['apply', PB(pb), '-i', info.inventoryPath, '--cache-dir', cacheDir, ...versionArgs(line), ...extra]);

async function startContainer(host: string): Promise<string> {
  execFileSync('scp', [
    '-q',
    '-o',
    'BatchMode=yes',
    '-o',
    `UserKnownHostsFile=${info.knownHostsPath}`,
    '-i',
    info.identityPath,
    info.ociImagePath,
    `root@${info.hosts.find((h) => h.name === host)!.address}:/tmp/busybox.tar`,
  ]);
  const r = await onHost(
    info,
    host,
    `ctr image import /tmp/busybox.tar >/dev/null && ctr run -d ${info.ociImageName} longlived /bin/busybox sleep 100000 >/dev/null && sleep 0.5 && ctr task ls | awk '$1=="longlived"{print $2}'`,
  );
  assert.match(r.out.trim(), /^\d+$/, r.out);
  return r.out.trim();
}

async function stillRunning(host: string, pid: string) {
  const r = await onHost(info, host, `kill -0 ${pid} && echo alive; ctr task ls | awk '$1=="longlived"{print $2, $3}'`);
  assert.equal(r.out, `alive\n${pid} RUNNING\n`, `${host}: ${r.out}`);
}

/**
 * Runs hoist and SIGKILLs it `delayMs` after its log first has a line matching `at`: the kill is
 * placed by the run's own progress, not by a guess at how long the steps before it take.
 * False when the run ended first.
 */
async function killWhenLogged(args: string[], at: RegExp, delayMs: number): Promise<boolean> {
  const state = await mkdtemp(path.join(os.tmpdir(), 'hoist-kill-'));
  const child = spawn(process.execPath, [HOIST, ...args], { cwd: ROOT, env: { ...process.env, CI: '1', XDG_STATE_HOME: state }, stdio: 'ignore' });
  const closed = new Promise<void>((r) => child.on('close', () => r()));
  let ended = false;
  void closed.then(() => (ended = true));
  const logs = path.join(state, 'hoist', 'logs');
  try {
    for (;;) {
      if (ended) return false;
      const name = (await readdir(logs).catch(() => [] as string[])).find((f) => f.endsWith(`-${child.pid}.log`));
      const text = name ? await readFile(path.join(logs, name), 'utf8') : '';
      if (at.test(text)) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
    if (ended) return false;
    child.kill('SIGKILL');
    await closed;
    return true;
  } finally {
    if (!ended) child.kill('SIGKILL');
    await rm(state, { recursive: true, force: true });
  }
}

/** Why h1 did not converge after a kill, or undefined: one rerun exits 0 verified, the next changes nothing, nothing temporary is left. */
async function convergence(args: string[], version: string): Promise<string | undefined> {
  const r = await hoistJson(args);
  const h = r.report.hosts[0];
  if (r.code !== 0) return `rerun exited ${r.code}: ${h?.error ?? r.stderr.trim().split('\n').slice(-3).join(' ')}`;
  const verify = h.tasks.find((x) => x.task === 'containerd_verify');
  if (verify?.status !== 'ok' || !verify.notes.some((n) => n.startsWith('server ') && n.includes(version)))
    return `rerun did not verify ${version}: ${verify?.notes.join('; ')}`;
  const again = await hoistJson(args);
  if (again.code !== 0 || changedCount(again.report) !== 0) {
    return `second rerun: exit ${again.code}, changed ${again.report.hosts[0].tasks
      .filter((x) => x.status === 'changed')
      .map((x) => `${x.task}: ${x.changes.join(', ')}`)
      .join('; ')}`;
  }
  // Every installed file matches its record; no temporary file, staging tree or half-kept copy is left.
  const left = await onHost(
    info,
    'h1',
    `cut -d' ' -f3- /var/lib/hoist/containerd/files.stat | xargs -d '\\n' stat -c '%s %Y %n' | diff -q - /var/lib/hoist/containerd/files.stat >/dev/null && echo same
find /usr/local /opt /etc /var/lib/hoist -xdev \\( -name '.hoist-tmp-*' -o -name '*.hoist-new' -o -name '*.hoist-part' \\) 2>/dev/null
find /var/lib/hoist -name '*.new' -o -name '*.part' 2>/dev/null
ls -A /var/lib/hoist/staging 2>/dev/null`,
  );
  if (left.out !== 'same\n') return `left on the host: ${left.out.trim().replace(/\n/g, ', ')}`;
  return undefined;
}

describe('rolling upgrades', () => {
  test('1.6 → 1.7 → 2.x one host at a time: containers keep running, verification green, a rerun changes nothing', async (t) => {
    if (!rel('1.6') || !rel('1.7') || !rel('2.1')) return t.skip('the mirror lacks a 1.6, 1.7 or 2.1 release');
    await Promise.all(info.hosts.map((h) => fleet.resetHost(h.name)));
    const boot = await run('containerd', '1.6');
    assert.equal(boot.code, 0, JSON.stringify(boot.report));
    const pids = new Map<string, string>();
    for (const h of info.hosts) pids.set(h.name, await startContainer(h.name));

    for (const line of ['1.7', '2.1']) {
      const up = await run('upgrade', line);
      assert.equal(up.code, 0, `${up.stderr}\n${JSON.stringify(up.report, null, 1)}`);
      for (const h of up.report.hosts) {
        assert.equal(h.status, 'changed');
        const verify = h.tasks.find((x) => x.task === 'containerd_verify')!;
        assert.ok(
          verify.notes.some((n) => n.startsWith('server ') && n.includes(rel(line)!.containerd)),
          verify.notes.join('; '),
        );
      }
      for (const [h, pid] of pids) await stillRunning(h, pid);
      const again = await run('upgrade', line);
      assert.equal(again.code, 0);
      assert.equal(changedCount(again.report), 0, 'rerunning a finished upgrade changes nothing');
    }
    // The host keeps the archives of the running release and of the one before it, no older.
    const kept = (await onHost(info, 'h1', 'ls /var/lib/hoist/artifacts')).out.trim().split('\n');
    assert.equal(kept.length, 4, kept.join(' '));
    assert.ok(kept.some((f) => f.endsWith(`cri-containerd-cni-${rel('1.7')!.containerd}-linux-amd64.tar.gz`)));
    assert.ok(!kept.some((f) => f.includes(rel('1.6')!.containerd)));
    // 2.x ships neither containerd-shim nor containerd-shim-runc-v1: the 1.x ones are gone (kept for a rollback).
    assert.equal(
      (
        await onHost(
          info,
          'h1',
          'ls /usr/local/bin | grep -c -x -e containerd-shim -e containerd-shim-runc-v1; ls /var/lib/hoist/containerd/prev/usr/local/bin | grep -c -x -e containerd-shim -e containerd-shim-runc-v1',
        )
      ).out,
      '0\n2\n',
    );
    // Downgrades need to be asked for.
    const down = await run('upgrade', '1.7', '--limit', 'h1');
    assert.equal(down.code, 2);
    assert.match(down.report.hosts[0].error!, /downgrade/);
  });

  test('a host failing verification is rolled back, the roll-out stops, later hosts are untouched', async (t) => {
    if (!rel('1.7') || !rel('2.1')) return t.skip('needs 1.7 and 2.1 releases');
    await Promise.all(info.hosts.map((h) => fleet.resetHost(h.name)));
    assert.equal((await run('containerd', '1.7')).code, 0);
    // A drop-in 1.7 ignores but which disables 2.x's CRI image service: the new version fails verification on h2 only.
    await onHost(
      info,
      'h2',
      `printf 'disabled_plugins = ["io.containerd.cri.v1.images"]\\n' > /etc/containerd/conf.d/99-local.toml && systemctl restart containerd`,
    );
    const h3Before = (await onHost(info, 'h3', 'sha256sum /usr/local/bin/containerd /etc/containerd/config.toml; cat /var/lib/hoist/containerd/installed.json'))
      .out;
    const up = await run('upgrade', '2.1', '-e', 'verify_settle_seconds=3');
    assert.equal(up.code, 2);
    const [h1, h2, h3] = up.report.hosts;
    assert.equal(h1.status, 'changed');
    assert.equal(h2.status, 'failed');
    assert.match(h2.error!, /verification failed[\s\S]*CRI plugin not ok[\s\S]*rolled back to containerd 1\.7\.\d+, which is running again/);
    assert.equal(h3.status, 'skipped');
    assert.match(up.report.aborted ?? '', /roll-out stopped after h2 failed/);
    const v2 = await onHost(info, 'h2', 'ctr version | grep -c "Version:  1.7"; systemctl is-active containerd');
    assert.equal(v2.out, '2\nactive\n');
    assert.equal(
      (await onHost(info, 'h3', 'sha256sum /usr/local/bin/containerd /etc/containerd/config.toml; cat /var/lib/hoist/containerd/installed.json')).out,
      h3Before,
    );
    // h2 is consistent after the rollback: its old version reruns clean.
    const back = await run('containerd', '1.7', '--limit', 'h2');
    assert.equal(changedCount(back.report), 0, JSON.stringify(back.report.hosts[0].tasks.filter((x) => x.status !== 'ok')));
  });

  test('a failing before_host hook stops the roll-out before the host changes', async (t) => {
    if (!rel('2.1')) return t.skip('needs a 2.1 release');
    const hooked = path.join(await mkdtemp(path.join(os.tmpdir(), 'hoist-hook-')), 'hooked.toml');
    execFileSync('bash', [
      '-c',
      `printf 'extends = "${PB('upgrade')}"\\n[[before_host]]\\nrun = "test $HOIST_HOST != h3"\\n[[after_host]]\\nrun = "echo done-$HOIST_HOST"\\non = "host"\\n' > ${hooked}`,
    ]);
    const r = await hoistJson(['apply', hooked, '-i', info.inventoryPath, '--cache-dir', cacheDir, ...versionArgs('2.1'), '--limit', 'h3']);
    assert.equal(r.code, 2);
    assert.match(r.report.hosts[0].error!, /before_host hook failed, host left unchanged/);
    // The half-done drain is closed by after_host, which ran on the host.
    assert.ok(r.report.hosts[0].notes?.includes('after_host hooks ran: the host was left unchanged'), JSON.stringify(r.report.hosts[0].notes));
    assert.ok(r.report.hosts[0].notes?.some((n) => /^after_host hook \(host\) "echo done-\$HOIST_HOST": ok/.test(n)));
    assert.match((await onHost(info, 'h3', 'ctr version | grep -m1 Version')).out, /1\.7/);
  });
});

describe('staging rebuilds', () => {
  test('reset then bootstrap reproduces every managed file byte for byte', async () => {
    const line = rel('2.1') ? '2.1' : '1.7';
    await Promise.all(info.hosts.map((h) => fleet.resetHost(h.name)));
    assert.equal((await run('containerd', line)).code, 0);
    const sums = `cd / && (cut -d' ' -f3- /var/lib/hoist/containerd/files.stat; echo /etc/containerd/config.toml; echo /etc/crictl.yaml; echo /etc/systemd/system/containerd.service; find /etc/containerd/certs.d -type f 2>/dev/null) | sort | xargs -d '\\n' sha256sum`;
    const first = await Promise.all(info.hosts.map((h) => onHost(info, h.name, sums)));
    assert.ok(first[0].out.split('\n').length > 10, first[0].out);
    const noConfirm = await hoist(['apply', PB('reset'), '-i', info.inventoryPath, ...versionArgs(line)]);
    assert.equal(noConfirm.code, 1);
    assert.match(noConfirm.stderr, /--yes/);
    // --check --diff names every file it would delete, the binaries among them.
    const preview = await hoist(['apply', PB('reset'), '-i', info.inventoryPath, ...versionArgs(line), '--check', '--diff', '--limit', 'h1']);
    assert.equal(preview.code, 0, preview.stderr);
    assert.match(preview.stdout, /^-\/usr\/local\/bin\/containerd$/m);
    assert.match(preview.stdout, /^-\/etc\/containerd\/config\.toml$/m);
    assert.match(preview.stdout, /remove containerd as installed by hoist: \d+ file\(s\)/);
    const reset = await run('reset', line, '--yes', '-e', 'remove_data=true');
    assert.equal(reset.code, 0, JSON.stringify(reset.report));
    const gone = await onHost(
      info,
      'h1',
      'ls /usr/local/bin /usr/local/sbin; ls /etc/containerd /var/lib/hoist/containerd /var/lib/containerd/io.containerd.content.v1.content 2>&1 | grep -c "No such"; systemctl cat containerd 2>&1 | grep -c "No files"',
    );
    assert.equal(gone.out, '/usr/local/bin:\n\n/usr/local/sbin:\n3\n1\n');
    assert.equal(changedCount((await run('reset', line, '--yes')).report), 0, 'a second reset has nothing to do');
    assert.equal((await run('containerd', line)).code, 0);
    const second = await Promise.all(info.hosts.map((h) => onHost(info, h.name, sums)));
    assert.deepEqual(
      second.map((s) => s.out),
      first.map((f) => f.out),
    );
    // Same inventory and playbook on every host: only host-independent content.
    assert.equal(first[0].out, first[2].out);
  });
});

describe('failure safety', () => {
  test("SIGKILL at 20+ points of an install and an upgrade, each placed from the run's log: one rerun converges and verifies, the next changes nothing, nothing temporary is left", async (t) => {
    const from = rel('1.7') ?? info.releases[0];
    const to = rel('2.1');
    const killCache = path.join(cacheDir, '..', 'kill-cache');
    const args = (pb: string, r: { line: string }) => [
      'apply',
      PB(pb),
      '-i',
      info.inventoryPath,
      '--limit',
      'h1',
      '--cache-dir',
      killCache,
      ...versionArgs(r.line),
    ];
    // The archives go into the cache once, so every killed run reaches the host as quickly as the next.
    for (const r of to ? [from, to] : [from]) {
      const fetched = await hoist(['fetch', '--cache-dir', killCache, '-i', info.inventoryPath, ...versionArgs(r.line)]);
      assert.equal(fetched.code, 0, fetched.stderr);
    }
    // Each point: the first log line of h1 that matches, and how long after it the kill lands.
    const install: [RegExp, number][] = [
      [/\[h1\] (push|stage) cri-containerd/, 0],
      [/\[h1\] (push|stage) cri-containerd/, 250],
      [/\[h1\] (push|stage) cri-containerd/, 700],
      [/\[h1\] install containerd/, 0],
      [/\[h1\] install containerd/, 150],
      [/\[h1\] install containerd/, 400],
      [/\[h1\] install containerd/, 900],
      [/\[h1\] create \/etc\/containerd\/config\.toml/, 0],
      [/\[h1\] create \/etc\/systemd\/system\/containerd\.service/, 20],
      [/\[h1\] enable containerd\.service/, 0],
      [/\[h1\] \$ systemctl enable containerd\.service[\s\S]*?\[h1\] exit 0/, 0],
      [/\[h1\] start containerd\.service/, 0],
    ];
    const upgrade: [RegExp, number][] = to
      ? [
          [/\[h1\] (push|stage) containerd-/, 0],
          [/\[h1\] (push|stage) containerd-/, 300],
          [/\[h1\] (push|stage) runc/, 0],
          [/\[h1\] install containerd/, 0],
          [/\[h1\] install containerd/, 250],
          [/\[h1\] install containerd/, 600],
          [/\[h1\] update \/etc\/containerd\/config\.toml/, 0],
          [/\[h1\] restart containerd\.service/, 0],
          [/\[h1\] restart containerd\.service/, 300],
        ]
      : [];
    let tried = 0;
    let converged = 0;
    const failures: string[] = [];
    for (const [kind, points] of [
      ['install', install],
      ['upgrade', upgrade],
    ] as const) {
      for (const [at, delay] of points) {
        await fleet.resetHost('h1');
        if (kind === 'upgrade') assert.equal((await hoistJson(args('containerd', from))).code, 0);
        const target = kind === 'upgrade' ? to! : from;
        const landed = await killWhenLogged(args(kind === 'upgrade' ? 'upgrade' : 'containerd', target), at, delay);
        const where = `${kind} ${at.source} +${delay} ms`;
        if (!landed) {
          failures.push(`${where}: the run ended before the kill`);
          continue;
        }
        tried++;
        const problem = await convergence(args(kind === 'upgrade' ? 'upgrade' : 'containerd', target), target.containerd);
        if (problem) failures.push(`${where}: ${problem}`);
        else converged++;
      }
    }
    t.diagnostic(`kills tried ${tried}, converged ${converged}`);
    assert.deepEqual(failures, []);
    assert.ok(tried >= 20, `only ${tried} kills landed`);
  });

  test('a stopped or restarting containerd is started and verified, by the install playbook and by an upgrade, which does not stop on it', async () => {
    const line = rel('1.7') ? '1.7' : info.releases[0].line;
    await Promise.all(info.hosts.map((h) => fleet.resetHost(h.name)));
    assert.equal((await run('containerd', line)).code, 0);
    for (const pb of ['containerd', 'upgrade']) {
      // h1 stopped; h2's daemon killed, so systemd is bringing it back (activating) as the run reads it.
      await onHost(info, 'h1', 'systemctl stop containerd');
      await onHost(info, 'h2', 'systemctl kill -s KILL containerd; sleep 0.2');
      const r = await run(pb, line);
      assert.equal(r.code, 0, `${pb}: ${JSON.stringify(r.report, null, 1)}`);
      assert.equal(r.report.aborted, undefined);
      for (const h of r.report.hosts) {
        const verify = h.tasks.find((x) => x.task === 'containerd_verify')!;
        assert.ok(verify.status === 'ok' && verify.notes.some((n) => n.startsWith('server ')), `${pb} ${h.name}: ${verify.notes.join('; ')}`);
      }
      assert.deepEqual(r.report.hosts[0].tasks.find((x) => x.task === 'containerd_service')!.changes, ['start containerd.service']);
      assert.equal((await onHost(info, 'h1', 'systemctl is-active containerd')).out, 'active\n');
    }
    assert.equal(changedCount((await run('containerd', line)).report), 0);
  });

  test('commands a killed run left running on a host are stopped, with a note, before the next run touches it', async () => {
    const dir = path.dirname(cacheDir);
    const slow = path.join(dir, 'orphan.toml');
    const next = path.join(dir, 'after-orphan.toml');
    await writeFile(slow, `[[tasks]]\ntask = "command"\n[tasks.params]\ncmd = "rm -f /tmp/hoist-orphan; sleep 30; echo done > /tmp/hoist-orphan"\n`);
    await writeFile(next, `[[tasks]]\ntask = "command"\n[tasks.params]\ncmd = "! pgrep -x -f 'sleep 30' && test ! -e /tmp/hoist-orphan"\n`);
    const child = spawn(process.execPath, [HOIST, 'apply', slow, '-i', info.inventoryPath, '--limit', 'h3'], {
      cwd: ROOT,
      env: { ...process.env, CI: '1' },
      stdio: 'ignore',
    });
    for (let i = 0; i < 100 && (await onHost(info, 'h3', `pgrep -x -f 'sleep 30' >/dev/null && echo yes`)).out.trim() !== 'yes'; i++)
      await new Promise((r) => setTimeout(r, 100));
    child.kill('SIGKILL');
    await new Promise((r) => child.on('close', r));
    // The killed run's command is still sleeping on h3; the next run neither waits for it nor runs beside it.
    const t0 = Date.now();
    const r = await hoistJson(['apply', next, '-i', info.inventoryPath, '--limit', 'h3']);
    assert.equal(r.code, 0, JSON.stringify(r.report.hosts[0]));
    assert.ok(Date.now() - t0 < 20_000, 'the next run waited for the leftover command');
    assert.match(r.report.hosts[0].notes?.join('\n') ?? '', /stopped a command a killed hoist run left running/);
  });

  test('a host that dies mid-run is unreachable (exit 4), the others finish, the next run completes it', async () => {
    const line = rel('1.7') ? '1.7' : info.releases[0].line;
    await Promise.all(info.hosts.map((h) => fleet.resetHost(h.name)));
    const child = hoistJson(['apply', PB('containerd'), '-i', info.inventoryPath, '--cache-dir', cacheDir, ...versionArgs(line)]);
    // Mid-run: h2 has planned and started staging the release (the staging directory exists), so
    // its connection is up and in use when it dies.
    const deadline = Date.now() + 60_000;
    while (!(await onHost(info, 'h2', 'test -d /var/lib/hoist/artifacts && echo staged').catch(() => ({ out: '' }))).out.includes('staged')) {
      assert.ok(Date.now() < deadline, 'h2 never started staging the release');
      await new Promise((r) => setTimeout(r, 100));
    }
    await fleet.stopHost('h2', { abrupt: true });
    let r: Awaited<typeof child>;
    try {
      r = await child;
    } finally {
      await fleet.startHost('h2');
    }
    assert.equal(r.code, 4, JSON.stringify(r.report, null, 1));
    assert.deepEqual(
      r.report.hosts.map((h) => h.status),
      ['changed', 'unreachable', 'changed'],
    );
    // Lost mid-command, not a handshake that timed out.
    assert.match(r.report.hosts[1].error!, /connection lost (during|before)/);
    const next = await hoistJson(['apply', PB('containerd'), '-i', info.inventoryPath, '--cache-dir', cacheDir, ...versionArgs(line)]);
    assert.equal(next.code, 0, JSON.stringify(next.report.hosts[1]));
    assert.equal(next.report.hosts[1].tasks.find((x) => x.task === 'containerd_verify')!.status, 'ok');
  });

  test('two runs at once: the second is refused with the holder named, or waits with --lock-wait', async () => {
    const line = rel('1.7') ? '1.7' : info.releases[0].line;
    const args = ['apply', PB('containerd'), '-i', info.inventoryPath, '--cache-dir', cacheDir, ...versionArgs(line), '--limit', 'h1', '-e', 'oom_score=-10'];
    // The first run holds the host for a few seconds after its change (an after_host hook), long
    // enough for the second to connect, read the host, plan and ask for the lock.
    const holding = path.join(await mkdtemp(path.join(os.tmpdir(), 'hoist-hold-')), 'holding.toml');
    await writeFile(holding, `name = "containerd"\nextends = ${JSON.stringify(PB('containerd'))}\n\n[[after_host]]\nrun = "sleep 6"\n`);
    const slow = hoistJson(['apply', holding, ...args.slice(2)]);
    for (let i = 0; i < 100 && (await onHost(info, 'h1', 'test -s /var/lib/hoist/lock.holder && echo held')).out.trim() !== 'held'; i++)
      await new Promise((r) => setTimeout(r, 100));
    // A run takes the lock only once it has something to change: this one always has (another value).
    const other = [...args.slice(0, -2), '-e', 'oom_score=-11'];
    const refused = await hoistJson(other);
    assert.equal(refused.code, 5, 'lock contention has its own exit code');
    assert.match(refused.report.hosts[0].error!, /h1 is locked by another hoist run \(.+ pid \d+, started .+, playbook containerd\)/);
    const waited = await hoistJson([...other, '--lock-wait', '60']);
    assert.equal(waited.code, 0);
    assert.equal((await slow).code, 0);
    // A killed run's lock dies with its SSH session: the next run goes ahead at once.
    const child = spawn(process.execPath, [HOIST, ...args.slice(0, -2), '-e', 'oom_score=-20'], {
      cwd: ROOT,
      env: { ...process.env, CI: '1' },
      stdio: 'ignore',
    });
    for (let i = 0; i < 100 && (await onHost(info, 'h1', 'test -s /var/lib/hoist/lock.holder && echo held')).out.trim() !== 'held'; i++)
      await new Promise((r) => setTimeout(r, 100));
    child.kill('SIGKILL');
    await new Promise((r) => child.on('close', r));
    const after = await hoistJson([...args.slice(0, -2), '-e', 'oom_score=-20']);
    assert.equal(after.code, 0, JSON.stringify(after.report.hosts[0]));
    // A holder record without a live lock (its session was killed on the host side) is reported and taken over.
    await onHost(info, 'h1', `printf 'ci@elsewhere pid 4242, started 2026-01-01T00:00:00Z, playbook containerd\n' > /var/lib/hoist/lock.holder`);
    const stale = await hoistJson([...args.slice(0, -2), '-e', 'oom_score=-21']);
    assert.equal(stale.code, 0);
    assert.match(stale.report.hosts[0].notes?.join(' ') ?? '', /took over a stale host lock left by a killed run \(ci@elsewhere pid 4242/);
    assert.equal((await onHost(info, 'h1', 'test -e /var/lib/hoist/lock.holder && echo left || echo clean')).out.trim(), 'clean');
  });

  test('a host without tar or without disk space fails alone with a clear message, and nothing is half-installed', async () => {
    const line = rel('1.7') ? '1.7' : info.releases[0].line;
    await Promise.all(info.hosts.map((h) => fleet.resetHost(h.name)));
    // The hosts' disks are the controller's; a small tmpfs stands in for a full one.
    await onHost(info, 'h1', 'mv /usr/bin/tar /usr/bin/tar.away');
    await onHost(info, 'h3', 'mkdir -p /var/lib/hoist && mount -t tmpfs -o size=24m tmpfs /var/lib/hoist');
    try {
      const r = await run('containerd', line);
      assert.equal(r.code, 2);
      const [h1, h2, h3] = r.report.hosts;
      assert.match(h1.error!, /tar is not installed/);
      assert.equal(h2.status, 'changed');
      assert.match(h3.error!, /not enough disk space on \/var\/lib\/hoist: \d+ MB free, about \d+ MB needed/);
      for (const h of ['h1', 'h3']) assert.equal((await onHost(info, h, 'ls /usr/local/bin | wc -l')).out.trim(), '0', `${h}: nothing half-installed`);
    } finally {
      await onHost(info, 'h1', 'mv /usr/bin/tar.away /usr/bin/tar');
      await onHost(info, 'h3', 'umount /var/lib/hoist');
    }
  });
});
