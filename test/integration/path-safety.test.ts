import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as fleet from '../fleet/fleet.js';
import { hoist, hoistJson, onHost, ROOT } from '../support/hoist.js';

/*
 * Path variables as the host has them, through the bastion with sudo (deploy): a symlink into /etc,
 * a symlink swapped in between planning and applying, a data directory in a user's home, and a
 * reset of a data directory hoist did not create. One bootstrap (h1); the refusals run on h2.
 */

const PB = (n: string) => path.join(ROOT, 'playbooks', `${n}.toml`);
let info: fleet.FleetInfo;
let dir: string;

before(async () => {
  info = await fleet.info();
  await Promise.all(['h1', 'h2'].map((h) => fleet.resetHost(h)));
  dir = await mkdtemp(path.join(os.tmpdir(), 'hoist-paths-'));
});

after(() => rm(dir, { recursive: true, force: true }));

const apply = (pb: string, host: string, ...extra: string[]) =>
  hoistJson(['apply', pb, '-i', info.inventoryPath, '--cache-dir', path.join(dir, 'cache'), '-l', host, '-e', 'download="controller"', ...extra]);

/** What a change to /etc would show: its mode and owner, and the names in it. */
const etcState = async (host: string) => (await onHost(info, host, 'stat -c "%a %U:%G" /etc; ls -A /etc | sha256sum')).out;

/** Whether hoist left anything of containerd on the host. */
const untouched = async (host: string) =>
  (
    await onHost(
      info,
      host,
      'ls -d /usr/local/bin/containerd /var/lib/hoist/containerd /var/lib/hoist/artifacts/* /etc/containerd /etc/io.containerd* 2>/dev/null; true',
    )
  ).out;

test('a path variable that is a symlink into /etc on the host is refused before anything changes', async () => {
  await onHost(info, 'h2', 'ln -sfn /etc /srv/evil');
  const before = await etcState('h2');
  for (const [value, through] of [
    ['/srv/evil', /resolves to \/etc: "\/etc" is a system directory/],
    ['/srv/evil/data', /resolves to \/etc\/data through the symlink \/srv\/evil -> \/etc: "\/etc" is a system directory/],
  ] as const) {
    const r = await apply(PB('containerd'), 'h2', '-e', `root_dir="${value}"`);
    assert.equal(r.code, 2, `${value}: ${r.stderr}\n${JSON.stringify(r.report)}`);
    const h = r.report.hosts[0];
    assert.equal(h.status, 'failed');
    assert.match(h.error!, new RegExp(`^h2: root_dir = "${value.replace(/\//g, '\\/')}" \\(set in -e`));
    assert.match(h.error!, through);
    assert.match(h.error!, /nothing was changed on h2\. Fix: /);
  }
  // The other path variables go through the same check.
  const cni = await apply(PB('containerd'), 'h2', '-e', 'cni_conf_dir="/srv/evil"');
  assert.equal(cni.code, 2);
  assert.match(cni.report.hosts[0].error!, /cni_conf_dir = "\/srv\/evil" .*resolves to \/etc/);
  assert.equal(await etcState('h2'), before, '/etc keeps its mode, owner and entries');
  assert.equal(await untouched('h2'), '');
});

test('a symlink swapped in between planning and applying is refused by the command that would have followed it', async () => {
  await onHost(info, 'h2', 'rm -rf /srv/swap && mkdir /srv/swap');
  const before = await etcState('h2');
  // The hook runs after the plan, before the first change: as a person or another tool might, it
  // puts a symlink to /etc where the plan found an empty directory.
  const pb = path.join(dir, 'swap.toml');
  await writeFile(
    pb,
    `extends = ${JSON.stringify(path.relative(dir, PB('containerd')))}\n[[before_host]]\non = "host"\nrun = "rmdir /srv/swap && ln -s /etc /srv/swap"\n`,
  );
  const r = await apply(pb, 'h2', '-e', 'root_dir="/srv/swap"');
  assert.equal(r.code, 2, `${r.stderr}\n${JSON.stringify(r.report)}`);
  const h = r.report.hosts[0];
  assert.equal(h.status, 'failed');
  assert.match(
    h.error!,
    /root_dir = \/srv\/swap resolved to \/srv\/swap when the host was planned and now resolves to \/etc: a symlink on the way changed since; nothing was written/,
  );
  assert.equal((await onHost(info, 'h2', 'readlink /srv/swap')).out, '/etc\n', 'the hook did swap it');
  assert.equal(await etcState('h2'), before);
  assert.equal(await untouched('h2'), '');
  // The next run sees the symlink while planning.
  const again = await apply(PB('containerd'), 'h2', '-e', 'root_dir="/srv/swap"', '--check');
  assert.equal(again.code, 2);
  assert.match(again.report.hosts[0].error!, /resolves to \/etc: "\/etc" is a system directory/);
});

