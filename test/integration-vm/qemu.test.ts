/**
 * Smoke test on a real kernel: hoist's containerd playbook against one QEMU/TCG VM (its own Debian
 * kernel, pure cgroup v2, udev, a virtio disk) instead of an nspawn host sharing the controller's kernel,
 * including the pod test as on a real node (no restrict_oom_score_adj).
 *
 * Off by default (5.5–6 min with the VM image cached, 3 min more to build it; ≈1.4 GB RAM for
 * QEMU): HOIST_QEMU=1 npx tsx --test test/integration-vm/qemu.test.ts (HOIST_QEMU_CONTAINERD=2.1.9
 * for the 2.1 line)
 * Needs root and qemu-system-x86 + qemu-utils besides the fleet's packages. Does not need the fleet up.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { ensureMirror, type MirrorRelease } from '../fleet/mirror.js';
import { ensureOciImage } from '../fleet/oci-image.js';
import { listenOn } from '../fleet/serve.js';
import { copyToVm, onVm, startVm, stopVm, type RunningVm } from '../qemu/vm.js';
import { changedCount, hoistJson, ROOT } from '../support/hoist.js';
import { pauseArchive } from '../support/pod-images.js';
import { defaultSandboxImage } from '../../src/modules/containerd/config/features.js';
import { parseVersion } from '../../src/modules/containerd/version.js';

const enabled = process.env.HOIST_QEMU === '1';
const PLAYBOOK = path.join(ROOT, 'playbooks', 'containerd.toml');
/** The playbook's own default line, unless the run asks for another version the mirror has. */
const WANTED = process.env.HOIST_QEMU_CONTAINERD ?? '1.7.24';

