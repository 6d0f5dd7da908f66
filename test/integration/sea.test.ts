/**
 * hoist as a single executable (`npm run sea`): the linux-x64 one copied to the bastion, a machine
 * with no Node, and run there as an operator would from an admin host: deploy with sudo, straight to
 * h1..hN, with a key and known_hosts of its own, the packaged playbook and templates it unpacks
 * itself, and the release mirror as the bastion sees it. The linux-arm64 one runs on this machine
 * under user-mode emulation (qemu-aarch64) against the fleet through the bastion.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as fleet from '../fleet/fleet.js';
import { CACHE_DIR } from '../fleet/paths.js';
import { ROOT } from '../support/hoist.js';

/** Debian's arm64 C and C++ runtime (libc6-arm64-cross, libstdc++6-arm64-cross; .ci/prereqs). */
const ARM64_SYSROOT = '/usr/aarch64-linux-gnu';
const REMOTE_DIR = 'hoist-sea';

let info: fleet.FleetInfo;
let dir: string;
let home: string;
const version = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** A command on the bastion as deploy, with the fleet's key and known_hosts. */
function onBastion(command: string, input?: Buffer) {
  const r = spawnSync(
    'ssh',
    ['-i', info.identityPath, '-o', `UserKnownHostsFile=${info.knownHostsPath}`, '-o', 'BatchMode=yes', `deploy@${info.bastion.address}`, command],
    { input, encoding: 'utf8', timeout: 60_000, maxBuffer: 64 << 20 },
  );
  return { code: r.status, out: r.stdout, err: r.stderr };
}

before(async () => {
  info = await fleet.info();
  dir = mkdtempSync(path.join(os.tmpdir(), 'hoist-sea-'));
  // The Node binaries stay in the fleet's cache, which CI keeps: a rebuild downloads nothing.
  execFileSync(process.execPath, [path.join(ROOT, 'scripts/sea.mjs')], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, HOIST_SEA_CACHE: path.join(CACHE_DIR, 'sea-node') },
  });
  home = onBastion('printf %s "$HOME"').out;
  assert.match(home, /^\/\S+$/);
  // What goes to the bastion: the executable, the key, known_hosts and an inventory naming the
  // hosts by address with no jump (the bastion is the one machine that reaches them as deploy).
  const stage = path.join(dir, 'stage');
  mkdirSync(stage, { mode: 0o700 });
  copyFileSync(path.join(ROOT, 'dist', 'hoist-linux-x64'), path.join(stage, 'hoist'));
  copyFileSync(info.identityPath, path.join(stage, 'id_ed25519'));
  chmodSync(path.join(stage, 'id_ed25519'), 0o600);
  copyFileSync(info.knownHostsPath, path.join(stage, 'known_hosts'));
  const remote = `${home}/${REMOTE_DIR}`;
  const port = new URL(info.mirrorUrl).port;
  writeFileSync(
    path.join(stage, 'inventory.toml'),
    [
      '[defaults]',
      'user = "deploy"',
      'become = true',
      `identity_file = "${remote}/id_ed25519"`,
      `known_hosts_file = "${remote}/known_hosts"`,
      '[defaults.vars]',
      `release_base_url = "http://${info.bastion.gateway}:${port}"`,
      ...info.hosts.flatMap((h) => [
        `[hosts.${h.name}]`,
        `address = "${h.address}"`,
        `[hosts.${h.name}.vars]`,
        `host_release_base_url = "http://${h.gateway}:${port}"`,
      ]),
      '',
    ].join('\n'),
  );
  execFileSync('tar', ['-C', stage, '-cf', path.join(dir, 'stage.tar'), '.']);
  const tar = readFileSync(path.join(dir, 'stage.tar'));
  const put = onBastion(`rm -rf ~/${REMOTE_DIR} ~/.cache/hoist/sea ~/.cache/hoist/code && mkdir -m 700 ~/${REMOTE_DIR} && tar -xf - -C ~/${REMOTE_DIR}`, tar);
  assert.equal(put.code, 0, put.err);
});

