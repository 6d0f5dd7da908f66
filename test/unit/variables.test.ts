import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadPlaybook } from '../../src/playbook/playbook.js';
import { resolvePlay } from '../../src/runner/play.js';
import { templateNames } from '../../src/runner/variables.js';
import { buildInventory } from '../../src/inventory/inventory.js';
import { parseToml } from '../../src/util/toml-file.js';
import { extraVarLayers } from '../../src/cli/extra-vars.js';
import { taskCatalog } from '../../src/cli/catalog.js';
import { maskVariables, redact } from '../../src/util/redact.js';

const catalog = taskCatalog();

async function files(pb: string, inv: string): Promise<{ pbFile: string; invFile: string }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'hoist-vars-'));
  const pbFile = path.join(dir, 'play.toml');
  const invFile = path.join(dir, 'inv.toml');
  await writeFile(pbFile, pb);
  await writeFile(invFile, inv);
  return { pbFile, invFile };
}

const CONTAINERD = `[defaults]\ncontainerd_version = "1.7.24"\n[[tasks]]\ntask = "containerd_artifacts"\n[[tasks]]\ntask = "containerd_install"\n`;

test('every problem at once, each with file:line (key), the layer that set it and the hosts', async () => {
  const inv = `[defaults.vars]\nsnapshoter = "native"\n\n[groups.w]\nhosts = ["a", "b"]\n[groups.w.vars]\nregistries = { "docker.io" = { mirrors = ["mirror.local"] } }\n\n[hosts.a]\naddress = "10.0.0.1"\n[hosts.a.vars]\noom_score = 5000\n\n[hosts.b]\naddress = "10.0.0.2"\n`;
  const { pbFile, invFile } = await files(CONTAINERD, inv);
  const pb = await loadPlaybook(pbFile, catalog);
  const err = await resolvePlay(buildInventory(parseToml(invFile, inv)), pb, await extraVarLayers(['release_arch="arm32"']), { catalog }).then(
    () => assert.fail('resolved'),
    (e: Error) => e.message.split('\n'),
  );
  assert.deepEqual(err, [
    `${invFile}:2 (snapshoter): unknown variable "snapshoter"; did you mean "snapshotter"? (set in inventory defaults) [every host]`,
    `${invFile}:12 (oom_score): 5000 is out of range -1000..1000 (set in inventory host "a") [host a]`,
    // Each variable's own problems come in the order the module declares them, registries' with the rest.
    `${invFile}:7 (registries.docker.io.mirrors[0]): "mirror.local" has no scheme (http:// or https://) (set in inventory group "w") [every host]`,
    `-e release_arch=… (release_arch): expected one of "amd64", "arm64", got "arm32"; did you mean "arm64"? [every host]`,
  ]);
});

test('-e names a variable whole: a fragment of a parameter name is no declaration', async () => {
  const { pbFile } = await files(
    `[defaults]\nverify_pull_test = []\n[[tasks]]\ntask = "ping"\n[[tasks]]\ntask = "command"\n[tasks.params]\ncmd = "echo {{ verify_pull_test }}"\n`,
    '',
  );
  const pb = await loadPlaybook(pbFile, catalog);
  const inv = buildInventory(parseToml('inv.toml', '[hosts.a]\naddress = "10.0.0.1"\n'));
  await assert.rejects(
    resolvePlay(inv, pb, await extraVarLayers(['pull=1']), { catalog }),
    /\(pull\): unknown variable "pull"; a playbook that uses it declares it in its \[defaults\]/,
  );
  assert.equal((await resolvePlay(inv, pb, await extraVarLayers(['verify_pull_test=["x"]']), { catalog })).length, 1);
});

test('a playbook variable nothing reads, one letter off a module variable, is a typo', async () => {
  const { pbFile } = await files(`[defaults]\ncontainerd_version = "1.7.24"\nallow_downgrad = true\n[[tasks]]\ntask = "ping"\n`, '');
  const pb = await loadPlaybook(pbFile, catalog);
  const inv = buildInventory(parseToml('inv.toml', '[hosts.a]\naddress = "10.0.0.1"\n'));
  await assert.rejects(
    resolvePlay(inv, pb, [], { catalog }),
    new RegExp(`${pbFile.replace(/[.]/g, '\\.')}:3 \\(allow_downgrad\\): "allow_downgrad" is read by no task; did you mean "allow_downgrade"\\?`),
  );
});

test("a module's required variables are demanded only of plays that use its tasks", async () => {
  const inv = buildInventory(parseToml('inv.toml', '[hosts.a]\naddress = "10.0.0.1"\n'));
  const ping = await loadPlaybook((await files('[[tasks]]\ntask = "ping"\n', '')).pbFile, catalog);
  assert.equal((await resolvePlay(inv, ping, [], { catalog })).length, 1);
  const ctd = await loadPlaybook((await files('[[tasks]]\ntask = "containerd_artifacts"\n', '')).pbFile, catalog);
  await assert.rejects(resolvePlay(inv, ctd, [], { catalog }), /missing required variable "containerd_version"/);
});

test('module settings reach the tasks of the module only', async () => {
  const inv = buildInventory(parseToml('inv.toml', '[hosts.a]\naddress = "10.0.0.1"\n[hosts.a.vars]\nrelease_arch = "arm64"\n'));
  const pb = await loadPlaybook((await files(`${CONTAINERD}[[tasks]]\ntask = "ping"\n`, '')).pbFile, catalog);
  const [play] = await resolvePlay(inv, pb, [], { catalog });
  const names = (settings: unknown) =>
    settings && typeof settings === 'object' && 'artifacts' in settings && Array.isArray(settings.artifacts)
      ? settings.artifacts.map((a: { name: string }) => a.name)
      : settings;
  assert.deepEqual(names(play.tasks[0].settings), ['cri-containerd-cni-1.7.24-linux-arm64.tar.gz']);
  assert.equal(play.tasks[2].settings, undefined);
});