describe('containerd on a real-kernel QEMU VM', { skip: enabled ? false : 'set HOIST_QEMU=1 to run (slow, boots a VM under TCG)' }, () => {
  let vm: RunningVm;
  let servers: Server[] = [];
  let mirrorUrl: string;
  let release: MirrorRelease;
  let oci: { path: string; name: string };
  let dir: string;

  before(
    async () => {
      const mirror = await ensureMirror();
      const found = mirror.releases.find((r) => r.containerd === WANTED);
      assert.ok(found, `the release mirror has no containerd ${WANTED} (it has ${mirror.releases.map((r) => r.containerd).join(', ')})`);
      release = found;
      oci = await ensureOciImage();
      // Loopback only: hoist downloads on the controller and pushes over SSH, so the VM (which has
      // no route anywhere) never needs to reach the mirror.
      const served = await listenOn([{ prefix: '/', dir: mirror.dir }], []);
      servers = served.servers;
      mirrorUrl = `http://127.0.0.1:${served.port}`;
      dir = await mkdtemp(path.join(os.tmpdir(), 'hoist-qemu-'));
      vm = await startVm({ bootTimeout: 600 });
    },
    { timeout: 20 * 60_000 },
  );

  after(async () => {
    await stopVm();
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const vars = () => [
    '-e',
    `release_base_url="${mirrorUrl}"`,
    '-e',
    `containerd_version="${release.containerd}"`,
    // 2.x pulls runc and CNI from their own releases: the ones the mirror has (it has no crictl).
    ...(release.kind === 'components' ? ['-e', 'crictl_version=false', '-e', `runc_version="${release.runc}"`, '-e', `cni_version="${release.cni}"`] : []),
  ];
  const apply = (...extra: string[]) =>
    hoistJson(['apply', PLAYBOOK, '-i', vm.inventoryPath, '--cache-dir', path.join(dir, 'cache'), '--command-timeout', '900', ...vars(), ...extra]);

  test('the VM runs its own kernel with pure cgroup v2', async () => {
    const r = await onVm(vm, 'uname -r; systemd-detect-virt; stat -f -c %T /sys/fs/cgroup; systemctl is-system-running');
    assert.equal(r.code, 0, r.out);
    assert.deepEqual(r.out.trim().split('\n'), [vm.kernelRelease, 'qemu', 'cgroup2fs', 'running']);
    assert.notEqual(vm.kernelRelease, os.release(), 'the guest kernel must not be the controller’s');
  });

  test('bare VM → containerd verified, a container runs, then a no-op rerun', { timeout: 30 * 60_000 }, async () => {
    const first = await apply();
    assert.equal(first.code, 0, `${first.stderr}\n${JSON.stringify(first.report, null, 1)}`);
    const host = first.report.hosts[0];
    assert.equal(host.status, 'changed');
    const verify = host.tasks.find((t) => t.task === 'containerd_verify');
    assert.ok(verify, JSON.stringify(host.tasks.map((t) => t.task)));
    assert.equal(verify.status, 'ok', verify.error);
    assert.ok(
      verify.notes.some((n) => n.startsWith('server ') && n.includes(release.containerd)),
      verify.notes.join('\n'),
    );

    const state = await onVm(vm, 'systemctl is-active containerd; systemctl is-enabled containerd; ctr version | grep -c "^Server:"');
    assert.equal(state.out, 'active\nenabled\n1\n', state.out);

    // One unified-hierarchy line (no v1 controllers on this kernel), in the cgroup ctr asked runc
    // to create: <containerd namespace>/<container id>.
    await copyToVm(vm, oci.path, '/tmp/busybox.tar');
    const run = await onVm(
      vm,
      `ctr image import /tmp/busybox.tar >/dev/null && ctr run --rm ${oci.name} hoist-qemu /bin/busybox sh -c 'echo hello-from-qemu; cat /proc/self/cgroup'`,
    );
    assert.equal(run.code, 0, run.out);
    const [line, cgroup] = run.out.trim().split('\n');
    assert.equal(line, 'hello-from-qemu');
    assert.equal(cgroup, '0::/default/hoist-qemu', run.out);

    const pid = (await onVm(vm, 'systemctl show -p MainPID --value containerd')).out.trim();
    const second = await apply();
    assert.equal(second.code, 0, second.stderr);
    assert.equal(changedCount(second.report), 0, JSON.stringify(second.report.hosts[0].tasks.filter((t) => t.status !== 'ok')));
    assert.equal((await onVm(vm, 'systemctl show -p MainPID --value containerd')).out.trim(), pid, 'containerd was restarted by a no-op run');
  });

  // The nspawn hosts need restrict_oom_score_adj (no CAP_SYS_RESOURCE there); a VM's root has it,
  // so this is the pod test as on a real node: sandboxes at oom_score_adj -998.
  test("pod test through CRI with hoist's CNI network, without restrict_oom_score_adj", { timeout: 30 * 60_000 }, async (t) => {
    const t0 = Date.now();
    const applied = await apply('-e', 'cni_conflist=bridge');
    assert.equal(applied.code, 0, `${applied.stderr}\n${JSON.stringify(applied.report, null, 1)}`);
    assert.doesNotMatch((await onVm(vm, 'containerd config dump')).out, /restrict_oom_score_adj = true/);
    // No registry serves the pause image here: the fleet's stand-in under the sandbox image's name.
    const pause = path.join(dir, 'pause.tar');
    await writeFile(pause, await pauseArchive(oci.path, defaultSandboxImage(parseVersion(release.containerd))));
    await copyToVm(vm, oci.path, '/tmp/busybox.tar');
    await copyToVm(vm, pause, '/tmp/pause.tar');
    const imported = await onVm(vm, 'ctr -n k8s.io images import /tmp/busybox.tar >/dev/null && ctr -n k8s.io images import /tmp/pause.tar >/dev/null');
    assert.equal(imported.code, 0, imported.out);
    const t1 = Date.now();
    const r = await hoistJson(['verify', '-i', vm.inventoryPath, ...vars(), '--pod-test', oci.name]);
    const notes = r.report.hosts.flatMap((h) => h.tasks.filter((x) => x.task === 'containerd_pod_test').flatMap((x) => x.notes));
    assert.equal(r.code, 0, `${r.stderr}\n${JSON.stringify(r.report, null, 1)}`);
    assert.match(notes.join('\n'), /^pod test passed in .* 10\.88\.\d+\.\d+ seen inside the container$/m);
    t.diagnostic(`apply with cni_conflist ${t1 - t0} ms (images imported); hoist verify --pod-test ${Date.now() - t1} ms\n${notes.join('\n')}`);
    const left = await onVm(vm, 'ctr -n k8s.io containers ls -q; ctr -n k8s.io tasks ls -q | tail -n +2');
    assert.equal(left.out.trim(), '', left.out);
  });

  // nspawn hosts share a read-only /proc/sys; a VM has a kernel of its own to set.
  test('sysctl: set now, kept in /etc/sysctl.d, unchanged on a rerun', { timeout: 5 * 60_000 }, async () => {
    const pb = path.join(dir, 'sysctl.toml');
    await writeFile(
      pb,
      '[[tasks]]\ntask = "sysctl"\n[tasks.params]\nname = "hoist-test"\n[tasks.params.settings]\n"vm.swappiness" = 17\n"net.ipv4.tcp_rmem" = "4096 87380 6291456"\n',
    );
    const first = await hoistJson(['apply', pb, '-i', vm.inventoryPath]);
    assert.equal(first.code, 0, `${first.stderr}\n${JSON.stringify(first.report, null, 1)}`);
    assert.equal(changedCount(first.report), 1);
    const live = await onVm(vm, 'cat /proc/sys/vm/swappiness /proc/sys/net/ipv4/tcp_rmem; cat /etc/sysctl.d/hoist-test.conf');
    assert.equal(
      live.out,
      '17\n4096\t87380\t6291456\n# Managed by hoist (sysctl task "hoist-test").\nvm.swappiness = 17\nnet.ipv4.tcp_rmem = 4096 87380 6291456\n',
      live.out,
    );
    const second = await hoistJson(['apply', pb, '-i', vm.inventoryPath]);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(changedCount(second.report), 0, JSON.stringify(second.report.hosts[0].tasks));
    // What systemd-sysctl applies at boot from the file is what the task set.
    const reload = await onVm(
      vm,
      'echo 60 > /proc/sys/vm/swappiness && /usr/lib/systemd/systemd-sysctl /etc/sysctl.d/hoist-test.conf && cat /proc/sys/vm/swappiness',
    );
    assert.equal(reload.out.trim(), '17', reload.out);
  });
});
