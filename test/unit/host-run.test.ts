import { FanOut } from '../../src/runner/fan-out.js';
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { HostRun } from '../../src/runner/host-run.js';
import { stopReason } from '../../src/runner/run.js';
import type { HostPlay, HostTask } from '../../src/runner/play.js';
import { exitCodeOf, type HostReport, type RunEvents, type TaskReport } from '../../src/runner/report.js';
import type { Hook, Playbook } from '../../src/playbook/playbook.js';
import { defineTask, type Action, type AnyTask, type RunOptions } from '../../src/tasks/types.js';
import { parseToml } from '../../src/util/toml-file.js';
import { Logger } from '../../src/util/log.js';
import { s } from '../../src/util/schema.js';
import { FakeHost } from '../support/fake-host.js';
import { TaskCatalog } from '../../src/tasks/catalog.js';
import { planFile } from '../../src/tasks/lib/files.js';
import { RestartGate, restartBatchSize } from '../../src/runner/restart-gate.js';
import { interruption } from '../../src/runner/interrupt.js';
import { TRANSITIONS, type HostState } from '../../src/runner/host-state.js';
import { HostKeyError } from '../../src/ssh/connection.js';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** What ran on the host besides hoist's drain bookkeeping: a hook's own line, else a script's last. */
const commands = (h: FakeHost) =>
  h.ran
    .map((c) => {
      const lines = c.split('\n');
      // A host hook: HOIST_HOST exported, then `{`, the hook, `} 8>&-`.
      return lines[lines.length - 1] === '} 8>&-' ? lines[lines.length - 2] : lines[lines.length - 1];
    })
    .filter((c) => !c.includes('/var/lib/hoist/drained.json'));

/** A task whose plan is given by the test: change actions that run a command, a rollback step, or a plan error. */
function task(
  name: string,
  behaviour: { change?: string; fail?: boolean; planError?: string; undo?: string; lose?: boolean; disruptive?: boolean; delayMs?: number },
): AnyTask {
  return defineTask({
    name,
    summary: name,
    params: s.object({}),
    plan(_p, ctx) {
      if (behaviour.planError) throw new Error(behaviour.planError);
      const actions: Action[] = [];
      if (behaviour.undo) ctx.state.rollback.add(async (conn) => (await conn.check(behaviour.undo!, `undo ${name}`), `undid ${name}`));
      if (behaviour.change) {
        actions.push({
          kind: 'change',
          summary: behaviour.change,
          ...(behaviour.disruptive ? { disruptive: `restart of running ${name}` } : {}),
          async run(conn) {
            if (behaviour.delayMs) await new Promise((r) => setTimeout(r, behaviour.delayMs));
            await conn.exec(behaviour.change!);
            if (behaviour.lose && conn instanceof FakeHost) conn.isClosed = true;
            if (behaviour.fail || behaviour.lose) throw new Error(`${name} broke`);
          },
        });
      }
      return { actions };
    },
  });
}

const doc = parseToml('play.toml', '');

function play(defs: AnyTask[]): HostPlay {
  const tasks: HostTask[] = defs.map((def, index) => ({
    spec: { file: 'play.toml', doc, index, title: def.name, task: def.name, def, params: {}, line: index + 1 },
    def,
    params: {},
    settings: undefined,
  }));
  return { host: { name: 'h1', address: '10.0.0.1', become: false, becomeUser: 'root', groups: [], vars: {}, varLayers: [] }, vars: {}, tasks };
}

function events(): RunEvents & { done: TaskReport[] } {
  const done: TaskReport[] = [];
  return {
    done,
    hostPhase: () => undefined,
    taskDone: (_h, t) => void done.push(t),
    hostDone: () => undefined,
    progress: () => undefined,
    message: () => undefined,
  };
}

/** The states each run of this file went through, by its report; every move any of them made. */
const paths = new WeakMap<HostReport, readonly HostState[]>();
const moves = new Set<string>();
const pathOf = (r: HostReport) => paths.get(r)!.join(' → ');

/** A run on h1; each starts with an empty controller state directory unless given the one of an earlier run. */
async function run(
  defs: AnyTask[],
  host: FakeHost,
  o: {
    check?: boolean;
    before?: Hook[];
    after?: Hook[];
    state?: string;
    file?: string;
    gate?: RestartGate;
    name?: string;
    lockWait?: number;
    connecting?: Promise<FakeHost>;
  } = {},
): Promise<HostReport> {
  process.env.XDG_STATE_HOME = o.state ?? mkdtempSync(path.join(os.tmpdir(), 'hoist-host-run-'));
  const options: RunOptions = { check: !!o.check, diff: false, offline: true };
  const playbook: Playbook = {
    file: o.file ?? 'play.toml',
    dir: '.',
    name: 'test',
    hosts: ['all'],
    defaults: {},
    vars: {},
    defaultLayers: [],
    varLayers: [],
    beforeHost: (o.before ?? []).map((h) => ({ ...h, file: 'play.toml' })),
    afterHost: (o.after ?? []).map((h) => ({ ...h, file: 'play.toml' })),
    tasks: [],
    doc,
  };
  const log = new Logger();
  const controller = { playbookDir: '.', inventoryDir: '.', log, progress: () => undefined, deliver: new FanOut(new Logger()).deliver };
  const p = play(defs);
  if (o.name) p.host = { ...p.host, name: o.name };
  const hr = new HostRun(
    p,
    p.tasks.map(() => undefined),
    { options, controller, playbook, events: events(), log, lockWaitSeconds: o.lockWait ?? 0, catalog: new TaskCatalog(defs), gate: o.gate },
  );
  const r = await hr.run(o.connecting ?? Promise.resolve(host));
  paths.set(r, hr.path);
  hr.path.slice(1).forEach((to, i) => moves.add(`${hr.path[i]} → ${to}`));
  return r;
}

