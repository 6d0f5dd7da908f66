import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadPlaybook, batchesOf } from '../../src/playbook/playbook.js';
import { resolvePlay } from '../../src/runner/play.js';
import { buildInventory } from '../../src/inventory/inventory.js';
import { parseToml } from '../../src/util/toml-file.js';
import { substitute } from '../../src/util/template.js';
import { parseExtraVars } from '../../src/cli/extra-vars.js';
import { taskCatalog } from '../../src/cli/catalog.js';

const catalog = taskCatalog();

async function pbFile(text: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'hoist-pb-'));
  const f = path.join(dir, 'play.toml');
  await writeFile(f, text);
  return f;
}

const bare = buildInventory(parseToml('bare.toml', `[hosts.a]\naddress = "10.0.0.1"\n`));

const inventory = buildInventory(
  parseToml(
    'inv.toml',
    `[defaults.vars]\nwho = "inventory"\nport = 1\n[hosts.a]\naddress = "10.0.0.1"\nvars = { who = "host-a" }\n[hosts.b]\naddress = "10.0.0.2"\n`,
  ),
);

test('precedence: playbook defaults < inventory < playbook vars < -e', async () => {
  const f = await pbFile(
    `[defaults]\nwho = "pb-default"\nonly_default = "d"\nport = 0\n[vars]\nport = 2\n[[tasks]]\ntask = "file"\n[tasks.params]\npath = "/tmp/{{ who }}-{{ only_default }}-{{ port }}"\ncontent = "x"\n`,
  );
  const pb = await loadPlaybook(f, catalog);
  const plays = await resolvePlay(inventory, pb, {}, { catalog });
  assert.equal(plays[0].tasks[0].params.path, '/tmp/host-a-d-2');
  assert.equal(plays[1].tasks[0].params.path, '/tmp/inventory-d-2');
  const withE = await resolvePlay(inventory, pb, { port: 3 }, { catalog, limit: 'b' });
  assert.equal(withE.length, 1);
  assert.equal(withE[0].tasks[0].params.path, '/tmp/inventory-d-3');
});

test('an unknown task parameter is an error naming file, line and key', async () => {
  const f = await pbFile(`[[tasks]]\ntask = "file"\n[tasks.params]\npath = "/x"\ncontent = "y"\nmdoe = "0600"\n`);
  const pb = await loadPlaybook(f, catalog);
  await assert.rejects(resolvePlay(bare, pb, {}, { catalog }), /play\.toml:6 \(tasks\[0\]\.params\.mdoe\): unknown key "mdoe"; did you mean "mode"\?/);
});

test('an unknown task and a missing variable are named', async () => {
  await assert.rejects(loadPlaybook(await pbFile(`[[tasks]]\ntask = "flie"\n`), catalog), /play\.toml:2 .*unknown task "flie"; did you mean "file"/);
  const pb = await loadPlaybook(await pbFile(`[[tasks]]\ntask = "file"\n[tasks.params]\npath = "{{ target_path }}"\ncontent = "a{{ nope }}"\n`), catalog);
  await assert.rejects(resolvePlay(bare, pb, {}, { catalog }), /undefined variable "target_path"/);
});

test('-e with an unknown variable suggests the declared one', async () => {
  const pb = await loadPlaybook(await pbFile(`[defaults]\ncontainerd_version = "1.7.0"\n[[tasks]]\ntask = "ping"\n`), catalog);
  await assert.rejects(
    resolvePlay(inventory, pb, { containerd_verison: '2.0.0' }, { catalog }),
    /unknown variable "containerd_verison".*did you mean "containerd_version"/,
  );
});

test('whole-variable substitution keeps types; templates render text', async () => {
  const vars = { list: ['a', 'b'], flag: false, name: 'x', nested: { k: 'v' } };
  assert.deepEqual(await substitute('{{ list }}', vars, 't'), ['a', 'b']);
  assert.equal(await substitute('{{ flag }}', vars, 't'), false);
  assert.equal(await substitute('{{ nested.k }}', vars, 't'), 'v');
  assert.equal(await substitute('n={{ name | upper }}', vars, 't'), 'n=X');
  assert.equal(await substitute('{{ missing | default("d") }}', vars, 't'), 'd');
  await assert.rejects(substitute('pre {{ missing }}', vars, 't'), /undefined variable "missing"/);
});

test('-e parses TOML values and @files', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'hoist-e-'));
  await writeFile(path.join(dir, 'v.toml'), 'a = 1\nb = ["x"]\n');
  const v = await parseExtraVars(['s=text', 'n=3', 'b2=true', 'l=["p","q"]', `@${dir}/v.toml`, 'q="quoted"']);
  assert.deepEqual(v, { s: 'text', n: 3, b2: true, l: ['p', 'q'], a: 1, b: ['x'], q: 'quoted' });
  await assert.rejects(parseExtraVars(['novalue']), /expected key=value/);
});

