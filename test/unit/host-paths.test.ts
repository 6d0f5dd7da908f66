import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { homeConflict, resolvedPathProblem } from '../../src/util/path-guard.js';
import { hostPathsScript, parseHostPaths, parseRecords, pinCheckScript, type HostPaths, type ResolvedPath } from '../../src/facts/paths.js';
import { checkHostPaths } from '../../src/runner/path-check.js';
import { pinned } from '../../src/runner/host-apply.js';
import { uploadScript, type UploadOptions } from '../../src/ssh/upload.js';
import { FakeHost } from '../support/fake-host.js';
import type { ExecOptions } from '../../src/ssh/connection.js';
import { loadPlaybook } from '../../src/playbook/playbook.js';
import { resolvePlay } from '../../src/runner/play.js';
import { buildInventory } from '../../src/inventory/inventory.js';
import { parseToml } from '../../src/util/toml-file.js';
import { extraVarLayers } from '../../src/cli/extra-vars.js';
import { taskCatalog } from '../../src/cli/catalog.js';
import type { HostPathSpec } from '../../src/tasks/types.js';
import { containerdSettings } from '../../src/modules/containerd/settings.js';
import { containerdHostPaths } from '../../src/modules/containerd/data-dirs.js';

const res = (p: string, resolved: string, symlinks: { link: string; target: string }[] = []) => ({ path: p, resolved, symlinks });

test('the guard applies to what a path resolves to and to every symlink on the way', () => {
  assert.equal(
    resolvedPathProblem(res('/srv/evil', '/etc', [{ link: '/srv/evil', target: '/etc' }])),
    'resolves to /etc: "/etc" is a system directory; hoist writes into this path and a reset deletes from it',
  );
  assert.match(
    resolvedPathProblem(res('/srv/evil/x', '/etc/x', [{ link: '/srv/evil', target: '/etc' }])) ?? '',
    /through the symlink \/srv\/evil -> \/etc: "\/etc" is a system directory/,
  );
  assert.match(
    resolvedPathProblem(res('/data/c', '/var/lib/hoist/c', [{ link: '/data', target: '/var/lib/hoist' }]), [
      { dir: '/var/lib/hoist', what: "hoist's own state directory" },
    ]) ?? '',
    /hoist's own state directory/,
  );
  // A distribution's own links between system directories, and links to a directory of one's own, pass.
  assert.equal(resolvedPathProblem(res('/var/run/containerd', '/run/containerd', [{ link: '/var/run', target: '/run' }])), undefined);
  assert.equal(resolvedPathProblem(res('/var/lib/containerd', '/data/containerd', [{ link: '/var/lib/containerd', target: '/data/containerd' }])), undefined);
  assert.equal(resolvedPathProblem(res('/var/lib/containerd', '/var/lib/containerd')), undefined);
});

test("a path is, lies in or contains a user's home, as spelled or as resolved", () => {
  const homes = [
    { user: 'deploy', home: '/home/deploy', resolved: '/home/deploy' },
    { user: 'ci', home: '/home/ci', resolved: '/data/ci' },
  ];
  assert.deepEqual(homeConflict('/home/deploy', homes), { user: 'deploy', home: '/home/deploy', how: 'is' });
  assert.deepEqual(homeConflict('/home/deploy/containerd', homes), { user: 'deploy', home: '/home/deploy', how: 'in' });
  assert.deepEqual(homeConflict('/data', homes), { user: 'ci', home: '/data/ci', how: 'contains' });
  assert.equal(homeConflict('/home/deployer', homes), undefined);
  assert.equal(homeConflict('/var/lib/containerd', homes), undefined);
});

/** Runs the probe locally (bash, realpath and getent are the host's tools) on a scratch tree. */
async function probe(paths: string[], listed: string[], own: string[] = []): Promise<HostPaths> {
  const out = execFileSync('bash', ['-c', hostPathsScript(paths, listed, own)], { encoding: 'utf8' });
  return parseHostPaths(out, paths);
}

