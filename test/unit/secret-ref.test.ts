import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadPlaybook } from '../../src/playbook/playbook.js';
import { resolvePlay } from '../../src/runner/play.js';
import { buildInventory } from '../../src/inventory/inventory.js';
import { parseToml } from '../../src/util/toml-file.js';
import { extraVarLayers } from '../../src/cli/extra-vars.js';
import { taskCatalog } from '../../src/cli/catalog.js';
import { redact } from '../../src/util/redact.js';
import { renderAllHostsToml, renderConfig } from '../../src/modules/containerd/render.js';
import type { RuntimeConfig } from '../../src/modules/containerd/config/types.js';

const catalog = taskCatalog();
const dir = mkdtempSync(path.join(os.tmpdir(), 'hoist-secretref-'));
const PLAYBOOK = `[defaults]\ncontainerd_version = "2.1.9"\n[[tasks]]\ntask = "containerd_artifacts"\n[[tasks]]\ntask = "containerd_install"\n[[tasks]]\ntask = "containerd_config"\n`;

async function resolve(password: string, hosts = 1, extra: string[] = []) {
  const pbFile = path.join(dir, 'play.toml');
  const invFile = path.join(dir, `inv-${Math.random().toString(36).slice(2)}.toml`);
  writeFileSync(pbFile, PLAYBOOK);
  const inv = [
    '[defaults.vars.registries."registry.example:5000"]',
    'username = "ci"',
    `password = ${password}`,
    '',
    ...Array.from({ length: hosts }, (_, i) => `[hosts.h${i}]\naddress = "10.0.0.${i + 1}"`),
  ].join('\n');
  writeFileSync(invFile, inv);
  const pb = await loadPlaybook(pbFile, catalog);
  const play = await resolvePlay(buildInventory(parseToml(invFile, inv)), pb, await extraVarLayers(extra), { catalog });
  return { invFile, play };
}

function runtimeOf(play: Awaited<ReturnType<typeof resolvePlay>>): RuntimeConfig {
  const settings = play[0].tasks.find((t) => t.settings)?.settings as { runtime: RuntimeConfig } | undefined;
  assert.ok(settings, 'containerd settings');
  return settings.runtime;
}

test('a password from the environment, a 0600 file or a command reaches the config and is a secret', async () => {
  process.env.HOIST_TEST_REGISTRY_PW = 'from-env-Pw"1';
  writeFileSync(path.join(dir, 'pw'), 'from-file-Pw\\2\n');
  chmodSync(path.join(dir, 'pw'), 0o600);
  for (const [ref, value] of [
    ['{ env = "HOIST_TEST_REGISTRY_PW" }', 'from-env-Pw"1'],
    [`{ file = "${path.join(dir, 'pw')}" }`, 'from-file-Pw\\2'],
    ['{ command = "printf \'%s\\\\n\' from-command-Pw3" }', 'from-command-Pw3'],
  ] as const) {
    const { play } = await resolve(ref);
    const rt = runtimeOf(play);
    const text =
      renderAllHostsToml(rt)
        .map((f) => f.text)
        .join('\n') + renderConfig(rt).text;
    assert.ok(
      text.includes(Buffer.from(`ci:${value}`).toString('base64')) || text.includes(JSON.stringify(value).slice(1, -1)),
      `${ref}: the value reaches a registry file`,
    );
    assert.equal(redact(`x ${value} y`), 'x *** y', `${ref}: registered as a secret`);
  }
});

test('a command runs once per run however many hosts use it', async () => {
  const count = path.join(dir, 'count');
  writeFileSync(count, '');
  await resolve(`{ command = "echo run >> ${count}; echo counted-Pw" }`, 5);
  assert.equal(readFileSync(count, 'utf8'), 'run\n');
});

test('a reference that fails is bad input naming file:line, key and the reference, never a value', async () => {
  delete process.env.HOIST_TEST_MISSING;
  writeFileSync(path.join(dir, 'open'), 'world-readable-Pw\n');
  chmodSync(path.join(dir, 'open'), 0o644);
  const cases: [string, RegExp][] = [
    ['{ env = "HOIST_TEST_MISSING" }', /environment variable HOIST_TEST_MISSING is not set/],
    [`{ file = "${path.join(dir, 'open')}" }`, /is readable by others \(mode 0644\); run: chmod 600/],
    [`{ file = "${path.join(dir, 'absent')}" }`, /can't be read: ENOENT/],
    ['{ command = "echo vault: permission denied >&2; exit 2" }', /command "echo vault: .*" exited with 2: vault: permission denied/],
    ['{ vault = "x" }', /expected a secret reference: \{ env = "NAME" \}, \{ file = "path" \} or \{ command = "…" \}, got a table with keys \["vault"\]/],
  ];
  for (const [ref, re] of cases) {
    const err = await resolve(ref).then(
      () => assert.fail(`${ref} resolved`),
      (e: Error) => e.message,
    );
    assert.match(err, re);
    assert.match(err, /inv-\w+\.toml:3 \(registries\.registry\.example:5000\.password\)/, err);
    assert.doesNotMatch(err, /world-readable-Pw/);
  }
});

test('-e @file merges into a table key by key: a password reference for one registry keeps the others', async () => {
  const extra = path.join(dir, 'secrets.toml');
  process.env.HOIST_TEST_REGISTRY_PW2 = 'merged-Pw';
  writeFileSync(extra, '[registries."registry.example:5000"]\npassword = { env = "HOIST_TEST_REGISTRY_PW2" }\n');
  const { play } = await resolve('"written-in-inventory"', 1, [`@${extra}`]);
  const rt = runtimeOf(play);
  const reg = rt.registries['registry.example:5000'];
  assert.ok(reg?.auth && reg.auth.kind === 'basic');
  assert.equal(reg.auth.username, 'ci', 'the username from the inventory stays');
  assert.equal(reg.auth.password.reveal(), 'merged-Pw');
});
