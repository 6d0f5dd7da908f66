/**
 * What a person at a terminal sees when the input is wrong: the error, at once, never a live view
 * waiting for hosts. Runs the built CLI (npm test builds first) on a real pty; no host is needed.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HOIST_BUILT, killPty, onPty, Screen } from '../support/pty.js';
import { assertOutputSchema } from '../support/output-schema.js';
import { pruneLogs, logKeep } from '../../src/util/log.js';
import { exitCodeOf, type HostReport } from '../../src/runner/report.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'hoist-terminal-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const state = path.join(dir, 'state');
const PLAYBOOK = path.resolve(path.dirname(HOIST_BUILT), '../playbooks/containerd.toml');

// Addresses no test reaches: the errors under test come before any connection.
const inventory = (extra = '') => {
  const f = path.join(dir, `inv-${Math.random().toString(36).slice(2)}.toml`);
  writeFileSync(f, `[defaults]\nuser = "deploy"\n${extra}\n[hosts.h1]\naddress = "192.0.2.1"\n[hosts.h2]\naddress = "192.0.2.2"\n`);
  return f;
};

/** Runs hoist on a pty; the error must be on screen within 2 s, and hoist gone with exit 1. */
async function badInputOnTerminal(args: string[], expected: RegExp, env: Record<string, string | undefined> = {}) {
  assert.ok(existsSync(HOIST_BUILT), 'build hoist first (npm run build)');
  const run = onPty(args, { env: { XDG_STATE_HOME: state, ...env } });
  try {
    const shownAfter = await run.waitFor(expected, 2000);
    const end = await Promise.race([run.exited, new Promise<null>((r) => setTimeout(() => r(null), 3000))]);
    assert.ok(end, `hoist still running 3 s after the error was shown. Screen:\n${run.screen()}`);
    assert.equal(end.code, 1, run.screen());
    assert.doesNotMatch(run.screen(), /waiting/, 'a live view was started for a run refused on its input');
    return { run, shownAfter };
  } finally {
    killPty(run);
  }
}

