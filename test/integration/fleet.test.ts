// The test fleet itself, on real hosts: SSH with strict host-key checking, the local apt repo, a containerd
// release bundle from the local mirror installed by hand, a container run, abrupt host death, reset, teardown.
// Run: npx tsx --test test/integration/fleet.test.ts   (brings the fleet up if it is not; root only)
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { $ } from 'zx';
import { down, info, leftovers, resetHost, startHost, stopHost, up, type FleetHost, type FleetInfo } from '../fleet/fleet.js';
import { compareVersions } from '../fleet/upstream-files.js';

$.verbose = false;
$.quiet = true;

let fleet: FleetInfo;
let wasUp = false;

function sshOptions(f: FleetInfo): string[] {
  return [
    '-o',
    'BatchMode=yes',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    `UserKnownHostsFile=${f.knownHostsPath}`,
    '-o',
    'ConnectTimeout=3',
    '-o',
    'LogLevel=ERROR',
    '-i',
    f.identityPath,
  ];
}

function sshArgs(f: FleetInfo, user: string, host: FleetHost): string[] {
  return [...sshOptions(f), `${user}@${host.address}`];
}

/** Through the bastion as deploy. ProxyCommand rather than -J: OpenSSH does not pass -o options on to the jump. */
function viaBastion(f: FleetInfo): string[] {
  return ['-o', `ProxyCommand=ssh ${sshOptions(f).join(' ')} -W %h:%p deploy@${f.bastion.address}`];
}

