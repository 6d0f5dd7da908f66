/**
 * The pod test: proof that a node runs a Pod the way kubelet would ask for one, through CRI over
 * the SSH connection (no crictl, nothing installed for it). A sandbox with the configured sandbox
 * image and the node's CNI network, a container of a small image in it, and the address CNI gave
 * the pod seen from inside the container; then everything is stopped and removed. Sandboxes carry
 * POD_TEST_LABEL, so what an interrupted test left is removed by the next one.
 */
import { randomUUID } from 'node:crypto';
import type { Connection } from '../../tasks/connection.js';
import { CriClient } from './cri/client.js';
import { CriError, GrpcStatus } from './cri/grpc.js';
import {
  decodeContainerStatusResponse,
  decodeExecSyncResponse,
  decodeIdResponse,
  decodeImageStatusResponse,
  decodeListPodSandboxResponse,
  decodePodSandboxStatusResponse,
  encodeCreateContainerRequest,
  encodeExecSyncRequest,
  encodeIdRequest,
  encodeImageStatusRequest,
  encodeListPodSandboxRequest,
  encodeRunPodSandboxRequest,
  encodeStopContainerRequest,
  type ContainerSpec,
  type PodSandboxSpec,
} from './cri/pod.js';
import { diagnosePull, formatPullFailure } from './pull-errors.js';
import type { RegistryConfig } from './config/types.js';
import { HostError } from '../../util/errors.js';

export const POD_TEST_LABEL = 'io.hoist.pod-test';

export interface PodTestOptions {
  /** containerd's socket on the host. */
  socket: string;
  /** The container's image; it needs `sh` and `sleep` (busybox, alpine, …). */
  image: string;
  /** What containerd is configured to use, for the messages. */
  sandboxImage: string;
  systemdCgroup: boolean;
  restrictOomScoreAdj: boolean;
  cniConfDir: string;
  /** hoist writes the node's CNI network (cni_conflist). */
  hoistCni: boolean;
  registries: Record<string, RegistryConfig>;
  /** Deadline of the calls that may pull (the container image, RunPodSandbox). */
  pullTimeoutMs: number;
  /** Deadline of every other call. */
  callTimeoutMs: number;
}

export interface PodTestStep {
  name: string;
  ms: number;
  detail: string;
}

export interface PodTestResult {
  ok: boolean;
  steps: PodTestStep[];
  /** What failed, one message per failed step (the test itself, then its clean-up). */
  problems: string[];
  /** The pod's address from CNI, once seen inside the container. */
  address: string | null;
  ms: number;
}

/** Which part of a pod's start a runtime error belongs to, read from containerd's message. */
export type PodFailureKind = 'sandbox-image' | 'image' | 'cni' | 'runc' | 'timeout' | 'other';