describe('HostRun: rollback', () => {
  test("a failed change runs every task's undo step, newest first, and names them in the error", async () => {
    const host = new FakeHost();
    const r = await run(
      [task('a', { change: 'change-a', undo: 'undo-a' }), task('b', { change: 'change-b', undo: 'undo-b', fail: true }), task('c', { change: 'change-c' })],
      host,
    );
    assert.equal(r.status, 'failed');
    assert.deepEqual(host.ran, ['change-a', 'change-b', 'undo-b', 'undo-a']);
    assert.match(r.error!, /^b: b broke — undid b; undid a$/);
    assert.deepEqual(
      r.tasks.map((t) => t.status),
      ['changed', 'failed', 'skipped'],
    );
    assert.deepEqual(r.notes, ['undid b; undid a']);
    assert.equal(pathOf(r), 'new → connecting → planning → locking → applying → rolling back → failed');
  });

  test('nothing is undone when nothing changed before the failure, or under --check', async () => {
    const host = new FakeHost();
    const r = await run([task('a', { undo: 'undo-a' }), task('b', { planError: 'cannot plan b' })], host);
    assert.equal(r.status, 'failed');
    assert.equal(pathOf(r), 'new → connecting → planning → applying → failed', 'a plan that writes nothing takes no lock');
    assert.deepEqual(host.ran, []);
    const checked = new FakeHost();
    const c = await run([task('a', { change: 'change-a', undo: 'undo-a' }), task('b', { change: 'change-b', fail: true })], checked, { check: true });
    assert.equal(c.status, 'changed');
    assert.equal(pathOf(c), 'new → connecting → planning → applying → done');
    assert.deepEqual(checked.ran, [], '--check runs no change and so no undo');
  });
});

describe('HostRun: hooks', () => {
  const hook = (run: string): Hook => ({ run, on: 'host', timeout: 5 });

  test('before_host and after_host wrap a host that changes', async () => {
    const host = new FakeHost();
    const r = await run([task('a', { change: 'change-a' })], host, { before: [hook('drain')], after: [hook('uncordon')] });
    assert.equal(r.status, 'changed');
    assert.deepEqual(commands(host), ['drain', 'change-a', 'uncordon']);
    assert.equal(pathOf(r), 'new → connecting → planning → locking → recording drain → draining → applying → undraining → done');
  });

  test('a host with nothing to change runs no hook', async () => {
    const host = new FakeHost();
    const r = await run([task('a', {})], host, { before: [hook('drain')], after: [hook('uncordon')] });
    assert.equal(r.status, 'ok');
    assert.equal(pathOf(r), 'new → connecting → planning → applying → done');
    assert.deepEqual(host.ran, []);
  });

  test('a failing before_host hook stops the host before anything changes, and after_host undoes the half-done drain', async () => {
    const host = new FakeHost();
    host.failing = /drain/;
    const r = await run([task('a', { change: 'change-a', undo: 'undo-a' })], host, { before: [hook('drain')], after: [hook('uncordon')] });
    assert.equal(r.status, 'failed');
    assert.match(r.error!, /before_host hook failed, host left unchanged: "drain" exited 3/);
    assert.deepEqual(commands(host), ['drain', 'uncordon']);
    assert.equal(pathOf(r), 'new → connecting → planning → locking → recording drain → draining → undraining → failed');
    assert.deepEqual(
      r.tasks.map((t) => t.status),
      ['skipped'],
    );
  });

  test('after a failure that was rolled back, after_host runs; the notes say what ran', async () => {
    const host = new FakeHost();
    const r = await run([task('a', { change: 'change-a', undo: 'undo-a' }), task('b', { change: 'change-b', fail: true })], host, {
      before: [hook('drain')],
      after: [hook('uncordon')],
    });
    assert.equal(r.status, 'failed');
    assert.deepEqual(commands(host), ['drain', 'change-a', 'change-b', 'undo-a', 'uncordon']);
    assert.equal(pathOf(r), 'new → connecting → planning → locking → recording drain → draining → applying → rolling back → undraining → failed');
    assert.ok(r.notes.includes('after_host hooks ran after the rollback'), r.notes.join('\n'));
    assert.ok(
      r.notes.some((n) => /^before_host hook \(host\) "drain": ok in /.test(n)),
      r.notes.join('\n'),
    );
  });

  test('when the rollback fails, after_host does not run and the host is named as still drained', async () => {
    const host = new FakeHost();
    host.failing = /undo-a/;
    const r = await run([task('a', { change: 'change-a', undo: 'undo-a' }), task('b', { change: 'change-b', fail: true })], host, {
      before: [hook('drain')],
      after: [hook('uncordon')],
    });
    assert.equal(r.status, 'failed');
    assert.ok(!host.ran.some((c) => c.endsWith('uncordon')));
    assert.equal(pathOf(r), 'new → connecting → planning → locking → recording drain → draining → applying → rolling back → failed');
    assert.ok(
      r.notes.some((n) => n.startsWith('STILL DRAINED: before_host hooks ran and after_host hooks did not, because the rollback failed')),
      r.notes.join('\n'),
    );
  });

  test('--check says which hooks would run and runs none', async () => {
    const host = new FakeHost();
    const r = await run([task('a', { change: 'change-a' })], host, { check: true, before: [hook('drain')], after: [hook('uncordon')] });
    assert.deepEqual(host.ran, []);
    assert.deepEqual(r.notes, ['would run before_host hook (host) "drain"', 'would run after_host hook (host) "uncordon"']);
  });
});

