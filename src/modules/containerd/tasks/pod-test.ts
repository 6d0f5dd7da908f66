import { s } from '../../../util/schema.js';
import { containerdTask } from '../task.js';
import { runPodTest } from '../pod-test.js';
import { HostError } from '../../../util/errors.js';

export default containerdTask({
  name: 'containerd_pod_test',
  summary:
    'Runs a pod as kubelet would, through CRI: a sandbox (the sandbox image, the CNI network), a container of the given image, its CNI address seen inside it; then removes it all.',
  params: s.object({
    pod_test: s.string().default('').describe('container image with sh and sleep (busybox, alpine); "" skips the test'),
    timeout_seconds: s.int(10, 3600).default(300).describe('deadline of the calls that may pull (the image, the sandbox image)'),
  }),
  verifies: true,
  plan(p, ctx) {
    if (!p.pod_test) return { actions: [], skipped: 'no pod test image (verify_pod_test, hoist verify --pod-test IMAGE)' };
    const rt = ctx.settings.runtime;
    return {
      actions: [
        {
          kind: 'check',
          summary: `pod test with ${p.pod_test}`,
          async run(conn, actx) {
            const r = await runPodTest(conn, {
              socket: `${rt.stateDir}/containerd.sock`,
              image: p.pod_test,
              sandboxImage: rt.sandboxImage,
              systemdCgroup: rt.systemdCgroup,
              restrictOomScoreAdj: rt.restrictOomScoreAdj,
              cniConfDir: rt.cniConfDir,
              hoistCni: ctx.settings.cni !== null,
              registries: rt.registries,
              pullTimeoutMs: p.timeout_seconds * 1000,
              callTimeoutMs: 30_000,
            });
            for (const st of r.steps) actx.note(`pod test: ${st.name} ${st.ms} ms${st.detail ? `: ${st.detail}` : ''}`);
            if (!r.ok) throw new HostError(`pod test failed:\n  ${r.problems.join('\n  ')}`);
            actx.note(`pod test passed in ${(r.ms / 1000).toFixed(1)} s: the pod's CNI address ${r.address} seen inside the container`);
          },
        },
      ],
    };
  },
});