test('the probe resolves paths, finds the symlinks on the way, lists data dirs and reads the users', async () => {
  const d = await mkdtemp(path.join(os.tmpdir(), 'hoist-hp-'));
  try {
    await mkdir(path.join(d, 'real/data'), { recursive: true });
    await writeFile(path.join(d, 'real/data/notes.txt'), 'x');
    await writeFile(path.join(d, 'real/data/@end'), 'x');
    await mkdir(path.join(d, 'real/data/io.containerd.content.v1.content'));
    await mkdir(path.join(d, 'real/data/lost+found'));
    await symlink(path.join(d, 'real'), path.join(d, 'link'));
    const found = await probe([`${d}/link/data`, `${d}/missing/x`, `${d}/real/data/notes.txt`], [`${d}/link/data`], ['io.containerd.*']);
    const data = found.paths.get(`${d}/link/data`)!;
    assert.equal(data.resolved, `${d}/real/data`);
    assert.deepEqual(data.symlinks, [{ link: `${d}/link`, target: `${d}/real` }]);
    assert.equal(data.dir, true);
    assert.equal(data.entryCount, 4);
    assert.equal(data.foreignCount, 2);
    assert.deepEqual([...data.foreign!].sort(), ['@end', 'notes.txt']);
    const missing = found.paths.get(`${d}/missing/x`)!;
    assert.deepEqual([missing.exists, missing.resolved, missing.symlinks], [false, `${d}/missing/x`, []]);
    const file = found.paths.get(`${d}/real/data/notes.txt`)!;
    assert.deepEqual([file.exists, file.dir], [true, false]);
    assert.ok(
      found.homes.some((h) => h.user === 'root' && h.home.startsWith('/')),
      JSON.stringify(found.homes),
    );
    assert.ok(!found.homes.some((h) => h.home === '/'), 'a home of "/" is left out');
  } finally {
    await rm(d, { recursive: true, force: true });
  }
});

test('probe output that is cut short is an error, not paths that seem absent', () => {
  assert.throws(() => parseHostPaths('@links\0@users\0', ['/x']), /could not be read/);
  assert.throws(() => parseHostPaths('@links\0@users\0@homes\0@real\0@end\0', ['/x']), /realpath gave 0 answers for 1/);
  assert.deepEqual(parseRecords(['created\t2026-01-01T00:00:00Z\t/var/lib/containerd', 'junk', 'adopted\tt\t/srv/a\tb']), [
    { how: 'created', time: '2026-01-01T00:00:00Z', path: '/var/lib/containerd' },
    { how: 'adopted', time: 't', path: '/srv/a\tb' },
  ]);
});

test('the pin check passes while paths resolve as planned and exits 97 naming the variable once one changed', async () => {
  const d = await mkdtemp(path.join(os.tmpdir(), 'hoist-pin-'));
  try {
    await mkdir(path.join(d, 'a'));
    const pins = [{ variable: 'root_dir', path: `${d}/p`, resolved: `${d}/p` }];
    const run = () => spawnSync('bash', ['-c', `${pinCheckScript(pins)}\necho wrote`], { encoding: 'utf8' });
    assert.deepEqual([run().status, run().stdout], [0, 'wrote\n']);
    await symlink(path.join(d, 'a'), path.join(d, 'p'));
    const r = run();
    assert.equal(r.status, 97);
    assert.equal(r.stdout, '');
    assert.equal(
      r.stderr,
      `root_dir = ${d}/p resolved to ${d}/p when the host was planned and now resolves to ${d}/a: a symlink on the way changed since; nothing was written. Check the path on the host, then run again.\n`,
    );
    assert.equal(pinCheckScript([]), '');
  } finally {
    await rm(d, { recursive: true, force: true });
  }
});

const spec: HostPathSpec = {
  paths: [
    { variable: 'root_dir', path: '/srv/data', data: true },
    { variable: 'config_path', path: '/srv/conf' },
  ],
  allowData: [],
  allowVariable: 'allow_data_dir',
  protected: [],
  dataEntries: ['io.containerd.*'],
};
const at = (p: Partial<ResolvedPath> & { path: string }): ResolvedPath => ({ resolved: p.path, exists: false, dir: false, symlinks: [], ...p });
const found = (paths: ResolvedPath[], extra: Partial<HostPaths> = {}): HostPaths => ({
  paths: new Map(paths.map((p) => [p.path, p])),
  homes: [],
  records: [],
  ...extra,
});