test('needs and provides are checked when the playbook loads', async () => {
  const { pbFile } = await files(
    '[defaults]\ncontainerd_version = "1.7.24"\n[[tasks]]\ntask = "containerd_install"\n[[tasks]]\ntask = "containerd_artifacts"\n',
    '',
  );
  await assert.rejects(
    loadPlaybook(pbFile, catalog),
    /play\.toml:3 \(tasks\[0\]\): task "containerd_install" \(containerd_install\) needs the release artifacts staged on the host, which no earlier task provides: move the "containerd_artifacts" task before it/,
  );
  const alone = (await files('[defaults]\ncontainerd_version = "1.7.24"\n[[tasks]]\ntask = "containerd_install"\n', '')).pbFile;
  await assert.rejects(loadPlaybook(alone, catalog), /add a containerd_artifacts task before it/);
});

test('template names are read whole, outside quotes, filters and attributes', () => {
  assert.deepEqual(templateNames('{{ a }}-{{ b.c | upper }} {% if d and not e %}{{ "f" }}{% endif %}{{ g | default("h") }}'), ['a', 'b', 'd', 'e', 'g']);
});

test('a setting the module rejects is named as the operator wrote it', async () => {
  const inv = buildInventory(parseToml('inv.toml', '[hosts.a]\naddress = "10.0.0.1"\n'));
  const pb = await loadPlaybook((await files(CONTAINERD, '')).pbFile, catalog);
  await assert.rejects(
    resolvePlay(inv, pb, await extraVarLayers(['release_base_url="mirror.local"']), { catalog }),
    /\(release_base_url\): release_base_url "mirror\.local" has no scheme/,
  );
  await assert.rejects(
    resolvePlay(inv, pb, await extraVarLayers(['containerd_version="1.7"']), { catalog }),
    /\(containerd_version\): "1\.7" names a containerd line, not a release: did you mean 1\.7\.x/,
  );
});

test('one inventory for a site: variables another playbook beside this one or the inventory declares pass; others are still unknown, with did-you-mean', async () => {
  const inv = `[defaults]\ndeclare = ["rack"]\n[defaults.vars]\nnode_role = "gpu"\nrack = "r1"\n[hosts.a]\naddress = "10.0.0.1"\n[hosts.a.vars]\nnode_rol = "x"\n`;
  const { pbFile, invFile } = await files('[[tasks]]\ntask = "ping"\n', inv);
  const loaded = buildInventory(parseToml(invFile, inv));
  const pb = await loadPlaybook(pbFile, catalog);
  // Without the playbook that reads node_role, node_role is unknown too.
  await assert.rejects(resolvePlay(loaded, pb, [], { catalog }), (e: Error) => /unknown variable "node_role"/.test(e.message) && !/"rack"/.test(e.message));
  await writeFile(path.join(path.dirname(pbFile), 'gpu.toml'), '[[tasks]]\ntask = "command"\n[tasks.params]\ncmd = "echo {{ node_role }}"\n');
  await writeFile(path.join(path.dirname(pbFile), 'broken.toml'), 'not [ toml');
  const err = await resolvePlay(loaded, pb, [], { catalog }).then(
    () => assert.fail('resolved'),
    (e: Error) => e.message.split('\n'),
  );
  assert.deepEqual(err, [`${invFile}:9 (node_rol): unknown variable "node_rol"; did you mean "node_role"? (set in inventory host "a") [host a]`]);
  const ok = buildInventory(parseToml(invFile, inv.replace('node_rol = "x"\n', '')));
  assert.equal((await resolvePlay(ok, pb, [], { catalog })).length, 1);
  assert.deepEqual(ok.declared, ['rack']);
});

test('a mistake in one registry leaves the others checked, and their credential headers masked', async () => {
  const inv = [
    '[defaults.vars.registries."ok.example.com"]',
    'client_cert = "/tmp/hoist-test-client.pem"',
    'mirrors = [{ url = "https://m.example.com", headers = { "X-Api-Key" = "SEKRETKEY1234", Authorization = "Bearer TOKVALUE9999" } }]',
    '[defaults.vars.registries."bad.example.com"]',
    'skip_verfy = true',
    '[hosts.a]',
    'address = "10.0.0.1"',
    '',
  ].join('\n');
  const { pbFile, invFile } = await files(CONTAINERD, inv);
  const pb = await loadPlaybook(pbFile, catalog);
  const err = await resolvePlay(buildInventory(parseToml(invFile, inv)), pb, [], { catalog }).then(
    () => assert.fail('resolved'),
    (e: Error) => e.message.split('\n'),
  );
  assert.deepEqual(err, [
    `${invFile}:5 (registries.bad.example.com.skip_verfy): unknown key "skip_verfy"; did you mean "skip_verify"? (set in inventory defaults) [host a]`,
    // The good registry's own cross-key problem is still found beside the bad one's typo.
    `${invFile}:1 (registries.ok.example.com): client_cert and client_key must be set together (set in inventory defaults) [host a]`,
  ]);
  // Registered as secrets before any check, although the settings never took the registries.
  assert.equal(redact('key SEKRETKEY1234, token Bearer TOKVALUE9999'), 'key ***, token ***');
  const shown = JSON.stringify(maskVariables({ registries: { r: { mirrors: [{ headers: { 'X-Api-Key': 'x1', Cookie: 'c1', 'X-Trace': 'keep' } }] } } }));
  assert.equal(shown, '{"registries":{"r":{"mirrors":[{"headers":{"X-Api-Key":"***","Cookie":"***","X-Trace":"keep"}}]}}}');
});
