import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { hostPathProblem, normaliseHostPath } from '../../src/util/path-guard.js';
import { checkRuntimeConfig } from '../../src/modules/containerd/config/validate.js';
import { RUNTIME_DEFAULTS } from '../../src/modules/containerd/config/types.js';
import { loadPlaybook } from '../../src/playbook/playbook.js';
import { resolvePlay } from '../../src/runner/play.js';
import { buildInventory } from '../../src/inventory/inventory.js';
import { parseToml } from '../../src/util/toml-file.js';
import { extraVarLayers } from '../../src/cli/extra-vars.js';
import { taskCatalog } from '../../src/cli/catalog.js';

test('system directories and their parents are refused, their subdirectories are not', () => {
  for (const p of [
    '/',
    '/etc',
    '/usr',
    '/var',
    '/run',
    '/home',
    '/boot',
    '/opt',
    '/bin',
    '/sbin',
    '/lib',
    '/lib64',
    '/libx32',
    '/usr/lib32',
    '/srv',
    '/root',
    '/tmp',
    '/proc',
    '/sys',
    '/dev',
    '/var/lib',
    '/usr/local',
    '/usr/local/bin',
    '/etc/systemd/system',
  ]) {
    assert.match(hostPathProblem(p) ?? '', /is a system directory/, p);
  }
  assert.match(hostPathProblem('/etc/systemd') ?? '', /is a system directory/);
  for (const p of [
    '/var/lib/containerd',
    '/run/containerd',
    '/opt/cni/bin',
    '/etc/cni/net.d',
    '/etc/containerd/certs.d',
    '/data/containerd',
    '/home/ci/containerd',
    '/var/lib/library',
  ]) {
    assert.equal(hostPathProblem(p), undefined, p);
  }
});

test('a path must be absolute and normalised; the hint shows the normal form', () => {
  assert.match(hostPathProblem('var/lib/containerd') ?? '', /must be an absolute path/);
  assert.equal(hostPathProblem('/var/lib/containerd/'), '"/var/lib/containerd/" is not a normalised path (write "/var/lib/containerd")');
  assert.match(hostPathProblem('/var/lib/containerd/../..') ?? '', /not a normalised path \(write "\/var"\)/);
  assert.match(hostPathProblem('//etc') ?? '', /not a normalised path/);
  assert.equal(normaliseHostPath('/etc//containerd/'), '/etc/containerd');
  assert.equal(normaliseHostPath('//'), '/');
});

test('a directory a module keeps for something else is refused, as is one that contains it', () => {
  const own = [{ dir: '/etc/containerd', what: "containerd's configuration directory" }];
  assert.equal(hostPathProblem('/etc/containerd', own), `"/etc/containerd" is containerd's configuration directory`);
  assert.equal(hostPathProblem('/etc/containerd/conf.d', own), undefined);
  assert.equal(hostPathProblem('/etc', own), '"/etc" is a system directory; hoist writes into this path and a reset deletes from it');
});