test('refusals name the host, variable, value, its layer, what it resolves to and the fix; allow_data_dir passes a named dir', () => {
  const origin = (v: string) => (v === 'root_dir' ? 'inventory host "h1", inv.toml:7' : undefined);
  const foreign = at({ path: '/srv/data', exists: true, dir: true, entryCount: 2, foreignCount: 1, foreign: ['notes.txt'] });
  const r = checkHostPaths(spec, found([foreign, at({ path: '/srv/conf' })]), 'h1', origin);
  assert.deepEqual(r.problems, [
    'h1: root_dir = "/srv/data" (set in inventory host "h1", inv.toml:7) resolves to /srv/data, which is an existing directory hoist did not create, holding 1 entry its data never has ("notes.txt"): a reset with remove_data would take them; nothing was changed on h1. Fix: choose a new or empty directory, or, if it is meant to hold this data, name it: allow_data_dir = "/srv/data"',
  ]);
  // Recorded as hoist's, or named by the operator: accepted.
  assert.deepEqual(
    checkHostPaths(spec, found([foreign, at({ path: '/srv/conf' })], { records: [{ how: 'created', time: 't', path: '/srv/data' }] }), 'h1', origin).problems,
    [],
  );
  assert.deepEqual(checkHostPaths({ ...spec, allowData: ['/srv/data'] }, found([foreign, at({ path: '/srv/conf' })]), 'h1', origin).problems, []);
  // Only containerd's own entries: accepted, and handed to the tasks.
  const own = checkHostPaths(
    spec,
    found([at({ path: '/srv/data', exists: true, dir: true, entryCount: 3, foreignCount: 0, foreign: [] }), at({ path: '/srv/conf' })]),
    'h1',
    origin,
  );
  assert.deepEqual(
    [own.problems, own.checked.map((c) => [c.variable, c.data])],
    [
      [],
      [
        ['root_dir', true],
        ['config_path', false],
      ],
    ],
  );
  // A home is refused even for an empty or new directory; a config path is not held to the home rule.
  const homes = [{ user: 'deploy', home: '/srv', resolved: '/srv' }];
  const home = checkHostPaths(spec, found([at({ path: '/srv/data' }), at({ path: '/srv/conf' })], { homes }), 'h1', origin);
  assert.equal(home.problems.length, 1);
  assert.match(
    home.problems[0],
    /^h1: root_dir = "\/srv\/data" .*lies in the home of user deploy \(\/srv\): a reset with remove_data would delete a user's files/,
  );
  // allow_data_dir does not pass a symlink into a system directory.
  const evil = at({ path: '/srv/data', resolved: '/etc', exists: true, dir: true, symlinks: [{ link: '/srv/data', target: '/etc' }] });
  const sys = checkHostPaths({ ...spec, allowData: ['/srv/data'] }, found([evil, at({ path: '/srv/conf' })]), 'h1', origin);
  assert.match(
    sys.problems[0],
    /^h1: root_dir = "\/srv\/data" \(set in .*\) resolves to \/etc: "\/etc" is a system directory.*nothing was changed on h1\. Fix: .*replace the symlink$/,
  );
});

