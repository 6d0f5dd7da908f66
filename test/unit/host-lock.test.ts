import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HOIST_STATE_DIR } from '../../src/host-paths.js';
import { LOCK_STATE_PROBE, lockScript, parseLockOutput, parseLockState } from '../../src/ssh/host-lock.js';

/** The scripts as a host runs them, with hoist's state directory moved into a scratch one. */
const at = (dir: string, script: string) => script.split(HOIST_STATE_DIR).join(dir);
const probe = (dir: string) => parseLockState(spawnSync('bash', ['-c', at(dir, LOCK_STATE_PROBE)], { encoding: 'utf8' }).stdout);

test('each taking of the lock counts one generation, and the probe sees the holder while it is held', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hoist-lock-'));
  assert.deepEqual(probe(dir), { generation: 0, held: false });
  for (const expected of [0, 1]) {
    const p = spawn('bash', ['-s']);
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stdin.write(at(dir, lockScript('ops@ctl pid 1', 0)));
    while (parseLockOutput(out).state !== 'locked') await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(parseLockOutput(out), { state: 'locked', staleHolder: undefined, generation: expected });
    assert.deepEqual(probe(dir), { generation: expected + 1, held: true });
    p.stdin.end();
    await new Promise((r) => p.on('close', r));
    assert.deepEqual(probe(dir), { generation: expected + 1, held: false });
  }
});

test('lock and probe outputs that say something else are not taken for a state', () => {
  assert.equal(parseLockState('gen x\nfree'), undefined);
  assert.equal(parseLockState(''), undefined);
  assert.deepEqual(parseLockOutput('stale a@b pid 2\ngen 7\nlocked\n'), { state: 'locked', staleHolder: 'a@b pid 2', generation: 7 });
  assert.deepEqual(parseLockOutput('locked\n'), { state: 'locked', staleHolder: undefined, generation: undefined });
});