test('a misspelt -e variable on a terminal: the error at once, exit 1, no live view', async () => {
  const { run, shownAfter } = await badInputOnTerminal(
    ['check', PLAYBOOK, '-i', inventory(), '-e', 'snapshoter=native'],
    /unknown variable "snapshoter"; did you mean "snapshotter"\?/,
  );
  assert.ok(shownAfter < 2000, `${shownAfter} ms`);
  // Colour is on for a terminal: the word "error" is red.
  assert.match(run.raw(), /\x1b\[31merror\x1b\[0m/);
  assert.match(run.screen(), /log: .*hoist\/logs\/.*\.log/, 'the log path is on screen');
});

test('an inventory variable the playbook does not declare, on a terminal: the error at once, exit 1', async () => {
  await badInputOnTerminal(['apply', PLAYBOOK, '-i', inventory('[defaults.vars]\nsnapshoter = "native"\n')], /unknown variable "snapshoter"/);
});

test('NO_COLOR turns colour off on a terminal', async () => {
  const { run } = await badInputOnTerminal(['check', PLAYBOOK, '-i', inventory(), '-e', 'snapshoter=native'], /unknown variable "snapshoter"/, {
    NO_COLOR: '1',
  });
  assert.doesNotMatch(run.raw(), /\x1b\[[0-9;]*m/, 'an SGR colour sequence under NO_COLOR');
});

function hoist(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [HOIST_BUILT, ...args], {
    encoding: 'utf8',
    env: { ...process.env, XDG_STATE_HOME: state, NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('-K without a terminal is bad input (exit 1), not an internal error', () => {
  const r = hoist(['ping', '-i', inventory(), '-K']);
  assert.equal(r.code, 1, r.err);
  assert.match(r.err, /-K \(--ask-become-pass\) needs a terminal/);
  assert.doesNotMatch(r.err, /internal error/);
});

test('check --json says "check"; fetch and reference refuse --json with a schema-valid envelope', () => {
  const check = hoist(['check', PLAYBOOK, '-i', inventory(), '-e', 'snapshoter=x', '--json']);
  const env = JSON.parse(check.out) as { command: string; log?: string };
  assertOutputSchema(env, 'check --json');
  assert.equal(env.command, 'check');
  for (const command of ['fetch', 'reference']) {
    const r = hoist([command, '--json']);
    assert.equal(r.code, 1, r.err);
    const e = JSON.parse(r.out) as { command: string; error: { kind: string } };
    assertOutputSchema(e, `${command} --json`);
    assert.equal(e.command, command);
    assert.equal(e.error.kind, 'input');
  }
});

test('--json runs name their log on stderr and in the envelope', () => {
  const r = hoist(['check', PLAYBOOK, '-i', inventory(), '-e', 'snapshoter=x', '--json']);
  const env = JSON.parse(r.out) as { log?: string };
  assert.ok(env.log && existsSync(env.log), `no log in the envelope: ${r.out}`);
  assert.ok(r.err.includes(`log: ${env.log}`), r.err);
  assert.match(readFileSync(env.log, 'utf8'), /unknown variable "snapshoter"/);
});

test('logs: at start only the newest HOIST_LOG_KEEP run logs are kept; other files are left alone', () => {
  const logs = path.join(state, 'hoist', 'logs');
  rmSync(logs, { recursive: true, force: true });
  hoist(['check', PLAYBOOK, '-i', inventory(), '-e', 'snapshoter=x']);
  const old = ['2020-01-01T00-00-00-000Z-1.log', '2020-01-02T00-00-00-000Z-2.log', '2020-01-03T00-00-00-000Z-3.log', '2020-01-04T00-00-00-000Z-4.log'];
  for (const n of [...old, 'notes.txt', 'keep-me.log']) writeFileSync(path.join(logs, n), 'x');
  const r = hoist(['check', PLAYBOOK, '-i', inventory(), '-e', 'snapshoter=x'], { HOIST_LOG_KEEP: '3' });
  assert.equal(r.code, 1);
  const left = readdirSync(logs).sort();
  const runLogs = left.filter((n) => /^\d{4}-.*Z-\d+\.log$/.test(n));
  assert.equal(runLogs.length, 3, left.join(' '));
  assert.deepEqual(
    runLogs.filter((n) => n.startsWith('2020')),
    [old[3]],
    'the oldest go first; both runs of today stay',
  );
  assert.ok(left.includes('notes.txt') && left.includes('keep-me.log'), 'a file hoist did not name was removed');
  assert.equal(logKeep(undefined), 200);
  assert.equal(logKeep('0'), 200, 'keep 0 would delete the log being written');
  assert.deepEqual(pruneLogs(path.join(dir, 'none'), 1), []);
});

test('--help of each command shows an example and the exit codes', () => {
  for (const c of ['apply', 'check', 'verify', 'ping', 'facts', 'fetch', 'inventory', 'reference', 'tasks']) {
    const r = hoist([c, '--help']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, new RegExp(`Example:\\n  hoist ${c}\\b`), c);
    assert.match(r.out, /Exit codes:\n {2}0 /, c);
  }
  assert.match(hoist(['apply', '--help']).out, /5 +another hoist run holds a host's lock[\s\S]*6 +a host key[\s\S]*130/);
});

test('exit codes a wrapper can act on: lock contention 5, host key 6; a plain failure outranks them', () => {
  const h = (status: HostReport['status'], reason?: HostReport['reason']): HostReport => ({
    name: 'h',
    address: 'a',
    status,
    tasks: [],
    notes: [],
    durationMs: 0,
    ...(reason ? { reason } : {}),
  });
  assert.equal(exitCodeOf([h('ok'), h('failed', 'locked')]), 5);
  assert.equal(exitCodeOf([h('failed', 'host-key'), h('failed', 'locked')]), 6);
  assert.equal(exitCodeOf([h('failed', 'host-key'), h('failed')]), 2);
  assert.equal(exitCodeOf([h('unreachable'), h('failed', 'locked')]), 5);
  assert.equal(exitCodeOf([h('unreachable'), h('changed')]), 4);
});

test('the screen model keeps what a redraw leaves and drops what it erased', () => {
  const s = new Screen(20);
  s.write('a\r\n⠋ h1: waiting\r\n⠋ h2: waiting\r\n');
  s.write('\x1b[2K\x1b[1A\x1b[2K\x1b[1A\x1b[2K\x1b[G\x1b[32m✔\x1b[39m h1 | ok\r\n✔ h2 | changed\r\n');
  assert.equal(s.text(), 'a\n✔ h1 | ok\n✔ h2 | changed\n');
  s.write('0123456789012345678901');
  assert.equal(s.text().split('\n').slice(-2).join('|'), '01234567890123456789|01');
});

// The reset question comes after the plan, so it needs a host to plan: test/integration/reset.test.ts.
test('the become password prompt on a terminal: nothing echoed; Ctrl-C exits 130', async () => {
  const become = onPty(['ping', '-i', inventory(), '-K'], { env: { XDG_STATE_HOME: state }, cols: 250 });
  try {
    await become.waitFor(/BECOME password:$/m, 3000);
    become.type('typed-secret');
    await new Promise((r) => setTimeout(r, 200));
    become.type('\x03');
    await become.waitFor(/interrupted by SIGINT at the prompt; nothing was started/, 2000);
    assert.equal((await become.exited).code, 130);
    assert.ok(!become.raw().includes('typed-secret'), 'the password was echoed');
    assert.doesNotMatch(become.screen(), /internal error/);
  } finally {
    killPty(become);
  }
});
