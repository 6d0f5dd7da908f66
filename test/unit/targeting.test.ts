import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadPlaybook } from '../../src/playbook/playbook.js';
import { resolvePlay } from '../../src/runner/play.js';
import { buildInventory } from '../../src/inventory/inventory.js';
import { parseToml } from '../../src/util/toml-file.js';
import { taskCatalog } from '../../src/cli/catalog.js';
import { factSkip, meets } from '../../src/playbook/condition.js';
import { parseFacts } from '../../src/facts/facts.js';

const catalog = taskCatalog();
const inv = buildInventory(
  parseToml(
    'inv.toml',
    `[groups.gpu]\nhosts = ["b"]\n[groups.gpu.vars]\nnode_role = "gpu"\n[hosts.a]\naddress = "10.0.0.1"\n[hosts.b]\naddress = "10.0.0.2"\n[defaults.vars]\nnode_role = "cpu"\n`,
  ),
);

async function playbook(text: string): Promise<string> {
  const f = path.join(await mkdtemp(path.join(os.tmpdir(), 'hoist-when-')), 'play.toml');
  await writeFile(f, text);
  return f;
}

test("a task limited to a group, or to a variable's value, is skipped elsewhere with the reason, before any connection", async () => {
  const f = await playbook(
    `[defaults]\nnode_role = "cpu"\n[[tasks]]\nname = "gpu only"\ntask = "ping"\nhosts = "gpu"\n[[tasks]]\nname = "cpu role"\ntask = "ping"\nwhen = { var = "node_role", equals = "cpu" }\n[[tasks]]\ntask = "ping"\n`,
  );
  const plays = await resolvePlay(inv, await loadPlaybook(f, catalog), [], { catalog });
  assert.deepEqual(
    plays.map((p) => [p.host.name, p.tasks.map((t) => t.skip ?? 'runs')]),
    [
      ['a', ["skipped: not among the task's hosts (gpu)", 'runs', 'runs']],
      ['b', ['runs', 'skipped: when variable node_role == "cpu" is false here (node_role = "gpu")', 'runs']],
    ],
  );
});

test('conditions that name an unknown fact or variable, or an unknown host pattern, are refused with file:line', async () => {
  const fact = await playbook(`[[tasks]]\ntask = "ping"\nwhen = { fact = "osid", in = ["debian"] }\n`);
  await assert.rejects(loadPlaybook(fact, catalog), new RegExp(`${fact}:3 \\(tasks\\[0\\]\\.when\\): unknown fact "osid"; did you mean "os_id"\\?`));
  const shape = await playbook(`[[tasks]]\ntask = "ping"\nwhen = { fact = "os_id", var = "x", equals = 1 }\n`);
  await assert.rejects(loadPlaybook(shape, catalog), /exactly one of fact or var/);
  const v = await playbook(
    `[defaults]\nnode_role = "cpu"\n[[tasks]]\ntask = "ping"\nwhen = { var = "node_rol", equals = "gpu" }\n[[tasks]]\ntask = "ping"\nhosts = ["gpu-worker"]\n`,
  );
  const err = await resolvePlay(inv, await loadPlaybook(v, catalog), [], { catalog }).then(
    () => assert.fail('resolved'),
    (e: Error) => e.message,
  );
  assert.match(err, new RegExp(`${v}:5 \\(tasks\\[0\\]\\.when\\.var\\): when: unknown variable "node_rol"; did you mean "node_role"\\?`));
  assert.match(err, new RegExp(`${v}:8 \\(tasks\\[1\\]\\.hosts\\): no host or group named "gpu-worker" in inv\\.toml`));
});

test('fact conditions: a list fact (os_id_like) matches when any item does; the skip says the value found', () => {
  const rocky = parseFacts('os_id=rocky\nos_id_like=rhel centos fedora\npm=dnf');
  assert.equal(factSkip({ fact: 'os_id_like', in: ['rhel'] }, rocky), undefined);
  assert.equal(factSkip({ fact: 'os_id', equals: 'debian' }, rocky), 'skipped: when fact os_id == "debian" is false here (os_id = "rocky")');
  assert.equal(factSkip({ fact: 'package_manager', not_in: ['apt'] }, rocky), undefined);
  assert.equal(meets({ fact: 'cgroup_version', equals: 2 }, 2), true);
  assert.equal(meets({ var: 'x', in: ['a'] }, undefined), false);
});