describe('HostRun: the host lock', () => {
  test('another run holding the host fails it before any change, and the lock is not released by us', async () => {
    const host = new FakeHost();
    host.lockResult = { busy: 'ops@ctl pid 42' };
    const r = await run([task('a', { change: 'change-a' })], host);
    assert.equal(r.status, 'failed');
    assert.match(r.error!, /locked by another hoist run \(ops@ctl pid 42\)/);
    assert.equal(pathOf(r), 'new → connecting → planning → locking → failed');
    assert.deepEqual(host.ran, []);
    assert.equal(host.released, 0);
  });

  test('a host that goes away while the lock is being taken is unreachable, not failed', async () => {
    const host = new FakeHost();
    host.lockResult = { lost: true };
    const r = await run([task('a', { change: 'change-a' })], host);
    assert.equal(r.status, 'unreachable');
    assert.match(r.error!, /connection lost during taking the host lock/);
    assert.equal(pathOf(r), 'new → connecting → planning → locking → unreachable');
    assert.deepEqual(host.ran, []);
  });

  test('a stale lock is taken over and said so; the lock is released at the end', async () => {
    const host = new FakeHost();
    host.lockResult = { stale: 'ci@old pid 7' };
    const r = await run([task('a', { change: 'change-a' })], host);
    assert.equal(r.status, 'changed');
    assert.deepEqual(r.notes, ['took over a stale host lock left by a killed run (ci@old pid 7)']);
    assert.equal(host.released, 1);
  });

  test('a run that finds nothing to change takes no lock and reads the host once', async () => {
    const host = new FakeHost();
    const r = await run([task('a', {}), task('b', {})], host);
    assert.equal(r.status, 'ok');
    assert.equal(host.locks, 0);
    assert.equal(host.gathers, 1);
  });

  test('a changing run takes the lock after planning, and keeps its plan when nobody took the lock since the read', async () => {
    const host = new FakeHost();
    const r = await run([task('a', { change: 'change-a' })], host);
    assert.equal(r.status, 'changed');
    assert.equal(host.locks, 1);
    assert.equal(host.gathers, 1);
    assert.deepEqual(host.ran, ['change-a']);
  });

  for (const [why, setup] of [
    ['another run took the lock since the host was read', (h: FakeHost) => void (h.generationAtLock = h.lockGeneration + 1)],
    ['another run held the lock while the host was read', (h: FakeHost) => void (h.lockHeld = true)],
  ] as const) {
    test(`the plan is made again under the lock when ${why}`, async () => {
      const host = new FakeHost();
      setup(host);
      const r = await run([task('a', { change: 'change-a' })], host);
      assert.equal(r.status, 'changed');
      assert.equal(host.locks, 1);
      assert.equal(host.gathers, 2);
      assert.equal(pathOf(r), 'new → connecting → planning → locking → planning → applying → done');
      assert.deepEqual(host.ran, ['change-a'], 'the change is applied once, from the second plan');
    });
  }

  test('--check takes no lock', async () => {
    const host = new FakeHost();
    await run([task('a', { change: 'change-a' })], host, { check: true });
    assert.equal(host.locks, 0);
  });
});