after(() => {
  if (info) onBastion(`rm -rf ~/${REMOTE_DIR} ~/.cache/hoist/sea ~/.cache/hoist/code`);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The executable on the bastion, with CI-style output and no run log. */
function remoteHoist(args: string[]) {
  const quoted = args.map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
  return onBastion(`cd ~/${REMOTE_DIR} && CI=1 NO_COLOR=1 HOIST_LOG=off ./hoist ${quoted}`);
}

/** ELF e_machine: 62 x86-64, 183 aarch64. */
function elfMachine(file: string): number {
  const head = readFileSync(file).subarray(0, 20);
  assert.equal(head.toString('latin1', 0, 4), '\x7fELF');
  return head.readUInt16LE(18);
}

test('the linux-x64 executable runs on a host without Node and provisions the others from there', () => {
  assert.equal(elfMachine(path.join(ROOT, 'dist', 'hoist-linux-x64')), 62, 'an x86-64 ELF executable');
  // The bastion has no Node: what runs is the executable alone.
  const which = onBastion('for n in node nodejs; do command -v "$n"; done; true');
  assert.equal(which.code, 0, which.err);
  assert.equal(which.out, '', `Node on the bastion: ${which.out}`);
  const v = remoteHoist(['--version']);
  assert.equal(v.out, `${version}\n`, v.err);
  assert.equal(v.err, '', 'no warnings on stderr');
  // Where it can't write its files it says so, before anything else.
  // (A file, not a directory; not under /proc, where Node 20's recursive mkdirSync never returns.)
  const ro = onBastion(`cd ~/${REMOTE_DIR} && XDG_CACHE_HOME=$PWD/inventory.toml ./hoist --version`);
  assert.equal(ro.code, 1);
  assert.equal(ro.out, '');
  assert.match(
    ro.err,
    /^hoist: can't write its templates and playbooks to \/\S+\/inventory\.toml\/hoist\/sea\/\S+ \(from XDG_CACHE_HOME\): ENOTDIR; set XDG_CACHE_HOME to a directory you can write\n$/,
  );
  // ssh2 without its native addons: every host answers, host keys checked against known_hosts.
  const ping = remoteHoist(['ping', '-i', 'inventory.toml', '--json']);
  assert.equal(ping.code, 0, `${ping.out}${ping.err}`);
  const report = JSON.parse(ping.out) as { hosts: { name: string; status: string }[] };
  assert.deepEqual(
    report.hosts.map((h) => [h.name, h.status]),
    info.hosts.map((h) => [h.name, 'ok']),
  );
  // The packaged playbook and templates, unpacked by the executable into ~/.cache/hoist/sea/<id>;
  // the published checksums come from the mirror through the bundled HTTP client.
  const manifest = JSON.parse(readFileSync(path.join(ROOT, 'dist', 'sea', 'hoist-files.json'), 'utf8')) as { id: string };
  const playbook = `${home}/.cache/hoist/sea/${manifest.id}/playbooks/containerd.toml`;
  const check = remoteHoist(['check', playbook, '-i', 'inventory.toml', '-l', 'h1', '--diff', '--cache-dir', 'cache']);
  assert.equal(check.code, 0, `${check.out}${check.err}`);
  assert.match(check.out, /config\.toml|no changes: every host already matches/);
  assert.equal(onBastion(`ls ~/${REMOTE_DIR}/cache/sha256 | grep -q .`).code, 0, 'the check downloaded into its cache on the bastion');
  // The CLI it unpacked runs through the same code cache as the package's: written by the runs
  // above, taken by the next (its log's first line says which).
  const caches = onBastion('stat -c "%a %n" ~/.cache/hoist/code ~/.cache/hoist/code/*.v8cache');
  assert.equal(caches.code, 0, caches.err);
  assert.match(caches.out, /^700 \S+\/code\n600 \S+\.v8cache\n$/);
  const logged = onBastion(
    `cd ~/${REMOTE_DIR} && CI=1 XDG_STATE_HOME=$HOME/${REMOTE_DIR}/state ./hoist ping -i inventory.toml -l h1 >/dev/null && head -1 state/hoist/logs/*.log`,
  );
  assert.equal(logged.code, 0, logged.err);
  assert.match(logged.out, /, code cache accepted\)\n$/);
});

test('the linux-arm64 executable runs under qemu-aarch64 against the fleet', () => {
  const run = (args: string[]) => {
    const r = spawnSync('qemu-aarch64', ['-L', ARM64_SYSROOT, path.join(ROOT, 'dist', 'hoist-linux-arm64'), ...args], {
      cwd: dir,
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, CI: '1', NO_COLOR: '1', HOIST_LOG: 'off', XDG_CACHE_HOME: path.join(dir, 'cache') },
    });
    if (r.error) throw r.error;
    return { code: r.status, out: r.stdout, err: r.stderr };
  };
  assert.equal(elfMachine(path.join(ROOT, 'dist', 'hoist-linux-arm64')), 183, 'an aarch64 ELF executable');
  const v = run(['--version']);
  assert.equal(v.out, `${version}\n`, v.err);
  const ping = run(['ping', '-i', info.inventoryPath, '--json']);
  assert.equal(ping.code, 0, `${ping.out}${ping.err}`);
  const report = JSON.parse(ping.out) as { hosts: { name: string; status: string }[] };
  assert.deepEqual(
    report.hosts.map((h) => [h.name, h.status]),
    info.hosts.map((h) => [h.name, 'ok']),
  );
});
