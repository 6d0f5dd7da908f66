// How the pod test names a failed step, from containerd's own messages (observed on the fleet with
// containerd 1.7 and 2.1, and from the runc failure of a node without CAP_SYS_RESOURCE).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { addressSeen, classifyPodFailure, explainPodFailure, type ExplainContext } from '../../src/modules/containerd/pod-test.js';
import { GrpcStatus } from '../../src/modules/containerd/cri/grpc.js';

const RUNC =
  "failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: can't get final child's PID from pipe: EOF: unknown";
const CNI_RO =
  'failed to setup network for sandbox "0f3c": plugin type="bridge" failed (add): failed to enable forwarding: open /proc/sys/net/ipv6/conf/all/forwarding: read-only file system';
const CNI_NONE = 'cni config load failed: no network config found in /etc/cni/net.d: cni plugin not initialized: failed to load cni config';
const PAUSE =
  'failed to get sandbox image "registry.k8s.io/pause:3.8": failed to pull image "registry.k8s.io/pause:3.8": failed to pull and unpack image "registry.k8s.io/pause:3.8": failed to resolve reference "registry.k8s.io/pause:3.8": failed to do request: Head "https://registry.k8s.io/v2/pause/manifests/3.8": dial tcp: lookup registry.k8s.io: no such host';

const ctx: ExplainContext = {
  sandboxImage: 'registry.k8s.io/pause:3.8',
  image: 'docker.io/library/busybox:1.36',
  restrictOomScoreAdj: false,
  cniConfDir: '/etc/cni/net.d',
  hoistCni: false,
  registries: {},
  timeoutMs: 300_000,
};

describe('pod test failures', () => {
  it('are told apart: sandbox image, CNI, runc, timeouts', () => {
    assert.equal(classifyPodFailure(PAUSE), 'sandbox-image');
    assert.equal(classifyPodFailure(CNI_RO), 'cni');
    assert.equal(classifyPodFailure(CNI_NONE), 'cni');
    assert.equal(classifyPodFailure(RUNC), 'runc');
    assert.equal(classifyPodFailure('no answer within 30000 ms', GrpcStatus.DEADLINE_EXCEEDED), 'timeout');
    assert.equal(classifyPodFailure('something else'), 'other');
  });

  it('runc failing on oom_score_adj names the capability and restrict_oom_score_adj', () => {
    const m = explainPodFailure('RunPodSandbox', RUNC, GrpcStatus.UNKNOWN, { ...ctx, canLowerOomScoreAdj: false });
    assert.match(
      m,
      /^RunPodSandbox: runc could not start the pod: containerd gives sandboxes oom_score_adj -998, and this node cannot lower oom_score_adj \(no CAP_SYS_RESOURCE/,
    );
    assert.match(m, /set restrict_oom_score_adj = true/);
    assert.match(m, /final child's PID/);
    // Already set, or the node can lower it: the advice would be wrong, so only runc's words remain.
    assert.doesNotMatch(explainPodFailure('RunPodSandbox', RUNC, undefined, { ...ctx, restrictOomScoreAdj: true }), /restrict_oom_score_adj/);
    assert.doesNotMatch(explainPodFailure('RunPodSandbox', RUNC, undefined, { ...ctx, canLowerOomScoreAdj: true }), /restrict_oom_score_adj/);
  });

  it("a missing CNI network points at cni_conflist; a failing plugin says what hoist's network needs", () => {
    assert.match(
      explainPodFailure('RunPodSandbox', CNI_NONE, undefined, ctx),
      /no network configuration in \/etc\/cni\/net\.d: install the cluster's CNI plugin, or set cni_conflist = "bridge"/,
    );
    const ro = explainPodFailure('RunPodSandbox', CNI_RO, undefined, { ...ctx, hoistCni: true });
    assert.match(ro, /^RunPodSandbox: CNI failed to set up the pod network: .*read-only file system/);
    assert.match(ro, /iptables/);
  });

  it('the sandbox image is named with the registry problem', () => {
    const m = explainPodFailure('RunPodSandbox', PAUSE, undefined, ctx);
    assert.match(m, /^RunPodSandbox: the sandbox image registry\.k8s\.io\/pause:3\.8 \(sandbox_image\) could not be pulled: cannot resolve registry\.k8s\.io/);
    assert.match(m, /registry\.k8s\.io/);
  });

  it('a timeout gives the deadline', () => {
    assert.match(explainPodFailure('RunPodSandbox', 'no answer within 300000 ms', GrpcStatus.DEADLINE_EXCEEDED, ctx), /^RunPodSandbox: no answer within 300 s/);
  });
});

describe('addressSeen', () => {
  it('finds the pod address in ip -o addr and in /proc/net/fib_trie, and not a longer one', () => {
    assert.ok(addressSeen('2: eth0    inet 10.88.0.5/16 brd 10.88.255.255 scope global eth0', '10.88.0.5'));
    assert.ok(addressSeen('     |-- 10.88.0.5\n        /32 host LOCAL\n', '10.88.0.5'));
    assert.ok(!addressSeen('inet 10.88.0.50/16', '10.88.0.5'));
    assert.ok(!addressSeen('inet 110.88.0.5/16', '10.88.0.5'));
  });
});