async function ssh(
  host: FleetHost,
  script: string,
  user = 'root',
  opts: { jump?: boolean; input?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await $({ input: opts.input ?? '' })`ssh ${opts.jump ? viaBastion(fleet) : []} ${sshArgs(fleet, user, host)} ${script}`.nothrow();
  return { code: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
}

async function sshOk(host: FleetHost, script: string, user = 'root', opts: { jump?: boolean; input?: string } = {}): Promise<string> {
  const r = await ssh(host, script, user, opts);
  assert.equal(r.code, 0, `${host.name}: ${script}\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

function hostByName(name: string): FleetHost {
  const h = fleet.hosts.find((x) => x.name === name);
  assert.ok(h, `fleet has no ${name}`);
  return h;
}

before(async () => {
  try {
    fleet = await info();
    wasUp = fleet.hosts.length >= 3;
  } catch {
    wasUp = false;
  }
  if (!wasUp) fleet = await up(3);
});

after(async () => {
  // Leave the machine as found: a fleet that was up before the test is up again afterwards.
  if (wasUp) await up(3);
});

describe('fleet', { concurrency: false }, () => {
  test('every host and the bastion accept strict-host-key SSH and have booted cleanly', async () => {
    for (const h of [fleet.bastion, ...fleet.hosts]) {
      assert.equal((await sshOk(h, 'systemctl is-system-running')).trim(), 'running', h.name);
      assert.equal((await sshOk(h, 'hostname')).trim(), h.name);
    }
  });

  test('users log in to the hosts only through the bastion; root directly', async () => {
    const h = hostByName('h1');
    for (const user of ['deploy', 'ops', 'nosudo']) {
      const direct = await ssh(h, 'true', user);
      assert.equal(direct.code, 255, `${user} logged in to ${h.name} directly`);
      assert.match(direct.stderr, /Permission denied/);
      assert.equal((await sshOk(h, 'echo ${SSH_CLIENT%% *}', user, { jump: true })).trim(), fleet.bastion.address, user);
    }
    assert.equal((await sshOk(h, 'hostname')).trim(), 'h1');
    assert.equal((await sshOk(fleet.bastion, 'hostname', 'deploy')).trim(), 'bastion');
    assert.equal((await ssh(fleet.bastion, 'true', 'ops')).code, 255, 'ops logged in to the bastion');
  });

  test('deploy has passwordless sudo, ops sudo needs its password, nosudo has none', async () => {
    const h = hostByName('h1');
    assert.equal((await sshOk(h, 'sudo -n id -u', 'deploy', { jump: true })).trim(), '0');
    const opsNoPassword = await ssh(h, 'sudo -n true', 'ops', { jump: true });
    assert.notEqual(opsNoPassword.code, 0);
    assert.match(opsNoPassword.stderr, /password is required/);
    const wrong = await ssh(h, "sudo -S -p '' true", 'ops', { jump: true, input: 'not-the-password\n' });
    assert.notEqual(wrong.code, 0);
    assert.equal((await sshOk(h, "sudo -S -p '' id -u", 'ops', { jump: true, input: readFileSync(fleet.opsPasswordFile, 'utf8') })).trim(), '0');
    const r = await ssh(h, 'sudo -n true', 'nosudo', { jump: true });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /password is required|not allowed|may not run sudo/);
  });

  test('the inventories: deploy through the bastion, and root direct', () => {
    const op = readFileSync(fleet.inventoryPath, 'utf8');
    assert.match(op, /^user = "deploy"$/m);
    assert.match(op, /^become = true$/m);
    assert.match(op, new RegExp(`^jump = "deploy@${fleet.bastion.address.replace(/\./g, '\\.')}"$`, 'm'));
    const root = readFileSync(fleet.rootInventoryPath, 'utf8');
    assert.match(root, /^user = "root"$/m);
    assert.doesNotMatch(root, /^(jump|become) =/m);
    const known = readFileSync(fleet.knownHostsPath, 'utf8');
    for (const h of [fleet.bastion, ...fleet.hosts]) assert.match(known, new RegExp(`^${h.address.replace(/\./g, '\\.')} ssh-ed25519 `, 'm'));
  });

  test('apt installs from the harness repo only', async () => {
    const h = hostByName('h1');
    assert.equal(
      (await sshOk(h, 'cat /etc/apt/sources.list; ls /etc/apt/sources.list.d | wc -l')).trim(),
      `deb [trusted=yes] http://${h.gateway}:${new URL(fleet.mirrorUrl).port}/apt ./\n0`,
    );
    await sshOk(h, 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tree');
    assert.match(await sshOk(h, 'tree --version'), /^tree v\d/);
  });

  test('resetHost brings back the pristine base', async () => {
    const h = hostByName('h1');
    await sshOk(h, 'command -v tree && touch /root/marker');
    await resetHost('h1');
    assert.notEqual((await ssh(h, 'command -v tree')).code, 0, 'tree still installed after reset');
    assert.notEqual((await ssh(h, 'test -e /root/marker')).code, 0, 'marker survived reset');
    assert.equal((await sshOk(h, 'systemctl is-system-running')).trim(), 'running');
  });

  test('newest 1.x bundle from the mirror installs by hand and runs a container', { timeout: 180_000 }, async () => {
    const bundles = fleet.releases.filter((r) => r.kind === 'bundle').sort((a, b) => compareVersions(a.containerd, b.containerd));
    const rel = bundles.at(-1);
    assert.ok(rel, `mirror offers no 1.x bundle: ${JSON.stringify(fleet.releases)}`);
    const v = rel.containerd;
    const name = `cri-containerd-cni-${v}-linux-amd64.tar.gz`;
    const url = `${fleet.mirrorUrlForHosts}/containerd/containerd/releases/download/v${v}/${name}`;
    const h = hostByName('h2');
    await sshOk(
      h,
      [
        'set -e; mkdir -p /tmp/dl; cd /tmp/dl',
        `curl -fsSO ${url} && curl -fsSO ${url}.sha256sum`,
        `sha256sum -c ${name}.sha256sum`,
        `tar --no-overwrite-dir -C / -xzf ${name}`,
        'systemctl daemon-reload && systemctl enable --now containerd',
      ].join('\n'),
    );
    // A bundle that broke / (e.g. replaced /etc's mode) would show here.
    assert.equal((await sshOk(h, 'stat -c %a /etc /usr/local/bin')).trim(), '755\n755');
    const version = await sshOk(h, 'for i in $(seq 50); do ctr version >/tmp/v 2>&1 && break; sleep 0.2; done; cat /tmp/v');
    assert.match(version, /Server:\s*\n\s*Version:\s*v?\d/);
    assert.match(await sshOk(h, 'cat /opt/containerd/cluster/version'), new RegExp(`CONTAINERD_VERSION: '${v.replace(/\./g, '\\.')}'`));

    await $`scp -q ${sshArgs(fleet, 'root', h).slice(0, -1)} ${fleet.ociImagePath} ${`root@${h.address}:/tmp/busybox-oci.tar`}`;
    assert.match(await sshOk(h, 'ctr image import /tmp/busybox-oci.tar'), new RegExp(fleet.ociImageName.replace(/[.:/]/g, '.')));
    assert.equal((await sshOk(h, `ctr run --rm ${fleet.ociImageName} fleet-test /bin/busybox echo hi`)).trim(), 'hi');
  });

  test('a host stopped abruptly is unreachable, and startHost brings it back', { timeout: 120_000 }, async () => {
    const h = hostByName('h3');
    await sshOk(h, 'true');
    await stopHost('h3', { abrupt: true });
    const dead = await ssh(h, 'true');
    assert.notEqual(dead.code, 0, 'stopped host still answers SSH');
    await startHost('h3');
    assert.equal((await sshOk(h, 'systemctl is-system-running')).trim(), 'running');
  });

  test('down leaves no process, mount, cgroup, veth, netns, address or rule', { timeout: 120_000 }, async () => {
    await down();
    const left = await leftovers();
    assert.deepEqual(left, { processes: [], mounts: [], cgroups: [], netns: [], links: [], addresses: [], rules: [] });
    await assert.rejects(info(), /not up/);
  });
});