describe('stopping', () => {
  test('a plan error stops the host before any change: later tasks are not planned, earlier ones not applied', async () => {
    const host = new FakeHost();
    let plannedC = false;
    const c = defineTask({ name: 'c', summary: 'c', params: s.object({}), plan: () => ((plannedC = true), { actions: [] }) });
    const r = await run([task('a', { change: 'change-a' }), task('b', { planError: 'no way' }), c], host);
    assert.equal(r.status, 'failed');
    assert.equal(r.error, 'b: no way (nothing was changed on this host)');
    assert.equal(plannedC, false);
    // Nor are the tasks before it: the host would be left half way to a state it cannot reach.
    assert.deepEqual(host.ran, []);
    assert.deepEqual(
      r.tasks.map((t) => t.status),
      ['skipped', 'failed', 'skipped'],
    );
    assert.deepEqual(r.tasks[0].notes, ['not applied: task "b" could not plan on this host']);
  });

  test('a connection lost during a change makes the host unreachable, with no undo attempted', async () => {
    const host = new FakeHost();
    const r = await run([task('a', { change: 'change-a', undo: 'undo-a', lose: true })], host);
    assert.equal(r.status, 'unreachable');
    assert.equal(pathOf(r), 'new → connecting → planning → locking → applying → unreachable');
    assert.deepEqual(host.ran, ['change-a']);
  });

  test('a failed connection is unreachable', async () => {
    const p = play([task('a', { change: 'x' })]);
    const log = new Logger();
    const playbook: Playbook = {
      file: 'p',
      dir: '.',
      name: 't',
      hosts: ['all'],
      defaults: {},
      vars: {},
      defaultLayers: [],
      varLayers: [],
      beforeHost: [],
      afterHost: [],
      tasks: [],
      doc,
    };
    const r = await new HostRun(p, [undefined], {
      options: { check: false, diff: false, offline: true },
      controller: { playbookDir: '.', inventoryDir: '.', log, progress: () => undefined, deliver: new FanOut(new Logger()).deliver },
      playbook,
      events: events(),
      log,
      lockWaitSeconds: 0,
    }).run(Promise.reject(new Error('connect ECONNREFUSED')));
    assert.equal(r.status, 'unreachable');
    assert.match(r.error!, /ECONNREFUSED/);
  });

  test('the roll-out stops after a batch where every host failed, or past max_fail_percentage', () => {
    const h = (name: string, status: HostReport['status']): HostReport => ({ name, address: name, status, tasks: [], notes: [], durationMs: 0 });
    assert.equal(stopReason([h('a', 'ok'), h('b', 'failed')], 4, undefined), undefined);
    assert.match(stopReason([h('a', 'failed'), h('b', 'unreachable')], 4, undefined)!, /every host of the batch failed \(a, b\)/);
    assert.equal(stopReason([h('a', 'failed')], 4, 25), undefined);
    assert.match(stopReason([h('a', 'failed'), h('b', 'failed')], 4, 25)!, /max_fail_percentage = 25/);
  });
});

