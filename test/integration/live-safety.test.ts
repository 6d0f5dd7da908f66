import { test, after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as fleet from '../fleet/fleet.js';
import { hoist, hoistJson, onHost, changedCount, ROOT, HOIST } from '../support/hoist.js';

/*
 * A live node as an operator has it: containerd running a container, drain/uncordon hooks (here they
 * write to a file on the controller), and hoist ended in every way it can end mid-roll-out. One
 * bootstrap of the fleet's 1.x release; each test leaves the hosts converged for the next.
 */

const PB = (n: string) => path.join(ROOT, 'playbooks', `${n}.toml`);
let info: fleet.FleetInfo;
let dir: string;
let state: string;
let cacheDir: string;
let hooksLog: string;
let drainPb: string;
let version: string[];

const env = () => ({ XDG_STATE_HOME: state });
const base = (...extra: string[]) => ['-i', info.inventoryPath, '--cache-dir', cacheDir, ...version, '-e', 'verify_settle_seconds=3', ...extra];
const hookLines = async () => (existsSync(hooksLog) ? (await readFile(hooksLog, 'utf8')).trim().split('\n').filter(Boolean) : []);
const controllerRecords = async () => readdir(path.join(state, 'hoist', 'drained')).catch(() => [] as string[]);
const hostRecord = async (h: string) => (await onHost(info, h, 'cat /var/lib/hoist/drained.json 2>/dev/null || echo none')).out.trim();

before(async () => {
  info = await fleet.info();
  const r = info.releases.find((x) => x.line === '1.7');
  assert.ok(r, 'the fleet mirror has a 1.7 release');
  version = ['-e', `containerd_version="${r.containerd}"`];
  dir = await mkdtemp(path.join(os.tmpdir(), 'hoist-live-'));
  state = path.join(dir, 'state');
  cacheDir = path.join(dir, 'cache');
  hooksLog = path.join(dir, 'hooks.log');
  drainPb = path.join(dir, 'drain.toml');
  // The drain holds while `hold` exists, so a test can end hoist while it runs; the uncordon fails while `fail-after` exists.
  await writeFile(
    drainPb,
    `extends = ${JSON.stringify(PB('upgrade'))}\n\n` +
      `[[before_host]]\nrun = ${JSON.stringify(`echo "drain $HOIST_HOST" >> ${hooksLog}; touch ${dir}/drain-$HOIST_HOST; while [ -e ${dir}/hold ]; do sleep 0.05; done`)}\n\n` +
      `[[after_host]]\nrun = ${JSON.stringify(`if [ -e ${dir}/fail-after ]; then echo "uncordon refused" >&2; exit 1; fi; echo "uncordon $HOIST_HOST" >> ${hooksLog}`)}\n`,
  );
  await Promise.all(info.hosts.map((h) => fleet.resetHost(h.name)));
  // h3 keeps the 1.x bundle's CNI network, as a single node would; h1 and h2 bootstrap by default.
  const boots = await Promise.all([
    hoistJson(['apply', PB('containerd'), ...base('-l', 'h1,h2')], env()),
    hoistJson(['apply', PB('containerd'), ...base('-l', 'h3', '-e', 'keep_bundle_cni_conflist=true')], env()),
  ]);
  for (const boot of boots) assert.equal(boot.code, 0, `${boot.stderr}\n${JSON.stringify(boot.report, null, 1)}`);
});

after(() => rm(dir, { recursive: true, force: true }));

/** A container of the fleet's image on h1, as a pod's would be: it must outlive everything below. */
async function startContainer(host: string): Promise<string> {
  const addr = info.hosts.find((h) => h.name === host)!.address;
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
  const r = await onHost(
    info,
    host,
    `ctr image import /tmp/busybox.tar >/dev/null && ctr run -d ${info.ociImageName} livesafety /bin/busybox sleep 100000 >/dev/null && sleep 0.5 && ctr task ls | awk '$1=="livesafety"{print $2}'`,
  );
  assert.match(r.out.trim(), /^\d+$/, r.out);
  return r.out.trim();
}

/**
 * Starts hoist and sends it `signal` once `ready` says so (the drain hook's marker, a line of the
 * run's log): no fixed sleeps. Returns the exit code and stderr.
 */
async function signalWhen(
  args: string[],
  signal: NodeJS.Signals,
  ready: (logText: string) => boolean,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  const child = spawn(process.execPath, [HOIST, ...args], {
    cwd: ROOT,
    env: { ...process.env, CI: '1', NO_COLOR: '1', ...env() },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  let ended = false;
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.on('close', (code, sig) => ((ended = true), r({ code, signal: sig }))),
  );
  const logs = path.join(state, 'hoist', 'logs');
  for (;;) {
    assert.ok(!ended, `hoist ended before the moment to send ${signal}:\n${stderr}`);
    const name = (await readdir(logs).catch(() => [] as string[])).find((f) => f.endsWith(`-${child.pid}.log`));
    if (ready(name ? await readFile(path.join(logs, name), 'utf8') : '')) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  child.kill(signal);
  return { ...(await closed), stderr };
}

describe('live safety', () => {
  let pid: string;

  test('Ctrl-C during the drain: named STILL DRAINED, recorded on controller and host; the next run of another playbook uncordons first', async () => {
    pid = await startContainer('h1');
    await writeFile(path.join(dir, 'hold'), '');
    const r = await signalWhen(['apply', drainPb, ...base('-l', 'h1', '-e', 'oom_score=-1')], 'SIGINT', () => existsSync(path.join(dir, 'drain-h1')));
    await rm(path.join(dir, 'hold'));
    assert.notEqual(r.code, 0, `exit ${r.code}`);
    assert.match(r.stderr, /^STILL DRAINED: h1: .*the next run of any playbook on h1 runs them first/m, r.stderr);
    assert.deepEqual(await hookLines(), ['drain h1']);
    assert.equal((await controllerRecords()).length, 1);
    assert.match(await hostRecord('h1'), /"playbook": ".*drain\.toml"/);

    // containerd.toml has nothing to change on h1 (the interrupted run changed nothing): the owed uncordon runs all the same.
    const again = await hoistJson(['apply', PB('containerd'), ...base('-l', 'h1')], env());
    assert.equal(again.code, 0, `${again.stderr}\n${JSON.stringify(again.report.hosts[0])}`);
    assert.equal(changedCount(again.report), 0);
    assert.deepEqual(await hookLines(), ['drain h1', 'uncordon h1']);
    assert.ok(
      again.report.hosts[0].notes?.some((n) => n.startsWith('ran the after_host hooks of playbook drain')),
      again.report.hosts[0].notes?.join('\n'),
    );
    assert.deepEqual(await controllerRecords(), []);
    assert.equal(await hostRecord('h1'), 'none');
  });

  test('kill -9 during the restart: a check names the debt and runs nothing; the next apply uncordons first, then rolls on', async () => {
    await rm(hooksLog, { force: true });
    const r = await signalWhen(['apply', drainPb, ...base('-l', 'h1', '-e', 'oom_score=-1')], 'SIGKILL', (log) =>
      /\[h1\] restart containerd\.service/.test(log),
    );
    assert.equal(r.signal, 'SIGKILL');
    assert.deepEqual(await hookLines(), ['drain h1']);

    const check = await hoistJson(['check', PB('containerd'), ...base('-l', 'h1', '-e', 'oom_score=-1')], env());
    assert.equal(check.code, 2, JSON.stringify(check.report.hosts[0]));
    assert.match(
      (check.report.hosts[0] as { stillDrained?: string }).stillDrained ?? '',
      /owes the after_host hooks of playbook drain .* a check does not run them/,
    );
    assert.deepEqual(await hookLines(), ['drain h1'], 'a check runs no hook');

    const again = await hoistJson(['apply', drainPb, ...base('-l', 'h1', '-e', 'oom_score=-1')], env());
    assert.equal(again.code, 0, `${again.stderr}\n${JSON.stringify(again.report.hosts[0])}`);
    const lines = await hookLines();
    assert.deepEqual(lines.slice(0, 2), ['drain h1', 'uncordon h1'], lines.join(', '));
    assert.equal(lines.at(-1), 'uncordon h1');
    assert.deepEqual(await controllerRecords(), []);
    assert.equal(await hostRecord('h1'), 'none');
  });

  test('a failing after_host: STILL DRAINED in the recap, exit 2; the next run retries it', async () => {
    await rm(hooksLog, { force: true });
    await writeFile(path.join(dir, 'fail-after'), '');
    const r = await hoist(['apply', drainPb, ...base('-l', 'h1', '-e', 'oom_score=0')], env());
    await rm(path.join(dir, 'fail-after'));
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stdout, /h1: STILL DRAINED: after_host hook ".*" failed; the next run of any playbook on h1 runs it first/, r.stdout);
    assert.deepEqual(await hookLines(), ['drain h1']);

    // A check lists the play's hooks with the file each comes from, and names the debt.
    const check = await hoistJson(['check', drainPb, ...base('-l', 'h1')], env());
    assert.equal(check.code, 2);
    const hooks = (check.report as unknown as { hooks: { kind: string; file: string; line: number }[] }).hooks;
    assert.deepEqual(
      hooks.map((h) => [h.kind, h.file, h.line]),
      [
        ['before_host', drainPb, 3],
        ['after_host', drainPb, 6],
      ],
    );

    const again = await hoistJson(['apply', PB('containerd'), ...base('-l', 'h1')], env());
    assert.equal(again.code, 0, `${again.stderr}\n${JSON.stringify(again.report.hosts[0])}`);
    assert.equal(changedCount(again.report), 0);
    assert.deepEqual(await hookLines(), ['drain h1', 'uncordon h1']);
    const alive = await onHost(info, 'h1', `kill -0 ${pid} && echo alive`);
    assert.equal(alive.out, 'alive\n', 'the container outlived every restart');
  });

  test('a config change restarts running containerd one host at a time, each up before the next restarts', async () => {
    const r = await hoistJson(['apply', PB('containerd'), ...base('-e', 'sandbox_image="registry.k8s.io/pause:3.9"')], env());
    assert.equal(r.code, 0, `${r.stderr}\n${JSON.stringify(r.report, null, 1)}`);
    const times = await Promise.all(
      info.hosts.map(async (h) => {
        const out = (await onHost(info, h.name, 'systemctl show containerd -p ExecMainStartTimestampMonotonic -p ActiveEnterTimestampMonotonic')).out;
        const get = (k: string) => Number(new RegExp(`^${k}=(\\d+)$`, 'm').exec(out)![1]);
        return { host: h.name, start: get('ExecMainStartTimestampMonotonic'), active: get('ActiveEnterTimestampMonotonic') };
      }),
    );
    times.sort((a, b) => a.start - b.start);
    for (let i = 1; i < times.length; i++) {
      assert.ok(times[i].start > times[i - 1].active, `${times[i].host} restarted before ${times[i - 1].host} was up again: ${JSON.stringify(times)}`);
    }
  });

  test('a registry password changed: once the new config verified, no copy of the old one is left', async () => {
    const reg = (pw: string) => ['-e', `registries={ "registry.example:5000" = { username = "ci", password = "${pw}" } }`];
    for (const pw of ['first-Secret-1', 'second-Secret-2']) {
      const r = await hoistJson(['apply', PB('containerd'), ...base('-l', 'h1', ...reg(pw))], env());
      assert.equal(r.code, 0, `${r.stderr}\n${JSON.stringify(r.report.hosts[0])}`);
      assert.ok(
        r.report.hosts[0].notes?.some((n) => n.startsWith('removed /etc/containerd/config.toml.hoist-prev')),
        r.report.hosts[0].notes?.join('\n'),
      );
    }
    assert.doesNotMatch((await onHost(info, 'h1', 'ls -A /etc/containerd')).out, /hoist-prev/);
    assert.equal((await onHost(info, 'h1', 'grep -rl first-Secret-1 /etc/containerd || true')).out, '', 'the old password is nowhere under /etc/containerd');
    // Back to no registries for the tests after: the copy of the file that held the password goes too.
    const back = await hoistJson(['apply', PB('containerd'), ...base('-l', 'h1')], env());
    assert.equal(back.code, 0);
    assert.equal((await onHost(info, 'h1', 'ls /etc/containerd | grep -c hoist-prev || true')).out.trim(), '0');
  });

  test("CNI: the 1.x bundle's conflist is not installed unless kept; an upgrade to 2.x removes the bundle's, never a user's; verify names the file containerd uses", async (t) => {
    const bundleCni = '/etc/cni/net.d/10-containerd-net.conflist';
    assert.equal((await onHost(info, 'h1', `ls /etc/cni/net.d`)).out, '', 'a default 1.x bootstrap leaves no network configuration');
    assert.equal((await onHost(info, 'h3', `test -f ${bundleCni} && echo kept`)).out, 'kept\n');

    await onHost(info, 'h1', `printf '{"cniVersion":"0.4.0","name":"cbr0","plugins":[{"type":"flannel"}]}' > /etc/cni/net.d/10-flannel.conflist`);
    const v1 = await hoistJson(['verify', '-i', info.inventoryPath, ...version, '-l', 'h1'], env());
    const verify1 = v1.report.hosts[0].tasks.find((x) => x.task === 'containerd_verify')!;
    assert.ok(verify1.notes.includes('CNI: containerd uses /etc/cni/net.d/10-flannel.conflist'), verify1.notes.join('\n'));

    const two = info.releases.find((x) => x.line === '2.1');
    if (!two) return t.skip('the mirror lacks a 2.1 release');
    // h2: an operator's own file under the bundle's name, beside the cluster's network.
    await onHost(
      info,
      'h2',
      `printf '{"cniVersion":"0.4.0","name":"mine","plugins":[{"type":"bridge"}]}' > ${bundleCni}; cp /dev/null /etc/cni/net.d/10-flannel.conflist`,
    );
    const v2 = await hoistJson(['verify', '-i', info.inventoryPath, ...version, '-l', 'h2'], env());
    const verify2 = v2.report.hosts[0].tasks.find((x) => x.task === 'containerd_verify')!;
    assert.ok(
      verify2.notes.some((n) =>
        n.startsWith(
          `WARNING: CNI: containerd uses ${bundleCni} (first of 2; not used: 10-flannel.conflist): the 1.x bundle's bridge network, which shadows 10-flannel.conflist`,
        ),
      ),
      verify2.notes.join('\n'),
    );

    const up = await hoistJson(
      [
        'apply',
        PB('upgrade'),
        '-i',
        info.inventoryPath,
        '--cache-dir',
        cacheDir,
        '-l',
        'h2,h3',
        '-e',
        `containerd_version="${two.containerd}"`,
        '-e',
        'crictl_version=false',
        '-e',
        `runc_version="${two.runc}"`,
        '-e',
        `cni_version="${two.cni}"`,
        '-e',
        'verify_settle_seconds=3',
      ],
      env(),
    );
    assert.equal(up.code, 0, `${up.stderr}\n${JSON.stringify(up.report, null, 1)}`);
    assert.equal(
      (await onHost(info, 'h3', `test -e ${bundleCni} && echo present || echo gone`)).out,
      'gone\n',
      "the bundle's file, as hoist recorded it, goes with the upgrade to 2.x",
    );
    assert.match((await onHost(info, 'h2', `cat ${bundleCni}`)).out, /"name":"mine"/, "an operator's file of that name stays");
  });
});