test("a data directory in a user's home is refused, for an apply and for a reset's --check --diff", async () => {
  const r = await apply(PB('containerd'), 'h2', '-e', 'root_dir="/home/deploy/containerd"');
  assert.equal(r.code, 2);
  assert.match(
    r.report.hosts[0].error!,
    /root_dir = "\/home\/deploy\/containerd" \(set in -e.*\) resolves to \/home\/deploy\/containerd, which lies in the home of user deploy \(\/home\/deploy\).*Fix: .*allow_data_dir = "\/home\/deploy\/containerd"/,
  );
  const reset = await hoist([
    'apply',
    PB('reset'),
    '-i',
    info.inventoryPath,
    '-l',
    'h2',
    '--check',
    '--diff',
    '-e',
    'root_dir="/home/deploy"',
    '-e',
    'remove_data=true',
  ]);
  assert.equal(reset.code, 2, reset.stdout);
  assert.match(reset.stdout, /root_dir = "\/home\/deploy" .*is the home of user deploy/);
  assert.doesNotMatch(reset.stdout, /^-\/home\/deploy/m);
  assert.equal((await onHost(info, 'h2', 'test -d /home/deploy/.ssh && echo kept')).out, 'kept\n');
  assert.equal(await untouched('h2'), '');
});

test('reset with remove_data keeps a data directory hoist did not create, with the files it held', async () => {
  await onHost(info, 'h1', 'mkdir -p /srv/keep && echo mine > /srv/keep/notes.txt');
  const refused = await apply(PB('containerd'), 'h1', '-e', 'root_dir="/srv/keep"', '--check');
  assert.equal(refused.code, 2);
  assert.match(
    refused.report.hosts[0].error!,
    /resolves to \/srv\/keep, which is an existing directory hoist did not create, holding 1 entry its data never has \("notes.txt"\).*allow_data_dir = "\/srv\/keep"/,
  );

  const vars = ['-e', 'root_dir="/srv/keep"', '-e', 'allow_data_dir="/srv/keep"'];
  const boot = await apply(PB('containerd'), 'h1', ...vars);
  assert.equal(boot.code, 0, `${boot.stderr}\n${JSON.stringify(boot.report)}`);
  assert.match((await onHost(info, 'h1', 'ls -A /srv/keep')).out, /io\.containerd\.metadata\.v1\.bolt/);
  assert.match((await onHost(info, 'h1', 'cat /var/lib/hoist/data-dirs')).out, /^adopted\t\S+\t\/srv\/keep\ncreated\t\S+\t\/run\/containerd\n$/);

  const args = ['apply', PB('reset'), '-i', info.inventoryPath, '-l', 'h1', '--yes', ...vars, '-e', 'remove_data=true'];
  const plan = await hoist([...args, '--check', '--diff']);
  assert.equal(plan.code, 0, plan.stderr);
  assert.match(plan.stdout, /^-\/srv\/keep\/\* \(the software's data; the directory existed before hoist and stays\)$/m);
  assert.match(plan.stdout, /^-\/run\/containerd\/ \(directory\)$/m);
  assert.doesNotMatch(plan.stdout, /^-\/srv\/keep\/ /m);
  // Every file the diff lists for removal exists.
  const listed = [...plan.stdout.matchAll(/^-(\/[^ \n]+)$/gm)].map((m) => m[1]);
  assert.ok(listed.length > 10, plan.stdout);
  assert.equal((await onHost(info, 'h1', `for f in ${listed.map((f) => `'${f}'`).join(' ')}; do [ -e "$f" ] || echo "missing $f"; done`)).out, '');

  const reset = await hoistJson(args);
  assert.equal(reset.code, 0, JSON.stringify(reset.report));
  assert.equal(
    (await onHost(info, 'h1', 'ls -A /srv/keep; cat /srv/keep/notes.txt; test -e /run/containerd || echo state-gone')).out,
    'notes.txt\nmine\nstate-gone\n',
  );
});
