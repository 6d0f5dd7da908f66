// download = "peers" on real hosts, as the operator logs in (deploy via the bastion, sudo): the
// release goes from the controller to the first host, and from host to host after that, over the
// fleet's own network. A host that holds a corrupted copy is caught by its receiver's sha256 check
// and passed over; nothing wrong is ever moved into place.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as fleet from '../fleet/fleet.js';
import { hoist, hoistJson, onHost, ROOT } from '../support/hoist.js';

const RESET = path.join(ROOT, 'playbooks', 'reset.toml');
const ARTIFACTS = '/var/lib/hoist/artifacts';
let info: fleet.FleetInfo;
let dir: string;

before(async () => {
  info = await fleet.info();
  dir = await mkdtemp(path.join(os.tmpdir(), 'hoist-fan-out-'));
});
after(async () => {
  // h1's corrupted copy must not serve a later test.
  await onHost(info, 'h1', `rm -f ${ARTIFACTS}/*`);
  await rm(dir, { recursive: true, force: true });
});

const version = () => info.releases.find((r) => r.kind === 'bundle' && r.containerd.startsWith('1.7'))!.containerd;

test('a serial roll-out copies the release host to host; a corrupted holder is refused by its receiver and passed over', async () => {
  const reset = await hoist(['apply', RESET, '-i', info.inventoryPath, '--yes']);
  assert.equal(reset.code, 0, reset.stdout + reset.stderr);
  for (const h of ['h1', 'h2', 'h3']) await onHost(info, h, `rm -rf ${ARTIFACTS}`);

  // After h1 has it, its copy is damaged (one byte), as a disk or a person might: h2 must not take it.
  const playbook = path.join(dir, 'rollout.toml');
  await writeFile(
    playbook,
    `name = "rollout"\nextends = ${JSON.stringify(path.join(ROOT, 'playbooks', 'containerd.toml'))}\nserial = 1\n\n` +
      `[[after_host]]\non = "host"\nrun = 'if [ "$HOIST_HOST" = h1 ]; then for f in ${ARTIFACTS}/*; do printf x | dd of="$f" bs=1 seek=4096 conv=notrunc status=none; done; fi'\n`,
  );
  const state = path.join(dir, 'state');
  const r = await hoistJson(['apply', playbook, '-i', info.inventoryPath, '-e', `containerd_version="${version()}"`, '-e', 'download=peers'], {
    XDG_STATE_HOME: state,
  });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.deepEqual(
    r.report.hosts.map((h) => h.status),
    ['changed', 'changed', 'changed'],
  );

  const logs = await readdir(path.join(state, 'hoist', 'logs'));
  assert.equal(logs.length, 1, logs.join(' '));
  const log = await readFile(path.join(state, 'hoist', 'logs', logs[0]), 'utf8');
  // h2 asked h1, refused what it sent, and was sent the file by the controller instead.
  assert.match(
    log,
    /\[h2\] host-to-host copy failed, trying elsewhere: h2 could not fetch \S+ from 10\.\d+\.1\.2: checksum mismatch for what 10\.\d+\.1\.2:\d+ sent: expected [0-9a-f]{64}, got [0-9a-f]{64}/,
  );
  assert.doesNotMatch(log, /\[h2\] \S+ copied from/);
  assert.match(log, /\[h2\] upload \/var\/lib\/hoist\/artifacts\//);
  // h3 skipped h1 (it served wrong bytes) and copied from h2, with nothing from the controller.
  assert.match(log, /\[h3\] cri-containerd-cni-\S+ copied from h2 \(10\.\d+\.2\.2\)/);
  assert.doesNotMatch(log, /\[h3\] upload \/var\/lib\/hoist\/artifacts\//);
  const bytes = Object.fromEntries((r.report.hosts as unknown as { name: string; bytesPushed: number }[]).map((h) => [h.name, h.bytesPushed]));
  assert.ok(bytes.h3 < 1e6 && bytes.h2 > 50e6 && bytes.h1 > 50e6, JSON.stringify(bytes));

  // What h2 and h3 hold is the published file, and no partial copy is left anywhere.
  const sums = await Promise.all(
    ['h2', 'h3'].map((h) => onHost(info, h, `cd ${ARTIFACTS} && for f in *; do echo "\${f%%-*}  $f"; done | sha256sum -c --quiet && ls -A ${ARTIFACTS}`)),
  );
  for (const s of sums) {
    assert.equal(s.code, 0, s.out);
    assert.doesNotMatch(s.out, /\.hoist-tmp-/);
  }
  // The fleet converged: a rerun changes nothing.
  const again = await hoistJson(['apply', playbook, '-i', info.inventoryPath, '-e', `containerd_version="${version()}"`, '-e', 'download=peers']);
  assert.equal(again.code, 0, again.stdout + again.stderr);
  assert.deepEqual(
    again.report.hosts.map((h) => h.status),
    ['ok', 'ok', 'ok'],
  );
});

test('hosts that cannot reach each other fall back to the controller once two holders could not be reached, and the run still converges', async () => {
  for (const h of ['h1', 'h2', 'h3']) await onHost(info, h, `rm -rf ${ARTIFACTS}`);
  const state = path.join(dir, 'state-unreachable');
  // Every host says other hosts reach it at 127.0.0.1: each receiver dials its own loopback, where nothing listens.
  const r = await hoistJson(
    [
      'apply',
      path.join(ROOT, 'playbooks', 'upgrade.toml'),
      '-i',
      info.inventoryPath,
      '-e',
      `containerd_version="${version()}"`,
      '-e',
      'peer_address="127.0.0.1"',
    ],
    { XDG_STATE_HOME: state },
  );
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const logs = await readdir(path.join(state, 'hoist', 'logs'));
  const log = await readFile(path.join(state, 'hoist', 'logs', logs[0]), 'utf8');
  assert.match(log, /\[h2\] host-to-host copy failed, trying elsewhere: h2 could not fetch \S+ from 127\.0\.0\.1: cannot connect to 127\.0\.0\.1:\d+/);
  assert.match(log, /\[hoist\] host-to-host copies stopped: 2 hosts holding the file could not be reached from others; the controller sends the rest/);
  for (const h of ['h1', 'h2', 'h3']) assert.match(log, new RegExp(`\\[${h}\\] upload /var/lib/hoist/artifacts/`));
  // The servers the failed copies started ended with them: nothing is left listening on any host.
  for (const h of ['h1', 'h2', 'h3']) {
    const ps = await onHost(info, h, `pgrep -af 'IO::Socket::I[P]|create_serve[r]' || true`);
    assert.equal(ps.out.trim(), '', `${h}: ${ps.out}`);
  }
});
