import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { HostStates, TRANSITIONS, endingOf, type HostState } from '../../src/runner/host-state.js';
import { InternalError } from '../../src/util/errors.js';

/**
 * The flows of docs/architecture.md, written out: every move a host's run may make is on one of
 * these, and the table allows no move that is on none of them.
 */
const flows: { why: string; path: HostState[] }[] = [
  { why: 'nothing to change', path: ['new', 'connecting', 'planning', 'applying', 'done'] },
  {
    why: 'a change wrapped in hooks, restarting a running service',
    path: ['new', 'connecting', 'planning', 'locking', 'paying debt', 'waiting turn', 'recording drain', 'draining', 'applying', 'undraining', 'done'],
  },
  { why: 'planned again under the lock', path: ['new', 'connecting', 'planning', 'locking', 'planning', 'applying', 'rolling back', 'undraining', 'done'] },
  {
    why: '--lock-wait: the lock first',
    path: ['new', 'connecting', 'locking', 'planning', 'paying debt', 'recording drain', 'draining', 'undraining', 'failed'],
  },
  { why: 'lock taken, straight to applying', path: ['new', 'connecting', 'planning', 'locking', 'applying', 'rolling back', 'failed'] },
  { why: '--lock-wait, a restart turn', path: ['new', 'connecting', 'locking', 'planning', 'waiting turn', 'applying', 'done'] },
  { why: '--lock-wait, hooks', path: ['new', 'connecting', 'locking', 'planning', 'recording drain', 'draining', 'applying', 'done'] },
  { why: 'lock taken, hooks', path: ['new', 'connecting', 'planning', 'locking', 'recording drain', 'draining', 'applying', 'undraining', 'interrupted'] },
  { why: 'lock taken, a turn', path: ['new', 'connecting', 'planning', 'locking', 'waiting turn', 'skipped'] },
  { why: 'a debt paid, nothing else drained', path: ['new', 'connecting', 'planning', 'locking', 'paying debt', 'applying', 'done'] },
  { why: 'a debt, no lock (--lock-wait)', path: ['new', 'connecting', 'locking', 'planning', 'paying debt', 'waiting turn', 'applying', 'unreachable'] },
  { why: '--lock-wait, nothing to change', path: ['new', 'connecting', 'locking', 'planning', 'applying', 'done'] },
];

/** Every ending but done and skipped can end every working state: any step fails, loses its host, or is interrupted. */
const stopped = ['failed', 'unreachable', 'interrupted'] as const;
const working = (Object.keys(TRANSITIONS) as HostState[]).filter((s) => s !== 'new' && TRANSITIONS[s].length > 0);

const edges = (path: HostState[]) => path.slice(1).map((to, i) => `${path[i]} → ${to}`);

describe('host states', () => {
  test('every flow is accepted move by move, and remembered', () => {
    for (const { why, path } of flows) {
      const s = new HostStates('h1');
      for (const next of path.slice(1)) s.to(next);
      assert.deepEqual(s.history, path, why);
      assert.equal(s.current, path[path.length - 1]);
      assert.ok(s.visited('connecting'), why);
      assert.equal(s.visited('draining'), path.includes('draining'), why);
    }
  });

  test('the table allows exactly the moves of the flows, and a stop from every working state', () => {
    const expected = new Set([...flows.flatMap((f) => edges(f.path)), ...working.flatMap((s) => stopped.map((e) => `${s} → ${e}`))]);
    const table = new Set(Object.entries(TRANSITIONS).flatMap(([from, tos]) => tos.map((to) => `${from} → ${to}`)));
    assert.deepEqual(
      [...table].filter((e) => !expected.has(e)),
      [],
      'moves the table allows that no flow makes',
    );
    assert.deepEqual(
      [...expected].filter((e) => !table.has(e)),
      [],
      'moves of the flows the table refuses',
    );
  });

  test('any other move is an internal error that names the host and both states, and leaves the state as it was', () => {
    const all = Object.keys(TRANSITIONS) as HostState[];
    let refused = 0;
    for (const from of all) {
      for (const to of all) {
        if (TRANSITIONS[from].includes(to)) continue;
        // A machine standing in `from`, reached along the first flow that passes through it.
        const s = new HostStates('h7');
        const flow = flows.find((f) => f.path.includes(from))?.path ?? [...flows[0].path.slice(0, 2), from];
        for (const next of flow.slice(1, flow.indexOf(from) + 1)) s.to(next);
        assert.equal(s.current, from);
        assert.throws(
          () => s.to(to),
          (e: unknown) => e instanceof InternalError && e.message === `internal error: h7 cannot go from ${from} to ${to}`,
        );
        assert.equal(s.current, from);
        refused++;
      }
    }
    assert.ok(refused > 100, `${refused} moves refused`);
  });

  test('nothing follows an ending; only waiting for a turn ends skipped; only applying or undraining ends done', () => {
    for (const end of ['done', 'failed', 'unreachable', 'skipped', 'interrupted'] as const) assert.deepEqual(TRANSITIONS[end], []);
    assert.deepEqual(
      (Object.keys(TRANSITIONS) as HostState[]).filter((s) => TRANSITIONS[s].includes('skipped')),
      ['waiting turn'],
    );
    assert.deepEqual((Object.keys(TRANSITIONS) as HostState[]).filter((s) => TRANSITIONS[s].includes('done')).sort(), ['applying', 'undraining']);
  });

  test("a report's status and reason name the ending", () => {
    assert.equal(endingOf('ok'), 'done');
    assert.equal(endingOf('changed'), 'done');
    assert.equal(endingOf('failed'), 'failed');
    assert.equal(endingOf('failed', 'locked'), 'failed');
    assert.equal(endingOf('unreachable'), 'unreachable');
    assert.equal(endingOf('skipped'), 'skipped');
    assert.equal(endingOf('skipped', 'interrupted'), 'interrupted');
    assert.equal(endingOf('failed', 'interrupted'), 'interrupted');
  });
});
