// A node bootstrapped by hoist runs a Pod as kubelet would: hoist's own pod test, through CRI over
// the operator's connection (deploy via the bastion, sudo), with hoist's CNI network and
// restrict_oom_score_adj (this machine gives no host CAP_SYS_RESOURCE; see test/fleet/README.md).
// The fleet's registries serve no registry.k8s.io/pause, so the fleet's pause stand-in is imported
// under the sandbox image's name, and the fleet's busybox is the container.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as fleet from '../fleet/fleet.js';
import { hoist, hoistJson, onHost, changedCount, ROOT } from '../support/hoist.js';
import { importPodImages } from '../support/pod-images.js';
import { withFleetCri } from '../support/cri-forward.js';
import { runPodSandbox } from '../support/cri-rpcs.js';
import { defaultSandboxImage } from '../../src/modules/containerd/config/features.js';
import { parseVersion } from '../../src/modules/containerd/version.js';

const PLAYBOOK = path.join(ROOT, 'playbooks', 'containerd.toml');
const RESET = path.join(ROOT, 'playbooks', 'reset.toml');
const CONFLIST = '/etc/cni/net.d/05-hoist-bridge.conflist';
let info: fleet.FleetInfo;
let dir: string;

before(async () => {
  info = await fleet.info();
  dir = await mkdtemp(path.join(os.tmpdir(), 'hoist-pod-'));
});
after(() => rm(dir, { recursive: true, force: true }));

function vars(version: string, o: { cni?: boolean; restrictOom?: boolean } = {}): string[] {
  const rel = info.releases.find((r) => r.containerd === version)!;
  const companions = version.startsWith('2.') ? ['-e', 'crictl_version=false', '-e', `runc_version="${rel.runc}"`, '-e', `cni_version="${rel.cni}"`] : [];
  return [
    '-e',
    `containerd_version="${version}"`,
    ...companions,
    '-e',
    `restrict_oom_score_adj=${o.restrictOom ?? true}`,
    ...((o.cni ?? true) ? ['-e', 'cni_conflist=bridge', '-e', 'cni_subnet="10.77.0.0/16"'] : []),
  ];
}

const notes = (r: { report: { hosts: { tasks: { task: string; notes: string[] }[] }[] } }, task: string) =>
  r.report.hosts.flatMap((h) => h.tasks.filter((t) => t.task === task).flatMap((t) => t.notes));

/** What containerd itself still has in the k8s.io namespace, read as root with ctr. */
async function leftovers(host: string): Promise<string> {
  const r = await onHost(
    info,
    host,
    'ctr -n k8s.io containers ls -q; ctr -n k8s.io tasks ls -q | tail -n +2; ls /var/run/netns 2>/dev/null; ip -o link show type veth | grep -o " veth[0-9a-f]*" || true',
  );
  assert.equal(r.code, 0, r.out);
  return r.out.trim();
}

// A host per test, each reset first. 1.4 speaks CRI v1alpha2 and reads CNI spec 0.4.0.
const LINES = [
  { line: '1.4', host: 'h3' },
  { line: '1.6', host: 'h1' },
  { line: '1.7', host: 'h1' },
  { line: '2.1', host: 'h2' },
];