export function classifyPodFailure(message: string, code?: number): PodFailureKind {
  if (code === GrpcStatus.DEADLINE_EXCEEDED || /context deadline exceeded|no answer within/.test(message)) return 'timeout';
  if (/sandbox image|pause image|get sandbox image/i.test(message)) return 'sandbox-image';
  if (/failed to (pull|resolve)|pull and unpack|image .* not found|not found.*image/i.test(message)) return 'image';
  if (/\bcni\b|network for sandbox|setup network|plugin type=|network plugin|NetworkReady/i.test(message)) return 'cni';
  if (/runc|OCI runtime|shim task|final child's PID|oom_score_adj/i.test(message)) return 'runc';
  return 'other';
}

export interface ExplainContext {
  sandboxImage: string;
  image: string;
  restrictOomScoreAdj: boolean;
  cniConfDir: string;
  hoistCni: boolean;
  registries: Record<string, RegistryConfig>;
  timeoutMs: number;
  /** The host's answer to lowering its own oom_score_adj to -998, when a runc failure made hoist ask. */
  canLowerOomScoreAdj?: boolean;
}

/** One message that says which part failed, why where hoist can tell, and what to set. */
export function explainPodFailure(step: string, message: string, code: number | undefined, ctx: ExplainContext): string {
  const kind = classifyPodFailure(message, code);
  switch (kind) {
    case 'timeout':
      return `${step}: no answer within ${Math.round(ctx.timeoutMs / 1000)} s (a slow image pull or a hung runtime; containerd: ${message})`;
    case 'sandbox-image': {
      const dx = diagnosePull(ctx.sandboxImage, message, ctx.registries);
      const why = dx.problem === 'other' ? dx.detail : `${dx.message} (containerd: ${dx.detail})`;
      return `${step}: the sandbox image ${ctx.sandboxImage} (sandbox_image) could not be pulled: ${why}`;
    }
    case 'image':
      return `${step}: ${formatPullFailure(ctx.image, diagnosePull(ctx.image, message, ctx.registries))}`;
    case 'cni':
      return `${step}: CNI failed to set up the pod network: ${message}${cniHint(message, ctx)}`;
    case 'runc': {
      const oom = /final child's PID|oom_score_adj/.test(message);
      if (oom && !ctx.restrictOomScoreAdj && ctx.canLowerOomScoreAdj !== true) {
        return `${step}: runc could not start the pod: containerd gives sandboxes oom_score_adj -998, and ${
          ctx.canLowerOomScoreAdj === false
            ? 'this node cannot lower oom_score_adj (no CAP_SYS_RESOURCE, as in some containers-in-containers)'
            : 'lowering it needs CAP_SYS_RESOURCE, which some nodes (containers-in-containers) lack'
        }; set restrict_oom_score_adj = true (containerd: ${message})`;
      }
      return `${step}: runc could not start the ${step === 'RunPodSandbox' ? 'pod sandbox' : 'container'}: ${message}`;
    }
    default:
      return `${step}: ${message}`;
  }
}

/** What to do about a CNI failure, where hoist can tell ('' otherwise). */
function cniHint(message: string, ctx: Pick<ExplainContext, 'cniConfDir' | 'hoistCni'>): string {
  if (/no network config|cni config|not initialized|uninitialized/i.test(message)) {
    return ` (no network configuration in ${ctx.cniConfDir}: install the cluster's CNI plugin, or set cni_conflist = "bridge" for hoist's own)`;
  }
  if (/already has an IP address different from/.test(message)) {
    return ' (the bridge still holds an address of another subnet: hoist apply replaces it when it writes the network, or delete the bridge)';
  }
  return ctx.hoistCni ? " (hoist's bridge network needs the bridge, host-local and loopback plugins in cni_bin_dir and iptables on the node)" : '';
}

const BASE_LABELS = { [POD_TEST_LABEL]: '1' };

/** Runs the pod test on one host; never throws, every failure is in `problems`. */
async function podTest(conn: Pick<Connection, 'openUnixStream' | 'exec'>, o: PodTestOptions): Promise<PodTestResult> {
  const steps: PodTestStep[] = [];
  const problems: string[] = [];
  let address: string | null = null;
  const client = new CriClient({ dial: () => conn.openUnixStream(o.socket), timeoutMs: o.callTimeoutMs, pullTimeoutMs: o.pullTimeoutMs });
  const explainCtx: ExplainContext = {
    sandboxImage: o.sandboxImage,
    image: o.image,
    restrictOomScoreAdj: o.restrictOomScoreAdj,
    cniConfDir: o.cniConfDir,
    hoistCni: o.hoistCni,
    registries: o.registries,
    timeoutMs: o.callTimeoutMs,
  };
  const call = async (service: 'RuntimeService' | 'ImageService', method: string, body: Buffer, timeoutMs = o.callTimeoutMs) =>
    (await client.call(service, method, () => body, { timeoutMs })).body;

  /** Runs one step; a failure is explained and recorded, and ends the test (null). */
  async function step<T>(name: string, f: () => Promise<T>, detail: (v: T) => string, timeoutMs = o.callTimeoutMs): Promise<T | null> {
    const s0 = Date.now();
    try {
      const v = await f();
      steps.push({ name, ms: Date.now() - s0, detail: detail(v) });
      return v;
    } catch (e) {
      const msg = e instanceof CriError ? e.grpcMessage || e.message : (e as Error).message;
      const code = e instanceof CriError ? e.code : undefined;
      if (e instanceof PodTestFailure) problems.push(`${name}: ${msg}`);
      else {
        if (classifyPodFailure(msg, code) === 'runc' && /final child's PID|oom_score_adj/.test(msg))
          explainCtx.canLowerOomScoreAdj = await canLowerOomScoreAdj(conn);
        problems.push(explainPodFailure(name, msg, code, { ...explainCtx, timeoutMs }));
      }
      return null;
    }
  }

  const uid = randomUUID();
  const sandbox: PodSandboxSpec = {
    name: 'hoist-pod-test',
    uid,
    namespace: 'hoist',
    // The systemd driver wants a slice as parent; cgroupfs a path.
    cgroupParent: o.systemdCgroup ? 'hoist.slice' : '/hoist',
    labels: BASE_LABELS,
  };
  const container: ContainerSpec = {
    name: 'probe',
    image: o.image,
    command: ['sh', '-c'],
    args: ['exec sleep 600'],
    labels: BASE_LABELS,
  };
  let podId: string | null = null;
  let ctrId: string | null = null;
  try {
    const ready = await step(
      'Status',
      async () => {
        const st = await client.status();
        const cond = (t: string) => st.conditions.find((c) => c.type === t);
        const rt = cond('RuntimeReady');
        if (!rt?.status) throw new PodTestFailure(`RuntimeReady is not true (${rt?.reason ?? 'absent'}: ${rt?.message ?? ''})`);
        const net = cond('NetworkReady');
        if (net && !net.status) {
          throw new PodTestFailure(`NetworkReady is false (${net.reason}: ${net.message})${cniHint(`${net.reason} ${net.message}`, explainCtx)}`);
        }
        return `RuntimeReady, NetworkReady (CRI ${client.apiVersion})`;
      },
      (v) => v,
    );
    if (ready === null) return done();

    const left = await step(
      'leftovers',
      async () => {
        const pods = decodeListPodSandboxResponse(await call('RuntimeService', 'ListPodSandbox', encodeListPodSandboxRequest(BASE_LABELS)));
        for (const p of pods) {
          await call('RuntimeService', 'StopPodSandbox', encodeIdRequest(p.id));
          await call('RuntimeService', 'RemovePodSandbox', encodeIdRequest(p.id));
        }
        return pods.length;
      },
      (n) => (n ? `removed ${n} pod(s) an interrupted test left` : 'none'),
    );
    if (left === null) return done();

    const image = await step(
      `image ${o.image}`,
      async () => {
        const id = decodeImageStatusResponse(await call('ImageService', 'ImageStatus', encodeImageStatusRequest(o.image)));
        if (id) return 'present';
        // As kubelet's IfNotPresent policy: pulled through CRI, so the registry settings apply.
        try {
          await client.pullImage(o.image, undefined, { timeoutMs: o.pullTimeoutMs });
        } catch (e) {
          const msg = e instanceof CriError ? e.grpcMessage || e.message : (e as Error).message;
          throw new PodTestFailure(
            e instanceof CriError && e.code === GrpcStatus.DEADLINE_EXCEEDED
              ? `pulling ${o.image} took longer than ${Math.round(o.pullTimeoutMs / 1000)} s`
              : formatPullFailure(o.image, diagnosePull(o.image, msg, o.registries)),
          );
        }
        return 'pulled';
      },
      (v) => v,
      o.pullTimeoutMs,
    );
    if (image === null) return done();

    // Pulls the sandbox image when it is missing, hence the pull deadline.
    podId = await step(
      'RunPodSandbox',
      async () => decodeIdResponse(await call('RuntimeService', 'RunPodSandbox', encodeRunPodSandboxRequest(sandbox), o.pullTimeoutMs)),
      (id) => `sandbox ${id.slice(0, 12)} (${o.sandboxImage})`,
      o.pullTimeoutMs,
    );
    if (podId === null) return done();
    const pod = podId;

    const status = await step(
      'PodSandboxStatus',
      async () => {
        const st = decodePodSandboxStatusResponse(await call('RuntimeService', 'PodSandboxStatus', encodeIdRequest(pod)));
        if (!st.ready) throw new PodTestFailure('the sandbox is not ready');
        if (!st.ip) throw new PodTestFailure(`CNI gave the pod no address (network configuration in ${o.cniConfDir})`);
        return st;
      },
      (st) => `ready, address ${st.ip} from CNI${st.additionalIps.length ? ` (+ ${st.additionalIps.join(', ')})` : ''}`,
    );
    if (status === null) return done();

    ctrId = await step(
      'CreateContainer',
      async () => decodeIdResponse(await call('RuntimeService', 'CreateContainer', encodeCreateContainerRequest(pod, container, sandbox))),
      (id) => `container ${id.slice(0, 12)} (${o.image})`,
    );
    if (ctrId === null) return done();
    const ctr = ctrId;

    if (
      (await step(
        'StartContainer',
        () => call('RuntimeService', 'StartContainer', encodeIdRequest(ctr)),
        () => '',
      )) === null
    )
      return done();

    const running = await step(
      'ContainerStatus',
      async () => {
        const st = decodeContainerStatusResponse(await call('RuntimeService', 'ContainerStatus', encodeIdRequest(ctr)));
        if (st.state !== 'RUNNING') {
          throw new PodTestFailure(
            `the container is ${st.state}${st.state === 'EXITED' ? ` with code ${st.exitCode}` : ''}${st.reason ? ` (${st.reason}${st.message ? `: ${st.message}` : ''})` : ''}; the image must have sh and sleep`,
          );
        }
        return st.state;
      },
      (s) => s,
    );
    if (running === null) return done();

    await step(
      'ExecSync',
      async () => {
        // `ip` where the image has it; /proc/net/fib_trie lists the addresses in any image.
        const r = decodeExecSyncResponse(
          await call(
            'RuntimeService',
            'ExecSync',
            encodeExecSyncRequest(ctr, ['sh', '-c', 'ip -4 -o addr show 2>/dev/null || cat /proc/net/fib_trie'], 20),
            o.callTimeoutMs + 5_000,
          ),
        );
        if (r.exitCode !== 0) throw new PodTestFailure(`exit ${r.exitCode}: ${(r.stderr || r.stdout).trim().slice(0, 300)}`);
        if (!addressSeen(r.stdout, status.ip))
          throw new PodTestFailure(
            `the pod's address ${status.ip} is not among the container's addresses: ${r.stdout.trim().replace(/\s+/g, ' ').slice(0, 300)}`,
          );
        address = status.ip;
        return status.ip;
      },
      (ip) => `the container runs and has ${ip}`,
    );
    return done();
  } finally {
    await cleanUp();
    await client.close().catch(() => undefined);
  }

  function done(): PodTestResult {
    return { ok: false, steps, problems, address, ms: 0 };
  }

  async function cleanUp(): Promise<void> {
    const ctr = ctrId;
    const pod = podId;
    if (ctr) {
      await step(
        'StopContainer',
        () => call('RuntimeService', 'StopContainer', encodeStopContainerRequest(ctr, 2)),
        () => '',
      );
      await step(
        'RemoveContainer',
        () => call('RuntimeService', 'RemoveContainer', encodeIdRequest(ctr)),
        () => '',
      );
    }
    if (pod) {
      await step(
        'StopPodSandbox',
        () => call('RuntimeService', 'StopPodSandbox', encodeIdRequest(pod)),
        () => '',
      );
      await step(
        'RemovePodSandbox',
        () => call('RuntimeService', 'RemovePodSandbox', encodeIdRequest(pod)),
        () => '',
      );
      await step(
        'nothing left',
        async () => {
          const pods = decodeListPodSandboxResponse(await call('RuntimeService', 'ListPodSandbox', encodeListPodSandboxRequest(BASE_LABELS)));
          if (pods.length) throw new PodTestFailure(`${pods.length} pod sandbox(es) still listed`);
          return 0;
        },
        () => 'no pod test sandbox listed',
      );
    }
  }
}

/** Finishes a result: ok only when the address was seen and nothing failed, clean-up included. */
export async function runPodTest(conn: Pick<Connection, 'openUnixStream' | 'exec'>, o: PodTestOptions): Promise<PodTestResult> {
  const t0 = Date.now();
  const r = await podTest(conn, o);
  return { ...r, ok: r.problems.length === 0 && r.address !== null, ms: Date.now() - t0 };
}

/** A failure the test itself found (not a runtime error to classify). */
class PodTestFailure extends HostError {}

/** `ip -o addr` prints `10.88.0.5/16`; fib_trie lists the address as a `/32 host LOCAL` leaf. */
export function addressSeen(output: string, ip: string): boolean {
  const esc = ip.replace(/\./g, '\\.');
  return new RegExp(`(^|[^0-9.])${esc}(/\\d+)?([^0-9.]|$)`, 'm').test(output);
}

async function canLowerOomScoreAdj(conn: Pick<Connection, 'exec'>): Promise<boolean | undefined> {
  try {
    // A subshell's own score: lowering it is what runc does for the sandbox, and what needs CAP_SYS_RESOURCE.
    const r = await conn.exec(`sh -c 'echo -998 > /proc/self/oom_score_adj' 2>/dev/null && echo can || echo cannot`);
    const out = r.stdout.trim();
    return out === 'can' ? true : out === 'cannot' ? false : undefined;
  } catch {
    return undefined;
  }
}