describe('HostRun: the drain journal', () => {
  const hook = (run: string): Hook => ({ run, on: 'host', timeout: 5 });
  const hooks = { before: [hook('drain')], after: [hook('uncordon')] };
  const record = (state: string) => {
    const dir = path.join(state, 'hoist', 'drained');
    const files = existsSync(dir) ? readdirSync(dir) : [];
    return files.map((f) => ({
      file: path.join(dir, f),
      mode: statSync(path.join(dir, f)).mode & 0o777,
      json: JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as { host: string; hooks: Hook[]; playbook: string },
    }));
  };

  test('a failing after_host leaves the host STILL DRAINED, exit 2; the next run, with nothing to change, runs it first and clears the debt', async () => {
    const state = mkdtempSync(path.join(os.tmpdir(), 'hoist-drain-'));
    const first = new FakeHost();
    first.failing = /uncordon/;
    const r = await run([task('a', { change: 'change-a' })], first, { ...hooks, state });
    assert.equal(r.status, 'failed');
    assert.match(r.stillDrained!, /after_host hook "uncordon" failed/);
    assert.equal(pathOf(r), 'new → connecting → planning → locking → recording drain → draining → applying → undraining → failed');
    assert.ok(
      r.notes.some((n) => n.startsWith('STILL DRAINED: ')),
      r.notes.join('\n'),
    );
    assert.equal(exitCodeOf([r]), 2);
    const [rec] = record(state);
    assert.equal(rec.mode, 0o600);
    assert.equal(rec.json.host, 'h1');
    assert.deepEqual(
      rec.json.hooks.map((h) => h.run),
      ['uncordon'],
    );
    assert.ok(first.ran.some((c) => c.includes('/var/lib/hoist/drained.json')) === false, 'the host record stays while the debt stands');

    const second = new FakeHost();
    const again = await run([task('a', {})], second, { ...hooks, state });
    assert.equal(again.status, 'ok', again.error);
    assert.equal(pathOf(again), 'new → connecting → planning → locking → paying debt → applying → done', 'a debt takes the lock even when nothing changes');
    assert.deepEqual(commands(second), ['uncordon']);
    assert.ok(
      second.ran.some((c) => c === 'rm -f /var/lib/hoist/drained.json'),
      'the host record is removed',
    );
    assert.equal(again.stillDrained, undefined);
    assert.ok(
      again.notes.some((n) => n.startsWith('ran the after_host hooks of playbook test')),
      again.notes.join('\n'),
    );
    assert.deepEqual(record(state), []);
  });

  test('a host lost after its drain is STILL DRAINED; the next run pays the debt before its own changes', async () => {
    const state = mkdtempSync(path.join(os.tmpdir(), 'hoist-drain-'));
    const r = await run([task('a', { change: 'change-a', lose: true })], new FakeHost(), { ...hooks, state });
    assert.equal(r.status, 'unreachable');
    assert.match(r.stillDrained!, /the host is unreachable/);
    const second = new FakeHost();
    const again = await run([task('a', { change: 'change-a' })], second, { ...hooks, state });
    assert.equal(again.status, 'changed');
    assert.deepEqual(commands(second), ['uncordon', 'drain', 'change-a', 'uncordon']);
    assert.equal(pathOf(again), 'new → connecting → planning → locking → paying debt → recording drain → draining → applying → undraining → done');
    assert.deepEqual(record(state), []);
  });

  test('--check names the debt and runs nothing; exit 2', async () => {
    const state = mkdtempSync(path.join(os.tmpdir(), 'hoist-drain-'));
    const first = new FakeHost();
    first.failing = /uncordon/;
    await run([task('a', { change: 'change-a' })], first, { ...hooks, state });
    const checked = new FakeHost();
    const c = await run([task('a', {})], checked, { ...hooks, state, check: true });
    assert.deepEqual(checked.ran, []);
    assert.match(c.stillDrained!, /a check does not run them, the next apply runs them first/);
    assert.equal(exitCodeOf([c]), 2);
    assert.equal(record(state).length, 1);
  });

  test('a debt whose playbook is gone is not paid: the host fails naming the playbook and the manual fix', async () => {
    const state = mkdtempSync(path.join(os.tmpdir(), 'hoist-drain-'));
    const first = new FakeHost();
    first.failing = /uncordon/;
    const gone = path.join(state, 'upgrade-gone.toml');
    await run([task('a', { change: 'change-a' })], first, { ...hooks, state, file: gone });
    const other = new FakeHost();
    const r = await run([task('a', { change: 'change-a' })], other, { state, file: 'other.toml' });
    assert.equal(r.status, 'failed');
    assert.deepEqual(other.ran, [], "nothing runs on a host whose debt can't be paid");
    assert.ok(r.error!.includes(`the playbook ${gone} can't be loaded`), r.error);
    assert.match(
      r.error!,
      /run "on the host: uncordon" by hand \(HOIST_HOST=h1\), then remove .*drained\/h1-[0-9a-f]{12}\.json on this controller and \/var\/lib\/hoist\/drained\.json on the host/,
    );
    assert.ok(r.stillDrained);
  });
});

describe('HostRun: rolling restarts', () => {
  test('hosts whose plans restart a running service go one at a time; the others do not wait', async () => {
    const gate = new RestartGate(1);
    const spans: Record<string, [number, number]> = {};
    const timed = (name: string, disruptive: boolean) => {
      const host = new FakeHost(name);
      const ran = host.exec.bind(host);
      host.exec = async (script) => {
        const r = await ran(script);
        if (script === 'restart') spans[name] = [Date.now(), 0];
        if (script === 'verify') spans[name][1] = Date.now();
        return r;
      };
      return run([task('restart', { change: 'restart', disruptive, delayMs: 30 }), task('verify', { change: 'verify', delayMs: 30 })], host, { gate, name });
    };
    const rs = await Promise.all([timed('h1', true), timed('h2', true), timed('h3', true), timed('fresh', false)]);
    assert.deepEqual(
      rs.map((r) => r.status),
      ['changed', 'changed', 'changed', 'changed'],
    );
    const order = ['h1', 'h2', 'h3'].sort((a, b) => spans[a][0] - spans[b][0]);
    for (let i = 1; i < order.length; i++)
      assert.ok(spans[order[i]][0] >= spans[order[i - 1]][1], `${order[i]} restarted before ${order[i - 1]} was verified: ${JSON.stringify(spans)}`);
    assert.ok(spans.fresh[0] < spans[order[1]][0], 'a host that disrupts nothing does not wait its turn');
  });

  test('a host that fails after taking its turn stops the hosts still waiting, untouched', async () => {
    const gate = new RestartGate(1);
    const first = new FakeHost('h1');
    const second = new FakeHost('h2');
    const [a, b] = await Promise.all([
      run([task('restart', { change: 'restart', disruptive: true, fail: true, delayMs: 20 })], first, { gate, name: 'h1' }),
      run([task('restart', { change: 'restart', disruptive: true })], second, { gate, name: 'h2' }),
    ]);
    assert.equal(a.status, 'failed');
    assert.equal(b.status, 'skipped');
    assert.match(b.error!, /h1 failed during its rolling restart/);
    assert.equal(pathOf(a), 'new → connecting → planning → locking → waiting turn → applying → failed');
    assert.equal(pathOf(b), 'new → connecting → planning → locking → waiting turn → skipped');
    assert.deepEqual(second.ran, []);
  });

  test('restart_batch: a count, or a percentage of the hosts (at least one); one by default', () => {
    assert.equal(restartBatchSize(undefined, 10), 1);
    assert.equal(restartBatchSize(3, 10), 3);
    assert.equal(restartBatchSize('30%', 10), 3);
    assert.equal(restartBatchSize('10%', 3), 1);
    assert.equal(restartBatchSize('100%', 7), 7);
  });
});