describe('pod test through CRI', { concurrency: false }, () => {
  for (const { line, host } of LINES) {
    test(`containerd ${line}: a pod with a CNI address, cleaned up; leftovers of an interrupted test removed`, async (t) => {
      const rel = info.releases.find((r) => r.line === line);
      if (!rel) return t.skip(`the mirror has no ${line} release`);
      await fleet.resetHost(host);
      const v = rel.containerd;
      const base = ['-i', info.inventoryPath, '-l', host, ...vars(v)];

      const t0 = Date.now();
      const first = await hoistJson(['apply', PLAYBOOK, ...base, '--cache-dir', path.join(dir, 'cache')]);
      assert.equal(first.code, 0, `${first.stderr}\n${JSON.stringify(first.report, null, 1)}`);
      t.diagnostic(`bootstrap ${v}: ${Date.now() - t0} ms`);
      const conflist = JSON.parse((await onHost(info, host, `cat ${CONFLIST}`)).out) as {
        plugins: { type: string; ipam?: { ranges: { subnet: string }[][] } }[];
      };
      assert.deepEqual(
        conflist.plugins.map((p) => p.type),
        ['bridge', 'loopback'],
      );
      assert.equal(conflist.plugins[0].ipam!.ranges[0][0].subnet, '10.77.0.0/16');
      const dump = await onHost(info, host, 'containerd config dump');
      assert.match(dump.out, /restrict_oom_score_adj = true/);

      await importPodImages(info, host, defaultSandboxImage(parseVersion(v)));

      // An interrupted pod test's sandbox (host network, so it needs no CNI): the next test removes it.
      await withFleetCri(info, host, (c) =>
        runPodSandbox(c, {
          name: 'hoist-pod-test',
          uid: `left-${Date.now()}`,
          namespace: 'hoist',
          cgroupParent: 'hoist.slice',
          hostNetwork: true,
          labels: { 'io.hoist.pod-test': '1' },
        }),
      );
      assert.notEqual(await leftovers(host), '');

      const t1 = Date.now();
      const r = await hoistJson(['verify', ...base, '--pod-test', info.ociImageName]);
      const ms = Date.now() - t1;
      const lines = notes(r, 'containerd_pod_test');
      assert.equal(r.code, 0, `${r.stderr}\n${JSON.stringify(r.report, null, 1)}`);
      t.diagnostic(`hoist verify --pod-test on ${v}: ${ms} ms\n${lines.join('\n')}`);
      const steps = lines.map((l) => /^pod test: (\S+)/.exec(l)?.[1]).filter(Boolean);
      assert.deepEqual(steps, [
        'Status',
        'leftovers',
        'image',
        'RunPodSandbox',
        'PodSandboxStatus',
        'CreateContainer',
        'StartContainer',
        'ContainerStatus',
        'ExecSync',
        'StopContainer',
        'RemoveContainer',
        'StopPodSandbox',
        'RemovePodSandbox',
        'nothing',
      ]);
      assert.match(lines.join('\n'), /^pod test passed in [\d.]+ s: the pod's CNI address 10\.77\.\d+\.\d+ seen inside the container$/m);
      assert.ok(
        lines.some((l) => /^pod test: leftovers \d+ ms: removed 1 pod\(s\)/.test(l)),
        lines.join('\n'),
      );
      const address = /address (10\.77\.\d+\.\d+) from CNI/.exec(lines.join('\n'))?.[1];
      assert.ok(address, lines.join('\n'));
      assert.ok(
        lines.some((l) => l.includes(`the container runs and has ${address}`)),
        lines.join('\n'),
      );
      assert.equal(await leftovers(host), '', 'containers, tasks, network namespaces or veths left behind');

      // Logged in as root, without become: the CRI socket is opened directly.
      const asRoot = await hoistJson(['verify', '-i', info.rootInventoryPath, '-l', host, ...vars(v), '--pod-test', info.ociImageName]);
      assert.equal(asRoot.code, 0, `${asRoot.stderr}\n${JSON.stringify(asRoot.report, null, 1)}`);
      assert.match(notes(asRoot, 'containerd_pod_test').join('\n'), /^pod test passed in .* 10\.77\.\d+\.\d+ seen inside the container$/m);
      assert.equal(await leftovers(host), '');

      // The CNI file is hoist's like its others: a rerun changes nothing, reset removes it.
      const again = await hoistJson(['apply', PLAYBOOK, ...base, '--cache-dir', path.join(dir, 'cache')]);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(changedCount(again.report), 0, JSON.stringify(again.report, null, 1));
      const reset = await hoist(['apply', RESET, ...base, '--yes']);
      assert.equal(reset.code, 0, `${reset.stdout}\n${reset.stderr}`);
      assert.equal(
        (await onHost(info, host, `test -e ${CONFLIST} && echo present || echo absent; ip link show hoist0 >/dev/null 2>&1 && echo bridge`)).out.trim(),
        'absent',
      );
    });
  }

  test('containerd 2.1: each failing step says what to set (no CNI network, no sandbox image, oom_score_adj on a node without CAP_SYS_RESOURCE)', async (t) => {
    const rel = info.releases.find((r) => r.line === '2.1');
    if (!rel) return t.skip('the mirror has no 2.1 release');
    const host = 'h3';
    await fleet.resetHost(host);
    const v = rel.containerd;
    // 2.x installs no CNI configuration of its own: without cni_conflist the node has no network.
    const bare = ['-i', info.inventoryPath, '-l', host, ...vars(v, { cni: false })];
    const first = await hoistJson(['apply', PLAYBOOK, ...bare, '--cache-dir', path.join(dir, 'cache')]);
    assert.equal(first.code, 0, first.stderr);
    const sandboxImage = defaultSandboxImage(parseVersion(v));
    await importPodImages(info, host, sandboxImage);
    assert.equal((await onHost(info, host, `ctr -n k8s.io images rm ${sandboxImage}`)).code, 0);
    const noCni = await hoistJson(['verify', ...bare, '--pod-test', info.ociImageName]);
    assert.equal(noCni.code, 2);
    const noCniError = noCni.report.hosts[0].error ?? '';
    assert.match(
      noCniError,
      /Status: NetworkReady is false \(.*\) \(no network configuration in \/etc\/cni\/net\.d: install the cluster's CNI plugin, or set cni_conflist = "bridge"/,
      noCniError,
    );

    // With hoist's network, but no registry the host reaches serves the sandbox image.
    const good = ['-i', info.inventoryPath, '-l', host, ...vars(v)];
    const applied = await hoistJson(['apply', PLAYBOOK, ...good, '--cache-dir', path.join(dir, 'cache')]);
    assert.equal(applied.code, 0, applied.stderr);
    const noPause = await hoistJson(['verify', ...good, '--pod-test', info.ociImageName]);
    assert.equal(noPause.code, 2);
    const noPauseError = noPause.report.hosts[0].error ?? '';
    assert.match(
      noPauseError,
      new RegExp(
        `RunPodSandbox: the sandbox image ${sandboxImage.replace(/[.]/g, '\\.')} \\(sandbox_image\\) could not be pulled: cannot resolve registry\\.k8s\\.io`,
      ),
      noPauseError,
    );
    await importPodImages(info, host, sandboxImage);

    // With hoist's network but containerd's default oom_score_adj for sandboxes, in one apply that
    // runs the pod test: it fails on runc, says why and what to set, and the apply is rolled back.
    const withCni = ['-i', info.inventoryPath, '-l', host, ...vars(v, { restrictOom: false })];
    const r = await hoistJson(['apply', PLAYBOOK, ...withCni, '-e', `verify_pod_test="${info.ociImageName}"`, '--cache-dir', path.join(dir, 'cache')]);
    assert.equal(r.code, 2, JSON.stringify(r.report, null, 1));
    const err = r.report.hosts[0].error ?? '';
    assert.match(
      err,
      /RunPodSandbox: runc could not start the pod: containerd gives sandboxes oom_score_adj -998, and this node cannot lower oom_score_adj \(no CAP_SYS_RESOURCE.*\); set restrict_oom_score_adj = true \(containerd: .*final child's PID/,
      err,
    );
    assert.equal(await leftovers(host), '', 'a failed RunPodSandbox left something behind');
  });
});
