import { test } from 'node:test';
import assert from 'node:assert/strict';
import { forkLimit } from '../../src/runner/run.js';
import { Logger } from '../../src/util/log.js';
import type { Endpoint } from '../../src/ssh/endpoint.js';

const ep = (proxyCommand?: string): Endpoint => ({ name: 'h', host: 'x', port: 22, user: 'u', identityFiles: [], identitiesOnly: false, connectTimeoutMs: 1, commandTimeoutMs: 1, proxyCommand });

test('by default every host at once, within the open-files limit; --forks as given, checked', () => {
  assert.equal(forkLimit(undefined, 100, [ep()], 1024), 100);
  assert.equal(forkLimit(undefined, 5000, [ep()], 1024), 960, 'one socket per host, 64 kept for the controller');
  assert.equal(forkLimit(undefined, 5000, [ep('nc %h %p')], 1024), 240, 'a ProxyCommand costs a process with three pipes');
  assert.equal(forkLimit(undefined, 5000, [ep()], undefined), 5000, 'no readable limit: no cap');
  assert.equal(forkLimit(7, 100, [ep()], 16), 7, 'an explicit --forks wins');
  assert.throws(() => forkLimit(0, 3), /--forks must be a positive integer, got 0/);
  assert.throws(() => forkLimit(1.5, 3), /positive integer/);
  const log = new Logger();
  assert.equal(forkLimit(undefined, 2000, [ep()], 1064, log), 1000);
});