describe('HostRun: after the roll-out of a host', () => {
  const secretFile = (name: string, oldMode: number, secret: boolean) =>
    defineTask({
      name,
      summary: name,
      params: s.object({}),
      plan: (_p, ctx) => ({
        actions: [
          planFile(
            { path: '/etc/containerd/config.toml', content: Buffer.from('password = "new"'), mode: secret ? 0o600 : 0o644, secret },
            { exists: true, sha256: 'old', mode: oldMode, owner: 'root', group: 'root' },
            ctx.state,
            ctx.options,
          )!,
        ],
      }),
    });

  test('the .hoist-prev copy of a replaced credential file goes once every task succeeded, verification included', async () => {
    const host = new FakeHost();
    const r = await run([secretFile('config', 0o600, true), task('verify', {})], host);
    assert.equal(r.status, 'changed');
    assert.ok(host.ran.includes('rm -f -- /etc/containerd/config.toml.hoist-prev'), host.ran.join('\n'));
    assert.ok(
      r.notes.some((n) => n.startsWith('removed /etc/containerd/config.toml.hoist-prev: the replaced file held credentials')),
      r.notes.join('\n'),
    );
    // The old file held the password and the new one doesn't: its copy goes too.
    const cleared = new FakeHost();
    await run([secretFile('config', 0o600, false)], cleared);
    assert.ok(cleared.ran.includes('rm -f -- /etc/containerd/config.toml.hoist-prev'));
    const plain = new FakeHost();
    await run([secretFile('config', 0o644, false)], plain);
    assert.deepEqual(plain.ran, [], 'a copy without credentials stays for the operator');
  });

  test("a host that fails keeps the copy (the rollback restores it), and the failed attempt's notes say they are", async () => {
    const host = new FakeHost();
    const noting = defineTask({
      name: 'verify',
      summary: 'verify',
      params: s.object({}),
      plan: () => ({
        actions: [{ kind: 'change', summary: 'restart', run: async (_c, ctx) => (ctx.note('server 2.1.9'), Promise.reject(new Error('CRI plugin not ok'))) }],
      }),
    });
    const r = await run([secretFile('config', 0o600, true), task('undo', { undo: 'undo-config' }), noting], host);
    assert.equal(r.status, 'failed');
    assert.ok(!host.ran.some((c) => c.includes('.hoist-prev')), host.ran.join('\n'));
    assert.deepEqual(r.tasks.find((t) => t.title === 'verify')!.notes, ['failed attempt, rolled back: server 2.1.9']);
  });
});

/** A host whose gathering round trip fails, dropping the connection when `lost`. */
class UnreadableHost extends FakeHost {
  constructor(private readonly lost: boolean) {
    super();
  }

  override async exec(script: string) {
    if (/echo '@@hoist-[0-9a-f]+ begin /.test(script)) {
      if (this.lost) this.isClosed = true;
      throw new Error('reading the host failed');
    }
    return super.exec(script);
  }
}

/** A host where hoist's drain record can't be written, or that goes away while it is. */
class ReadOnlyHost extends FakeHost {
  constructor(private readonly lost = false) {
    super();
  }

  override async upload(): Promise<void> {
    if (this.lost) this.isClosed = true;
    throw new Error(this.lost ? 'connection lost during a command' : 'read-only file system');
  }
}

