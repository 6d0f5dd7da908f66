/**
 * Dead-host detection without false deaths: a controller starved of CPU keeps its live hosts, and a
 * host that really goes away is still reported soon after, on the operator's path (deploy, sudo,
 * through the bastion).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as fleet from '../fleet/fleet.js';
import { HOIST, ROOT, hoistJson, onHost, type JsonReport } from '../support/hoist.js';

let info: fleet.FleetInfo;
let dir: string;

before(async () => {
  info = await fleet.info();
  dir = mkdtempSync(path.join(os.tmpdir(), 'hoist-deadhost-'));
});

after(() => rmSync(dir, { recursive: true, force: true }));

function playbook(name: string, cmd: string): string {
  const pb = path.join(dir, `${name}.toml`);
  writeFileSync(pb, `name = "${name}"\n[[tasks]]\ntask = "command"\n[tasks.params]\ncmd = ${JSON.stringify(cmd)}\n`);
  return pb;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A busy loop pinned to `cpu`: it competes with hoist for that CPU for as long as it lives. */
function hog(cpu: number): ChildProcess {
  return spawn('taskset', ['-c', String(cpu), process.execPath, '-e', 'for (;;) {}'], { stdio: 'ignore' });
}

test('a starved controller (CPU hogs beside it, frozen 5 s at a time) loses none of its live hosts, at connect time either', async (t) => {
  const pb = playbook('slow', 'sleep 15');
  const hogs = [hog(0), hog(0)];
  // hoist shares CPU 0 with the hogs and is frozen (SIGSTOP) for 5 s out of every 6: as on a machine
  // with a load of hundreds, its event loop runs seconds late. Wall-clock keepalive counting (4 s of
  // silence) would take the hosts for dead, and so would a handshake deadline (3 s here) counted in
  // wall-clock time: a handshake that spans a freeze takes over 5 s.
  const args = ['apply', pb, '-i', info.inventoryPath, '--connect-timeout', '3', '--json'];
  const child = spawn('taskset', ['-c', '0', process.execPath, HOIST, ...args], {
    cwd: ROOT,
    env: { ...process.env, CI: '1', NO_COLOR: '1' },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
  let running = true;
  void done.then(() => (running = false));
  let frozenMs = 0;
  try {
    await sleep(300);
    while (running) {
      child.kill('SIGSTOP');
      await sleep(5_000);
      frozenMs += 5_000;
      child.kill('SIGCONT');
      await sleep(1_000);
    }
  } finally {
    child.kill('SIGCONT');
    for (const h of hogs) h.kill('SIGKILL');
  }
  const code = await done;
  const report = JSON.parse(stdout) as JsonReport;
  assert.deepEqual(
    report.hosts.map((h) => [h.name, h.status, h.error ?? '']),
    report.hosts.map((h) => [h.name, 'changed', '']),
    stderr,
  );
  t.diagnostic(`hoist frozen ${frozenMs / 1000} s in all`);
  assert.equal(code, 0, stderr);
  assert.ok(frozenMs >= 15_000, `hoist was frozen only ${frozenMs} ms: the run did not see a starved controller`);
});

test('a host stopped abruptly mid-command is reported unreachable soon, and starts again', async (t) => {
  // The run's own command marks that it started: a `sleep` another test left running must not pass for it.
  const marker = `/tmp/hoist-dead-host-${process.pid}-${Date.now()}`;
  const pb = playbook('long', `touch ${marker}; sleep 60`);
  const run = hoistJson(['apply', pb, '-i', info.inventoryPath, '--limit', 'h2']);
  for (let i = 0; i < 300; i++) {
    if ((await onHost(info, 'h2', `test -e ${marker} && echo yes || echo no`)).out.trim() === 'yes') break;
    assert.ok(i < 299, 'the command never started on h2');
    await sleep(100);
  }
  const t0 = Date.now();
  await fleet.stopHost('h2', { abrupt: true });
  let r: Awaited<typeof run>;
  try {
    r = await run;
  } finally {
    await fleet.startHost('h2');
  }
  const took = (Date.now() - t0) / 1000;
  t.diagnostic(`run ended ${took} s after the host stopped`);
  assert.equal(r.code, 4, r.stderr);
  assert.equal(r.report.hosts[0].status, 'unreachable');
  assert.match(r.report.hosts[0].error ?? '', /no answer to keepalives|connection lost|closed/);
  // 4 s of silence on an idle controller; the bound leaves room for a loaded CI machine.
  assert.ok(took < 15, `noticed after ${took} s`);
  const back = await hoistJson(['ping', '-i', info.inventoryPath, '--limit', 'h2']);
  assert.equal(back.code, 0, back.stderr);
});
