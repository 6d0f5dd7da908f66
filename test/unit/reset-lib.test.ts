import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseBookkeeping, parseWorkloads } from '../../src/modules/containerd/tasks/reset-lib.js';

test('workloads: every task line with its namespace and status, and the shim count', () => {
  const w = parseWorkloads('task default web RUNNING\ntask k8s.io 3f2a STOPPED\nshims 2\n');
  assert.deepEqual(w, {
    tasks: [
      { ns: 'default', id: 'web', status: 'RUNNING' },
      { ns: 'k8s.io', id: '3f2a', status: 'STOPPED' },
    ],
    shims: 2,
  });
  assert.deepEqual(parseWorkloads('shims 0\n'), { tasks: [], shims: 0 });
});

test("bookkeeping: what a reset removes and the lock's files are not named; other modules, a drain record, stamps and data-dir records are", () => {
  const out = [
    'lock',
    'lock.gen',
    'commands.lock',
    'containerd',
    'artifacts',
    'staging',
    'stamps',
    'data-dirs',
    'temporary-files',
    '.hoist-tmp-x',
    'kubernetes-node',
    'drained.json',
  ]
    .map((e) => `entry ${e}`)
    .concat(['stamp containerd.service', 'stamp kubelet.service', 'data /var/lib/containerd'])
    .join('\n');
  const b = parseBookkeeping(out);
  assert.deepEqual(b.others, [
    "kubernetes-node (the kubernetes-node module's records)",
    'drained.json (a drain record: after_host hooks are owed)',
    'stamps/kubelet.service (a service hoist starts)',
  ]);
  assert.deepEqual(b.dataDirs, ['/var/lib/containerd']);
  assert.deepEqual(parseBookkeeping('entry lock\nentry containerd\nstamp containerd.service\n'), { others: [], dataDirs: [] });
});