test("containerd path variables: system directories, hoist's state, /etc/containerd and data dirs holding config are refused by key", () => {
  const issues = (vars: Record<string, unknown>) =>
    checkRuntimeConfig({ containerd_version: '1.7.24', ...vars }).issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  assert.deepEqual(issues({ state_dir: '/etc' }), [
    `state_dir: "/etc" is a system directory; hoist writes into this path and a reset deletes from it; choose a directory of containerd's own (default ${RUNTIME_DEFAULTS.state_dir})`,
  ]);
  assert.deepEqual(issues({ root_dir: '/' }), [
    `root_dir: "/" is a system directory; hoist writes into this path and a reset deletes from it; choose a directory of containerd's own (default ${RUNTIME_DEFAULTS.root_dir})`,
  ]);
  // Normalised first: a trailing or doubled slash does not get /etc through.
  assert.match(issues({ root_dir: '/etc/' })[0], /^root_dir: "\/etc" is a system directory/);
  assert.match(issues({ cni_bin_dir: '//usr//local' })[0], /^cni_bin_dir: "\/usr\/local" is a system directory/);
  assert.match(issues({ root_dir: '/var/lib/hoist' })[0], /^root_dir: "\/var\/lib\/hoist" is hoist's own state directory/);
  assert.match(issues({ imports_dir: '/etc/containerd' })[0], /^imports_dir: "\/etc\/containerd" is containerd's configuration directory/);
  assert.match(issues({ config_path: '/etc' })[0], /^config_path: "\/etc" is a system directory/);
  assert.match(issues({ cni_conf_dir: '/opt' })[0], /^cni_conf_dir: "\/opt" is a system directory/);
  assert.deepEqual(issues({ root_dir: '/srv/k8s', config_path: '/srv/k8s/certs.d' }), [
    'root_dir: "/srv/k8s" contains config_path (/srv/k8s/certs.d); a reset with remove_data empties root_dir, and would take config_path with it',
  ]);
  assert.deepEqual(issues({ root_dir: '/data/containerd/', state_dir: '/run/k8s/containerd', config_path: '/etc/containerd/certs.d' }), []);
  assert.equal(checkRuntimeConfig({ containerd_version: '1.7.24', root_dir: '/data//containerd/' }).value?.rootDir, '/data/containerd');
});

test('a refused path names its file, line, key and layer before any connection', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'hoist-guard-'));
  const pbFile = path.join(dir, 'reset.toml');
  await writeFile(pbFile, '[defaults]\ncontainerd_version = "1.7.24"\n[[tasks]]\ntask = "containerd_reset"\n[tasks.params]\nremove_data = true\n');
  const inv = '[hosts.a]\naddress = "10.0.0.1"\n[hosts.a.vars]\nroot_dir = "/"\n';
  const catalog = taskCatalog();
  const pb = await loadPlaybook(pbFile, catalog);
  const err = await resolvePlay(buildInventory(parseToml('inv.toml', inv)), pb, await extraVarLayers(['state_dir=/etc']), { catalog }).then(
    () => assert.fail('resolved'),
    (e: Error) => e.message.split('\n'),
  );
  assert.deepEqual(err, [
    `inv.toml:4 (root_dir): "/" is a system directory; hoist writes into this path and a reset deletes from it; choose a directory of containerd's own (default /var/lib/containerd) (set in inventory host "a") [host a]`,
    `-e state_dir=… (state_dir): "/etc" is a system directory; hoist writes into this path and a reset deletes from it; choose a directory of containerd's own (default /run/containerd) [host a]`,
  ]);
});

test('a refused data directory is the only problem reported for it: allow_data_dir is not compared with a default in its place', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'hoist-guard-'));
  const pbFile = path.join(dir, 'reset.toml');
  await writeFile(pbFile, '[defaults]\ncontainerd_version = "1.7.24"\n[[tasks]]\ntask = "containerd_reset"\n[tasks.params]\nremove_data = true\n');
  const inv = '[hosts.a]\naddress = "10.0.0.1"\n[hosts.a.vars]\nroot_dir = "/etc/"\nallow_data_dir = "/etc"\n';
  const catalog = taskCatalog();
  const pb = await loadPlaybook(pbFile, catalog);
  const err = await resolvePlay(buildInventory(parseToml('inv.toml', inv)), pb, [], { catalog }).then(
    () => assert.fail('resolved'),
    (e: Error) => e.message.split('\n'),
  );
  assert.deepEqual(err, [
    `inv.toml:4 (root_dir): "/etc" is a system directory; hoist writes into this path and a reset deletes from it; choose a directory of containerd's own (default /var/lib/containerd) (set in inventory host "a") [host a]`,
  ]);
});

test('a registry key or variable name with escape sequences or a line break is quoted, never echoed raw', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'hoist-key-'));
  const pbFile = path.join(dir, 'play.toml');
  await writeFile(pbFile, '[defaults]\ncontainerd_version = "1.7.24"\n[[tasks]]\ntask = "containerd_artifacts"\n');
  const inv = '[hosts.a]\naddress = "10.0.0.1"\n[hosts.a.vars.registries."evil\\u001b[2J\\nh1 | ok"]\nmirrors = ["https://m.example"]\n';
  const catalog = taskCatalog();
  const pb = await loadPlaybook(pbFile, catalog);
  const err = await extraVarLayers(['x\x1b[2J\ny=1']).then(
    () => assert.fail('accepted'),
    (e: Error) => e.message,
  );
  assert.equal(err, '-e x\\x1b[2J\\ny=1: "x\\u001b[2J\\ny" is not a variable name');
  const registry = await resolvePlay(buildInventory(parseToml('inv.toml', inv)), pb, [], { catalog }).then(
    () => assert.fail('resolved'),
    (e: Error) => e.message,
  );
  assert.doesNotMatch(registry, /\x1b/);
  assert.deepEqual(registry.split('\n'), [
    `inv.toml:3 (registries."evil\\u001b[2J\\nh1 | ok"): "evil\\u001b[2J\\nh1 | ok" is not a registry host (name or IP, optional :port, as in image references) (set in inventory host "a") [host a]`,
  ]);
});
