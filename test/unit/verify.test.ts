import { test } from 'node:test';
import assert from 'node:assert/strict';
import { judge } from '../../src/modules/containerd/tasks/verify.js';
import { containerdSettings } from '../../src/modules/containerd/settings.js';
import type { ProbeResult } from '../../src/facts/probe.js';

const settings = (v: string, extra: Record<string, unknown> = {}) => {
  const problems: string[] = [];
  const st = containerdSettings({ containerd_version: v, ...extra }, (i) => problems.push(i.message));
  if (!st) throw new Error(problems.join('; '));
  return st;
};

const ctr = (server: string | null) =>
  `Client:\n  Version:  1.7.24~ds1\n  Revision: 1.7.24~ds1-5\n  Go version: go1.23.5\n\n` +
  (server
    ? `Server:\n  Version:  ${server}\n  Revision: 1.7.24~ds1-5\n  UUID: 8d0c2e1f-0000-4000-8000-000000000000\n`
    : `ctr: failed to dial "/run/containerd/containerd.sock": connection error`);

const plugins = (criStatus = 'ok', extra = '') =>
  `TYPE                                   ID                       PLATFORMS      STATUS    \n` +
  `io.containerd.content.v1               content                  -              ok        \n` +
  `io.containerd.snapshotter.v1           devmapper                linux/amd64    error     \n` +
  `io.containerd.snapshotter.v1           overlayfs                linux/amd64    ok        \n` +
  `io.containerd.grpc.v1                  cri                      linux/amd64    ${criStatus}        \n` +
  extra;

const dump = (systemd: boolean, sandbox: string) => `version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${sandbox}"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    snapshotter = "overlayfs"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = ${systemd}
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "/etc/containerd/certs.d"
`;

const probes =
  (o: Partial<Record<'ctr' | 'plugins' | 'dump' | 'crictl', ProbeResult>>) =>
  (id: string): ProbeResult =>
    o[id as keyof typeof o] ?? { out: 'absent', code: 0 };

test('a healthy 1.7 host passes, with the allowed devmapper error noted', () => {
  const st = settings('1.7.24');
  const r = judge(
    st,
    probes({ ctr: { out: ctr('1.7.24~ds1'), code: 0 }, plugins: { out: plugins(), code: 0 }, dump: { out: dump(true, st.runtime.sandboxImage), code: 0 } }),
  );
  assert.deepEqual(r.problems, []);
  assert.ok(r.ok);
  assert.match(r.lines.join('\n'), /allowed errors: devmapper/);
});

test('each deviation is reported on its own', () => {
  const st = settings('1.7.24');
  const r = judge(
    st,
    probes({
      ctr: { out: ctr('1.6.20'), code: 0 },
      plugins: { out: plugins('error', 'io.containerd.runtime.v2              task                     linux/amd64    error     \n'), code: 0 },
      dump: { out: dump(false, 'other/pause:1'), code: 0 },
    }),
  );
  assert.equal(r.ok, false);
  const text = r.problems.join('\n');
  assert.match(text, /server runs 1\.6\.20, expected 1\.7\.24/);
  assert.match(text, /CRI plugin not ok \(io\.containerd\.grpc\.v1 cri error\)/);
  assert.match(text, /unexpected error rows: .*io\.containerd\.grpc\.v1 cri.*io\.containerd\.runtime\.v2 task|unexpected error rows: .*task/);
  assert.match(text, /SystemdCgroup is false, expected true/);
  assert.match(text, /sandbox image is other\/pause:1/);
});

test('a daemon that does not answer is a failure, not a crash', () => {
  const r = judge(
    settings('1.7.24'),
    probes({ ctr: { out: ctr(null), code: 1 }, plugins: { out: 'ctr: failed to dial', code: 1 }, dump: { out: dump(true, 'x'), code: 0 } }),
  );
  assert.equal(r.ok, false);
  assert.match(r.problems.join('\n'), /the daemon did not answer/);
  assert.match(r.problems.join('\n'), /ctr plugin ls failed/);
});

test('plugin_error_allow extends the allow-list', () => {
  const st = settings('1.7.24', { plugin_error_allow: ['io.containerd.runtime.v2 task'] });
  const r = judge(
    st,
    probes({
      ctr: { out: ctr('1.7.24'), code: 0 },
      plugins: { out: plugins('ok', 'io.containerd.runtime.v2              task                     linux/amd64    error     \n'), code: 0 },
      dump: { out: dump(true, st.runtime.sandboxImage), code: 0 },
    }),
  );
  assert.deepEqual(r.problems, []);
});

test("CNI: the lexically first .conf/.conflist/.json is the one containerd uses; the bundle's or a foreign one in front of hoist's is a WARNING", async () => {
  const { cniWinner } = await import('../../src/modules/containerd/tasks/verify.js');
  const plain = settings('1.7.24');
  assert.deepEqual(cniWinner(plain, ['10-flannel.conflist', 'README']), ['CNI: containerd uses /etc/cni/net.d/10-flannel.conflist']);
  const [w] = cniWinner(plain, ['10-flannel.conflist', '10-containerd-net.conflist']);
  assert.match(
    w,
    /^WARNING: CNI: containerd uses \/etc\/cni\/net\.d\/10-containerd-net\.conflist \(first of 2; not used: 10-flannel\.conflist\): the 1\.x bundle's bridge network, which shadows 10-flannel\.conflist; remove it, or set keep_bundle_cni_conflist = true/,
  );
  assert.deepEqual(cniWinner(settings('1.7.24', { keep_bundle_cni_conflist: true }), ['10-containerd-net.conflist']), [
    'CNI: containerd uses /etc/cni/net.d/10-containerd-net.conflist',
  ]);
  const bridge = settings('1.7.24', { cni_conflist: 'bridge' });
  assert.deepEqual(cniWinner(bridge, ['05-hoist-bridge.conflist', '10-containerd-net.conflist']), [
    'CNI: containerd uses /etc/cni/net.d/05-hoist-bridge.conflist (first of 2; not used: 10-containerd-net.conflist)',
  ]);
  assert.match(
    cniWinner(bridge, ['00-other.conf', '05-hoist-bridge.conflist'])[0],
    /^WARNING: .*00-other\.conf .*not hoist's 05-hoist-bridge\.conflist: pods get that network/,
  );
  assert.match(cniWinner(bridge, [])[0], /^WARNING: CNI: \/etc\/cni\/net\.d holds no network configuration; expected 05-hoist-bridge\.conflist/);
});