test('serial batches by count and percentage', () => {
  const hosts = [1, 2, 3, 4, 5];
  assert.deepEqual(batchesOf(hosts, undefined), [[1, 2, 3, 4, 5]]);
  assert.deepEqual(batchesOf(hosts, 2), [[1, 2], [3, 4], [5]]);
  assert.deepEqual(batchesOf(hosts, '40%'), [[1, 2], [3, 4], [5]]);
  assert.deepEqual(batchesOf(hosts, '10%'), [[1], [2], [3], [4], [5]]);
});

test("include runs other playbooks' tasks first, in order, with their defaults; the shipped node playbook prepares a node and containerd", async () => {
  const f = await pbFile(`include = ["a.toml", "b.toml"]\n[defaults]\nwho = "main"\n[[tasks]]\ntask = "ping"\nname = "own"\n`);
  const dir = path.dirname(f);
  await writeFile(path.join(dir, 'a.toml'), `[defaults]\nwho = "a"\nfrom_a = 1\n[[tasks]]\ntask = "ping"\nname = "from a"\n`);
  await writeFile(path.join(dir, 'b.toml'), `[defaults]\nfrom_b = 2\n[[tasks]]\ntask = "ping"\nname = "from b"\n`);
  const pb = await loadPlaybook(f, catalog);
  assert.deepEqual(
    pb.tasks.map((t) => [t.title, path.basename(t.file)]),
    [
      ['from a', 'a.toml'],
      ['from b', 'b.toml'],
      ['own', 'play.toml'],
    ],
  );
  assert.deepEqual(pb.defaults, { who: 'main', from_a: 1, from_b: 2 });
  await writeFile(path.join(dir, 'b.toml'), `include = ["play.toml"]\n`);
  await assert.rejects(loadPlaybook(f, catalog), /extend or include each other in a cycle/);
  const node = await loadPlaybook(path.join(import.meta.dirname, '../../playbooks/node.toml'), catalog);
  const names = node.tasks.map((t) => t.task);
  assert.deepEqual(names.slice(0, 5), ['kubernetes_node_packages', 'kernel_module', 'sysctl', 'swap', 'kubernetes_node_preflight']);
  assert.ok(names.includes('containerd_install') && names.indexOf('containerd_install') > names.indexOf('swap'));
  assert.equal(node.defaults.systemd_cgroup, true);
});

test('extends appends hook lists (base first), each hook naming its file and line; replace_hooks = true replaces them', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'hoist-pb-'));
  const base = path.join(dir, 'base.toml');
  await writeFile(base, `[[tasks]]\ntask = "ping"\n\n[[before_host]]\nrun = "drain"\n[[after_host]]\nrun = "uncordon"\n`);
  const child = path.join(dir, 'child.toml');
  await writeFile(child, `extends = "base.toml"\n\n[[before_host]]\nrun = "notify"\n`);
  const pb = await loadPlaybook(child, catalog);
  assert.deepEqual(
    pb.beforeHost.map((h) => [h.run, path.basename(h.file), h.line]),
    [
      ['drain', 'base.toml', 4],
      ['notify', 'child.toml', 3],
    ],
  );
  assert.deepEqual(
    pb.afterHost.map((h) => [h.run, path.basename(h.file)]),
    [['uncordon', 'base.toml']],
  );
  const replacing = path.join(dir, 'replacing.toml');
  await writeFile(replacing, `extends = "base.toml"\nreplace_hooks = true\n[[before_host]]\nrun = "notify"\n`);
  const r = await loadPlaybook(replacing, catalog);
  assert.deepEqual(
    r.beforeHost.map((h) => h.run),
    ['notify'],
  );
  assert.deepEqual(r.afterHost, [], 'a list the replacing playbook leaves out is empty');
  const alone = path.join(dir, 'alone.toml');
  await writeFile(alone, `replace_hooks = true\n[[tasks]]\ntask = "ping"\n`);
  await assert.rejects(loadPlaybook(alone, catalog), /replace_hooks only means something with extends/);
});

test('include keeps what the included playbooks ask of a run: the confirmation, hooks (theirs first), serial', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'hoist-pb-'));
  await writeFile(path.join(dir, 'drain.toml'), `serial = 1\n[[tasks]]\ntask = "ping"\n[[before_host]]\nrun = "drain"\n[[after_host]]\nrun = "uncordon"\n`);
  const main = path.join(dir, 'main.toml');
  await writeFile(main, `include = ["drain.toml"]\n[[before_host]]\nrun = "notify"\n`);
  const pb = await loadPlaybook(main, catalog);
  assert.deepEqual(
    pb.beforeHost.map((h) => h.run),
    ['drain', 'notify'],
  );
  assert.deepEqual(
    pb.afterHost.map((h) => h.run),
    ['uncordon'],
  );
  assert.equal(pb.serial, 1);
  const reset = path.join(dir, 'my-reset.toml');
  await writeFile(reset, `include = [${JSON.stringify(path.join(import.meta.dirname, '../../playbooks/reset.toml'))}]\n`);
  assert.ok((await loadPlaybook(reset, catalog)).confirm, 'including reset.toml keeps its question');
});
