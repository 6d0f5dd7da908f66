import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { assertOutputSchema } from '../support/output-schema.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.ts');
const dir = mkdtempSync(path.join(os.tmpdir(), 'hoist-json-'));
const inv = path.join(dir, 'inv.toml');
writeFileSync(
  inv,
  `[defaults]\nuser = "deploy"\nbecome = true\n[defaults.vars]\ncontainerd_version = "2.1.9"\n[groups.w]\nhosts = ["a", "b"]\nvars = { registries = { "r.example:5000" = { username = "u", password = "Hunter2-secret" } } }\n[hosts.a]\naddress = "10.0.0.1"\n[hosts.b]\naddress = "10.0.0.2"\n`,
);

function hoist(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], { encoding: 'utf8', env: { ...process.env, HOIST_LOG: 'off', NO_COLOR: '1' } });
  return { code: r.status, out: r.stdout, err: r.stderr, json: () => JSON.parse(r.stdout) as Record<string, unknown> };
}

test('tasks, inventory and a refused run all print the one envelope the schema describes', () => {
  const tasks = hoist('tasks', '--json');
  assert.equal(tasks.code, 0);
  assertOutputSchema(tasks.json(), 'tasks');

  const list = hoist('inventory', '-i', inv, '-l', 'a:b', '--json');
  assert.equal(list.code, 0, list.err);
  assertOutputSchema(list.json(), 'inventory');
  assert.deepEqual(
    (list.json().hosts as { name: string }[]).map((h) => h.name),
    ['a', 'b'],
  );

  const host = hoist('inventory', '-i', inv, '--host', 'b', '--json');
  assertOutputSchema(host.json(), 'inventory --host');
  assert.ok(!host.out.includes('Hunter2-secret'), 'a password shown by inventory --host');
  const vars = (host.json().hosts as { variables: Record<string, { from: string }> }[])[0].variables;
  assert.equal(vars.registries.from, 'inventory group "w"');

  // Bad input: the error object is on stdout too, exit 1, nothing contacted.
  const bad = hoist('ping', '-i', inv, '--limit', 'nope', '--json');
  assert.equal(bad.code, 1);
  assertOutputSchema(bad.json(), 'ping with a bad --limit');
  assert.deepEqual(bad.json().error, { kind: 'input', message: `${inv}: no host or group named "nope"` });

  const forks = hoist('ping', '-i', inv, '--forks', 'abc', '--json');
  assert.equal(forks.code, 1);
  assertOutputSchema(forks.json(), '--forks abc');
});

test('the schema is strict: it refuses what hoist must never print', () => {
  const ok = { schemaVersion: 1, command: 'ping', exitCode: 0, playbook: 'ping', check: false, durationMs: 3, hosts: [] };
  assertOutputSchema(ok, 'minimal run');
  assert.throws(() => assertOutputSchema({ ...ok, schemaVersion: 2 }, 'x'), /schemaVersion/);
  assert.throws(() => assertOutputSchema({ ...ok, exitCode: 7 }, 'x'), /exitCode/);
  assert.throws(() => assertOutputSchema({ ...ok, extra: 1 }, 'x'), /additional/);
  assert.throws(() => assertOutputSchema({ ...ok, hosts: [{ name: 'h1' }] }, 'x'), /required/);
  assert.throws(
    () => assertOutputSchema({ schemaVersion: 1, command: 'ping', exitCode: 2, error: { kind: 'input', message: 'm' }, hosts: [] }, 'x'),
    /exitCode/,
  );
});

test('tasks NAME: typed parameters, defaults and an example that names every required one', () => {
  const r = hoist('tasks', 'file', '--json');
  const doc = (
    r.json().tasks as { name: string; params: { name: string; type: string; required: boolean; default?: unknown; description: string }[]; example: string }[]
  )[0];
  assert.equal(doc.name, 'file');
  assert.deepEqual(
    doc.params.find((p) => p.name === 'path'),
    { name: 'path', type: 'string', required: true, description: doc.params.find((p) => p.name === 'path')!.description },
  );
  assert.equal(doc.params.find((p) => p.name === 'mode')!.default, '0644');
  assert.match(doc.example, /^\[\[tasks\]\]\ntask = "file"\n\[tasks\.params\]\npath = /);
  const typo = hoist('tasks', 'fiel');
  assert.equal(typo.code, 1);
  assert.match(typo.err, /no task named "fiel"; did you mean "file"\?/);
});

test('a run of a playbook with hooks: the text plan lists each with its file and line, --json carries them as the schema says; a drained host is stillDrained', async () => {
  const { runEnvelope } = await import('../../src/output/json.js');
  const { formatPlan } = await import('../../src/output/format.js');
  const report = {
    playbook: 'drain',
    check: true,
    durationMs: 5,
    exitCode: 2,
    hooks: [
      { kind: 'before_host' as const, run: 'kubectl drain $HOIST_HOST', on: 'controller' as const, timeout: 600, file: '/pb/upgrade.toml', line: 14 },
      { kind: 'after_host' as const, run: 'kubectl uncordon $HOIST_HOST', on: 'controller' as const, timeout: 600, file: '/pb/site.toml', line: 3 },
    ],
    hosts: [{ name: 'a', address: '10.0.0.1', status: 'ok' as const, tasks: [], notes: ['STILL DRAINED: owes …'], stillDrained: 'owes …', durationMs: 1 }],
  };
  const env = runEnvelope('apply', report, true);
  assertOutputSchema(env, 'apply --check with hooks');
  assert.equal((env.hooks as { file: string }[])[0].file, '/pb/upgrade.toml');
  const text = formatPlan(report, false);
  assert.match(
    text,
    /HOOKS[^\n]*\nKIND +ON +RUN +FROM\nbefore_host +controller +kubectl drain \$HOIST_HOST +\/pb\/upgrade\.toml:14\nafter_host +controller +kubectl uncordon \$HOIST_HOST +\/pb\/site\.toml:3\n/,
  );
});
