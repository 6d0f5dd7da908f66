import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TaskCatalog } from '../../src/tasks/catalog.js';
import { builtinTasks } from '../../src/tasks/builtin.js';
import { slot } from '../../src/tasks/slot.js';
import { RollbackPlan } from '../../src/tasks/rollback.js';
import { PlanState } from '../../src/tasks/types.js';
import { containerdModule } from '../../src/modules/containerd/module.js';
import { stagedArtifacts } from '../../src/modules/containerd/slots.js';
import { FakeHost } from '../support/fake-host.js';
import { Logger } from '../../src/util/log.js';

test('the catalogue knows each task once, and which module it belongs to', () => {
  const catalog = new TaskCatalog(builtinTasks, [containerdModule]);
  assert.equal(catalog.moduleOf('containerd_install'), containerdModule);
  assert.equal(catalog.moduleOf('sysctl'), undefined);
  assert.equal(catalog.providerOf(stagedArtifacts.name)?.name, 'containerd_artifacts');
  assert.throws(() => new TaskCatalog([...builtinTasks, builtinTasks[0]]), /two tasks are named "ping"/);
});

test('a slot holds one value per plan, typed, and says which value is missing', () => {
  const s = slot<string | undefined>('t.version', 'the version before');
  const a = new PlanState();
  const b = new PlanState();
  s.put(a, undefined);
  assert.equal(s.get(a), undefined, 'an undefined value that was provided is still provided');
  assert.equal(s.peek(b), undefined);
  assert.throws(() => s.get(b), /no task provided the version before \(t\.version\) before this one/);
});

test('rollback steps run newest first; a keyed step is added once; a failure stops the rest', async () => {
  const plan = new RollbackPlan();
  const order: string[] = [];
  const step =
    (name: string, fail = false) =>
    async () => {
      order.push(name);
      if (fail) throw new Error(`${name} failed`);
      return name === 'restart' ? 'restarted' : undefined;
    };
  plan.once('restart', step('restart'));
  plan.add(step('files-1'));
  plan.once('restart', step('restart-again'));
  plan.add(step('files-2'));
  assert.deepEqual(await plan.run(new FakeHost(), new Logger()), ['restarted']);
  assert.deepEqual(order, ['files-2', 'files-1', 'restart']);
  const failing = new RollbackPlan();
  order.length = 0;
  failing.add(step('first'));
  failing.add(step('second', true));
  await assert.rejects(failing.run(new FakeHost(), new Logger()), /second failed/);
  assert.deepEqual(order, ['second']);
});