describe('HostRun: the states a run goes through', () => {
  const hook = (run: string): Hook => ({ run, on: 'host', timeout: 5 });

  test('a refused host key fails the host while connecting; a refused connection leaves it unreachable', async () => {
    const key = await run([task('a', { change: 'x' })], new FakeHost(), { connecting: Promise.reject(new HostKeyError('h1: host key mismatch')) });
    assert.deepEqual([key.status, key.reason], ['failed', 'host-key']);
    assert.equal(pathOf(key), 'new → connecting → failed');
    const refused = await run([task('a', { change: 'x' })], new FakeHost(), { connecting: Promise.reject(new Error('connect ECONNREFUSED')) });
    assert.equal(refused.status, 'unreachable');
    assert.equal(pathOf(refused), 'new → connecting → unreachable');
  });

  test("a host that can't be read fails while planning, or is unreachable when the read lost it", async () => {
    const failed = await run([task('a', { change: 'change-a' })], new UnreadableHost(false));
    assert.equal(failed.status, 'failed');
    assert.match(failed.error!, /reading the host failed/);
    assert.equal(pathOf(failed), 'new → connecting → planning → failed');
    const lost = await run([task('a', { change: 'change-a' })], new UnreadableHost(true));
    assert.equal(lost.status, 'unreachable');
    assert.equal(pathOf(lost), 'new → connecting → planning → unreachable');
  });

  test('--lock-wait takes the lock before the host is read, even when nothing changes', async () => {
    const idle = new FakeHost();
    const r = await run([task('a', {})], idle, { lockWait: 30 });
    assert.equal(r.status, 'ok');
    assert.equal(idle.locks, 1);
    assert.equal(pathOf(r), 'new → connecting → locking → planning → applying → done');
    const hooked = new FakeHost();
    const h = await run([task('a', { change: 'change-a' })], hooked, { lockWait: 30, before: [hook('drain')], after: [hook('uncordon')] });
    assert.deepEqual(commands(hooked), ['drain', 'change-a', 'uncordon']);
    assert.equal(pathOf(h), 'new → connecting → locking → planning → recording drain → draining → applying → undraining → done');
    const busy = new FakeHost();
    busy.lockResult = { busy: 'ops@ctl pid 42' };
    const b = await run([task('a', { change: 'change-a' })], busy, { lockWait: 1 });
    assert.match(b.error!, /locked by another hoist run/);
    assert.equal(pathOf(b), 'new → connecting → locking → failed');
  });

  test('--lock-wait: a debt is paid, then the restart turn is waited for', async () => {
    const state = mkdtempSync(path.join(os.tmpdir(), 'hoist-drain-'));
    const first = new FakeHost();
    first.failing = /uncordon/;
    await run([task('a', { change: 'change-a' })], first, { state, before: [hook('drain')], after: [hook('uncordon')] });
    const host = new FakeHost();
    const r = await run([task('restart', { change: 'restart', disruptive: true })], host, {
      state,
      lockWait: 30,
      after: [hook('uncordon')],
      gate: new RestartGate(1),
    });
    assert.equal(r.status, 'changed', r.error);
    assert.deepEqual(commands(host), ['uncordon', 'restart', 'uncordon']);
    assert.equal(pathOf(r), 'new → connecting → locking → planning → paying debt → waiting turn → applying → undraining → done');
    const turn = await run([task('restart', { change: 'restart', disruptive: true })], new FakeHost(), { lockWait: 30, gate: new RestartGate(1) });
    assert.equal(pathOf(turn), 'new → connecting → locking → planning → waiting turn → applying → done');
  });

  test('the whole way: a debt paid, a turn, the drain, the change, the undrain', async () => {
    const state = mkdtempSync(path.join(os.tmpdir(), 'hoist-drain-'));
    const first = new FakeHost();
    first.failing = /uncordon/;
    await run([task('a', { change: 'change-a' })], first, { state, before: [hook('drain')], after: [hook('uncordon')] });
    const host = new FakeHost();
    const r = await run([task('restart', { change: 'restart', disruptive: true })], host, {
      state,
      before: [hook('drain')],
      after: [hook('uncordon')],
      gate: new RestartGate(1),
    });
    assert.equal(r.status, 'changed', r.error);
    assert.deepEqual(commands(host), ['uncordon', 'drain', 'restart', 'uncordon']);
    assert.equal(pathOf(r), 'new → connecting → planning → locking → paying debt → waiting turn → recording drain → draining → applying → undraining → done');
  });

  test('an owed hook that fails again stops the host while it pays the debt', async () => {
    const state = mkdtempSync(path.join(os.tmpdir(), 'hoist-drain-'));
    const first = new FakeHost();
    first.failing = /uncordon/;
    await run([task('a', { change: 'change-a' })], first, { state, before: [hook('drain')], after: [hook('uncordon')] });
    const again = new FakeHost();
    again.failing = /uncordon/;
    const r = await run([task('a', { change: 'change-a' })], again, { state, before: [hook('drain')], after: [hook('uncordon')] });
    assert.match(r.error!, /owed after_host hook failed/);
    assert.deepEqual(commands(again), ['uncordon']);
    assert.equal(pathOf(r), 'new → connecting → planning → locking → paying debt → failed');
  });

  test("a drain that can't be recorded runs no hook; a failed drain without after_host hooks ends there", async () => {
    const readOnly = new ReadOnlyHost();
    const r = await run([task('a', { change: 'change-a' })], readOnly, { before: [hook('drain')], after: [hook('uncordon')] });
    assert.match(r.error!, /could not record the drain on the host, before_host hooks not run: read-only file system/);
    assert.deepEqual(commands(readOnly), []);
    assert.equal(pathOf(r), 'new → connecting → planning → locking → recording drain → failed');
    const gone = await run([task('a', { change: 'change-a' })], new ReadOnlyHost(true), { before: [hook('drain')], after: [hook('uncordon')] });
    assert.equal(gone.status, 'unreachable');
    assert.equal(pathOf(gone), 'new → connecting → planning → locking → recording drain → unreachable');
    const refusing = new FakeHost();
    refusing.failing = /drain/;
    const d = await run([task('a', { change: 'change-a' })], refusing, { before: [hook('drain')] });
    assert.deepEqual(commands(refusing), ['drain']);
    assert.equal(pathOf(d), 'new → connecting → planning → locking → recording drain → draining → failed');
  });
});

