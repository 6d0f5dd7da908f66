import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkOpenFiles, forkLimit } from '../../src/runner/run.js';
import type { Endpoint } from '../../src/ssh/endpoint.js';

const ep = (o: Partial<Endpoint> = {}): Endpoint => ({
  name: 'h',
  host: 'x',
  port: 22,
  user: 'u',
  identityFiles: [],
  identitiesOnly: false,
  connectTimeoutMs: 1,
  commandTimeoutMs: 1,
  ...o,
});
const many = (n: number, o: Partial<Endpoint> = {}) => Array.from({ length: n }, () => ep(o));

test('by default every host at once; --forks as given, checked', () => {
  assert.equal(forkLimit(undefined, 100), 100);
  assert.equal(forkLimit(7, 100), 7, 'an explicit --forks wins');
  assert.throws(() => forkLimit(0, 3), /--forks must be a positive integer, got 0/);
  assert.throws(() => forkLimit(1.5, 3), /positive integer/);
});

test('a run whose connections would not fit the open-files limit is refused before any host is contacted', () => {
  // One socket per host dialled directly, 64 for hoist.
  assert.doesNotThrow(() => checkOpenFiles(many(960), 1024));
  assert.throws(() => checkOpenFiles(many(961), 1024), /961 hosts keep about 1025 files open .*\(ulimit -n = 1024\); raise it first, e\.g\. ulimit -n 2048/);
  // Hosts behind one bastion share its session: a thousand of them need one socket.
  const jump = ep({ host: 'bastion' });
  assert.doesNotThrow(() => checkOpenFiles(many(5000, { jump }), 1024));
  // A ProxyCommand is a process with three pipes besides.
  assert.throws(() => checkOpenFiles(many(241, { proxyCommand: 'nc %h %p' }), 1024), /241 hosts keep about 1028 files open/);
  assert.doesNotThrow(() => checkOpenFiles(many(5000), undefined), 'no readable limit: no check');
});
