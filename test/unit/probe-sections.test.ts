import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseSections, sectionsScript, type SectionPlan } from '../../src/facts/probe.js';

const MARK = '@@hoist-0123456789abcdef';

/** The script as a host runs it: bash reading it on stdin. */
function run(plan: SectionPlan, atOnce?: number) {
  const out = execFileSync('bash', ['-s'], { input: sectionsScript(MARK, plan, atOnce), encoding: 'utf8', timeout: 20_000, maxBuffer: 64 << 20 });
  return parseSections(out, MARK);
}

const dir = () => mkdtempSync(path.join(os.tmpdir(), 'hoist-sections-'));
/** Waits up to 5 s for a file; says whether it came. */
const waitFor = (f: string) => `for i in $(seq 500); do [ -e ${f} ] && { echo came; exit 0; }; sleep 0.01; done; echo never`;

test('sections side by side: each output and exit code as if run in turn, stderr folded in, stdin empty', () => {
  const r = run({
    together: new Map([
      ['a', 'echo one; echo two >&2; exit 3'],
      // An unbalanced case pattern, which bash gets wrong inside <( ) text on older versions.
      ['b', 'case x in x) echo matched;; *) echo other;; esac'],
      ['c', 'read -r l; echo "stdin:${l:-empty}"'],
      ['d', 'seq 1 20000 | tail -1'],
    ]),
  });
  assert.deepEqual(r.get('a'), { out: 'one\ntwo', code: 3 });
  assert.deepEqual(r.get('b'), { out: 'matched', code: 0 });
  assert.deepEqual(r.get('c'), { out: 'stdin:empty', code: 0 });
  assert.deepEqual(r.get('d'), { out: '20000', code: 0 });
});

test('a section early in the order runs while a later one does', () => {
  const d = dir();
  const r = run({
    together: new Map([
      ['first', waitFor(`${d}/late`)],
      ['late', `touch ${d}/late; echo made`],
    ]),
  });
  assert.equal(r.get('first')?.out, 'came');
  assert.equal(r.get('late')?.out, 'made');
});

test('a large output is read whole and in order, the sections after it too', () => {
  const r = run({
    together: new Map([
      ['big', 'seq 1 200000'],
      ['after', 'echo small'],
    ]),
  });
  const big = r.get('big')!.out.split('\n');
  assert.equal(big.length, 200000);
  assert.equal(big[199999], '200000');
  assert.equal(r.get('after')?.out, 'small');
});

test('before runs ahead of every section, after once all have ended; groups beyond the bound wait for the previous group', () => {
  const d = dir();
  const r = run(
    {
      before: [['b0', `touch ${d}/before; echo b0`]],
      together: new Map([
        ['t0', `[ -e ${d}/before ] && echo saw-before; [ -e ${d}/g2 ] && echo saw-g2; sleep 0.2; touch ${d}/t0`],
        ['t1', `sleep 0.2; touch ${d}/t1`],
        // Second group (bound 2): starts only after t0 and t1 have ended.
        ['t2', `[ -e ${d}/t0 ] && [ -e ${d}/t1 ] && echo after-group-1; touch ${d}/g2; sleep 0.2; touch ${d}/t2`],
      ]),
      after: [['a0', `[ -e ${d}/t2 ] && echo saw-t2`]],
    },
    2,
  );
  assert.equal(r.get('b0')?.out, 'b0');
  assert.equal(r.get('t0')?.out, 'saw-before');
  assert.equal(r.get('t2')?.out, 'after-group-1');
  assert.equal(r.get('a0')?.out, 'saw-t2');
});