describe('HostRun: a host that will change nothing is neither drained nor counted in a rolling restart', () => {
  test('a task that cannot plan: no turn taken, no hook, the others keep restarting', async () => {
    const gate = new RestartGate(1);
    const broken = new FakeHost('h1');
    const other = new FakeHost('h2');
    const hooks = { before: [{ run: 'drain', on: 'host' as const, timeout: 5 }], after: [{ run: 'uncordon', on: 'host' as const, timeout: 5 }] };
    const [a, b] = await Promise.all([
      run([task('restart', { change: 'restart', disruptive: true }), task('module', { planError: 'no such kernel module' })], broken, {
        gate,
        name: 'h1',
        ...hooks,
      }),
      run([task('restart', { change: 'restart', disruptive: true, delayMs: 20 })], other, { gate, name: 'h2', ...hooks }),
    ]);
    assert.equal(a.status, 'failed');
    assert.equal(a.stillDrained, undefined);
    assert.deepEqual(
      commands(broken).filter((c) => /drain|uncordon|restart/.test(c)),
      [],
      'nothing ran on the host whose plan failed',
    );
    assert.equal(b.status, 'changed', b.error);
    assert.deepEqual(
      commands(other).filter((c) => /drain|uncordon|restart/.test(c)),
      ['drain', 'restart', 'uncordon'],
    );
  });

  // Last in the file: the interrupt it requests is for the whole process.
  test('an interrupt while a host waits its turn: it is skipped, never drained, and the roll-out is not called failed', async () => {
    const gate = new RestartGate(1);
    const holder = gate.enter();
    const host = new FakeHost('h1');
    const waiting = run([task('restart', { change: 'restart', disruptive: true })], host, {
      gate,
      name: 'h1',
      before: [{ run: 'drain', on: 'host', timeout: 5 }],
      after: [{ run: 'uncordon', on: 'host', timeout: 5 }],
    });
    await new Promise((r) => setTimeout(r, 50));
    interruption.request('SIGINT');
    (await holder)();
    const r = await waiting;
    assert.equal(r.status, 'skipped', r.error);
    assert.equal(r.stillDrained, undefined);
    assert.equal(pathOf(r), 'new → connecting → planning → locking → waiting turn → interrupted');
    assert.deepEqual(
      commands(host).filter((c) => /drain|restart/.test(c)),
      [],
    );
    assert.ok(!host.ran.some((c) => c.includes('/var/lib/hoist/drained.json')), 'no drain record on the host');
    const journal = path.join(process.env.XDG_STATE_HOME!, 'hoist', 'drained');
    assert.ok(!existsSync(journal) || readdirSync(journal).length === 0, 'no drain record on the controller');
  });
});

// After the interrupt above, for the same reason: it stays requested.
describe('HostRun: every move of the state table is made by some run of this file', () => {
  test('a host started after the interrupt stops while connecting, before it touches anything', async () => {
    const host = new FakeHost();
    const r = await run([task('a', { change: 'change-a' })], host);
    assert.deepEqual([r.status, r.reason], ['skipped', 'interrupted']);
    assert.equal(pathOf(r), 'new → connecting → interrupted');
    assert.deepEqual(host.ran, []);
  });

  test('every move but a stop is made by some run of this file; stops are made from most states', () => {
    const table = Object.entries(TRANSITIONS).flatMap(([from, tos]) => tos.map((to) => `${from} → ${to}`));
    const untried = table.filter((m) => !moves.has(m));
    // Any step may stop its host: an unexpected error fails it, or leaves it unreachable when the
    // connection is gone, and an interrupt stops it before its next step (run()'s catch and
    // stopIfInterrupted). An interrupt is for the whole process and is never taken back, so this file
    // makes one mid-run (while waiting for a turn) and one before a host starts; the same check at the
    // other steps is covered by test/integration/live-safety.test.ts.
    assert.deepEqual(
      untried.filter((m) => !/→ (failed|unreachable|interrupted)$/.test(m)),
      [],
    );
    const stops = table.filter((m) => /→ (failed|unreachable|interrupted)$/.test(m));
    assert.ok(moves.has('waiting turn → interrupted') && moves.has('connecting → interrupted'));
    assert.ok(stops.filter((m) => moves.has(m)).length >= 16, `stops made: ${stops.filter((m) => moves.has(m)).join(', ')}`);
  });
});