test('allow_data_dir names root_dir or state_dir as set; the module marks exactly those two as data', () => {
  const issues: string[] = [];
  const st = containerdSettings({ containerd_version: '1.7.24', root_dir: '/home/ci/containerd', allow_data_dir: ['/home/ci/containerd/'] } as never, (i) =>
    issues.push(`${i.path.join('.')}: ${i.message}`),
  );
  assert.deepEqual(issues, []);
  assert.deepEqual(st?.allowDataDirs, ['/home/ci/containerd']);
  const spec = containerdHostPaths(st!);
  assert.deepEqual(
    spec.paths.filter((p) => p.data).map((p) => p.variable),
    ['root_dir', 'state_dir'],
  );
  assert.deepEqual(
    spec.paths.map((p) => p.variable),
    ['root_dir', 'state_dir', 'config_path', 'imports_dir', 'cni_bin_dir', 'cni_conf_dir'],
  );
  const wrong: string[] = [];
  containerdSettings({ containerd_version: '1.7.24', allow_data_dir: '/home/ci' } as never, (i) => wrong.push(`${i.path.join('.')}: ${i.message}`));
  assert.deepEqual(wrong, [
    'allow_data_dir: "/home/ci" is neither root_dir (/var/lib/containerd) nor state_dir (/run/containerd); it names the data directory to allow, as set there',
  ]);
});

test('every command and upload of an action carries the pin check first; the connection is otherwise the same', async () => {
  const host = new FakeHost();
  const conn = pinned(host, 'PIN-CHECK');
  const seen: (string | undefined)[] = [];
  const record = async (script: string, o?: ExecOptions) => (seen.push(`${o?.precheck} / ${script}`), { stdout: '', stderr: '', code: 0 });
  Object.assign(host, { exec: record, check: (script: string, _what: string, o?: ExecOptions) => record(script, o) });
  await conn.exec('echo a');
  await conn.check('echo b', 'b');
  assert.deepEqual(seen, ['PIN-CHECK / echo a', 'PIN-CHECK / echo b']);
  let opts: UploadOptions | undefined;
  Object.assign(host, { upload: async (_d: Buffer, _p: string, o: UploadOptions) => void (opts = o) });
  await conn.upload(Buffer.from('x'), '/etc/x', { mode: 0o644 });
  assert.equal(opts?.precheck, 'PIN-CHECK');
  assert.equal(conn.endpoint.name, 'h1');
  assert.equal(pinned(host, ''), host);
  // The upload script runs it before anything else, the temporary file included.
  assert.match(uploadScript('/etc/x', 1, { mode: 0o644, precheck: 'PIN-CHECK' }, { privileged: true }), /^PIN-CHECK\nset -e\nmkdir -p/);
});

test('a symlink target with control characters reaches the refusal escaped', () => {
  const evil = at({ path: '/srv/data', resolved: '/etc/\x1b[2Jx', exists: false, symlinks: [{ link: '/srv/data', target: '/etc' }] });
  const r = checkHostPaths(spec, found([evil, at({ path: '/srv/conf' })]), 'h1', () => undefined);
  assert.equal(r.problems.length, 1);
  assert.ok(!r.problems[0].includes('\x1b'), r.problems[0]);
  assert.match(r.problems[0], /resolves to \/etc\/\\x1b\[2Jx through the symlink \/srv\/data -> \/etc/);
});

test('a host play names the layer, file and line each variable came from, for a refusal on the host', async () => {
  const d = await mkdtemp(path.join(os.tmpdir(), 'hoist-origin-'));
  try {
    const pbFile = path.join(d, 'play.toml');
    await writeFile(pbFile, '[defaults]\ncontainerd_version = "1.7.24"\n[[tasks]]\ntask = "containerd_config"\n');
    const inv = '[hosts.a]\naddress = "10.0.0.1"\n[hosts.a.vars]\n\nroot_dir = "/srv/evil"\n';
    const catalog = taskCatalog();
    const [play] = await resolvePlay(
      buildInventory(parseToml(path.join(d, 'inv.toml'), inv)),
      await loadPlaybook(pbFile, catalog),
      await extraVarLayers(['state_dir=/srv/state']),
      { catalog },
    );
    assert.match(play.origin!('root_dir')!, /^inventory host "a", .*inv\.toml:5$/);
    assert.equal(play.origin!('state_dir'), '-e state_dir=…');
    assert.match(play.origin!('containerd_version')!, /^playbook defaults \(play\.toml\), .*play\.toml:2$/);
    assert.equal(play.tasks[0].module?.name, 'containerd');
  } finally {
    await rm(d, { recursive: true, force: true });
  }
});
