/**
 * The CRI messages of a pod's life as kubelet drives it, for the pod test: sandboxes, containers,
 * ExecSync, image status. Field numbers after kubernetes/cri-api pkg/apis/runtime/v1/api.proto;
 * runtime.v1alpha2 (containerd 1.4) numbers these messages the same way. Only the fields the pod
 * test sets or reads are here.
 */
import { ProtoMessage, ProtoWriter } from './protobuf.js';

export interface PodSandboxSpec {
  name: string;
  uid: string;
  namespace: string;
  attempt?: number;
  /** Parent cgroup: a slice name (`hoist.slice`) with the systemd driver, a path otherwise. */
  cgroupParent: string;
  labels?: Record<string, string>;
  /** Share the node's network namespace (hostNetwork): no CNI involved. */
  hostNetwork?: boolean;
}

// runtime.v1 NamespaceMode (v1alpha2 uses the same values): NODE shares the host's namespace.
const NAMESPACE_MODE_NODE = 2;

export interface ContainerSpec {
  name: string;
  image: string;
  command: string[];
  args: string[];
  labels: Record<string, string>;
}

/**
 * PodSandboxConfig: metadata 1 {name 1, uid 2, namespace 3, attempt 4}, labels 6,
 * linux 8 {cgroup_parent 1, security_context 2 {namespace_options 1 {network 1}}}.
 */
export function encodePodSandboxConfig(spec: PodSandboxSpec): ProtoWriter {
  const meta = new ProtoWriter().string(1, spec.name).string(2, spec.uid).string(3, spec.namespace);
  if (spec.attempt) meta.uint64(4, spec.attempt);
  const linux = new ProtoWriter().string(1, spec.cgroupParent);
  if (spec.hostNetwork) linux.message(2, new ProtoWriter().message(1, new ProtoWriter().uint64(1, NAMESPACE_MODE_NODE)));
  // No log_directory (3): containerd then keeps no log files that kubelet would have cleaned up.
  const config = new ProtoWriter().message(1, meta);
  if (spec.labels) config.stringMap(6, spec.labels);
  return config.message(8, linux);
}

/** RunPodSandboxRequest: config 1, runtime_handler 2 (empty: the default runtime). */
export function encodeRunPodSandboxRequest(spec: PodSandboxSpec, runtimeHandler = ''): Buffer {
  const w = new ProtoWriter().message(1, encodePodSandboxConfig(spec));
  if (runtimeHandler) w.string(2, runtimeHandler);
  return w.finish();
}

/** Every request that names one object by id in field 1: Stop/RemovePodSandbox, PodSandboxStatus, Start/RemoveContainer, ContainerStatus. */
export function encodeIdRequest(id: string): Buffer {
  return new ProtoWriter().string(1, id).finish();
}

/** The id in field 1 of RunPodSandboxResponse and CreateContainerResponse. */
export function decodeIdResponse(buf: Uint8Array): string {
  return new ProtoMessage(buf).string(1);
}

/** ListPodSandboxRequest: filter 1 {label_selector 3}. */
export function encodeListPodSandboxRequest(labelSelector: Record<string, string>): Buffer {
  return new ProtoWriter().message(1, new ProtoWriter().stringMap(3, labelSelector)).finish();
}

export interface PodSandboxSummary {
  id: string;
  /** SANDBOX_READY = 0, SANDBOX_NOTREADY = 1. */
  ready: boolean;
}

/** ListPodSandboxResponse: items 1 {id 1, state 3}. */
export function decodeListPodSandboxResponse(buf: Uint8Array): PodSandboxSummary[] {
  return new ProtoMessage(buf).messages(1).map((p) => ({ id: p.string(1), ready: p.uint64(3) === 0n }));
}

export interface PodSandboxStatus {
  ready: boolean;
  /** The address CNI gave the pod ('' without one). */
  ip: string;
  additionalIps: string[];
}

/** PodSandboxStatusResponse: status 1 {state 3, network 5 {ip 1, additional_ips 2 {ip 1}}}. */
export function decodePodSandboxStatusResponse(buf: Uint8Array): PodSandboxStatus {
  const st = new ProtoMessage(buf).message(1);
  const net = st?.message(5);
  return { ready: (st?.uint64(3) ?? 1n) === 0n, ip: net?.string(1) ?? '', additionalIps: (net?.messages(2) ?? []).map((a) => a.string(1)) };
}

/**
 * CreateContainerRequest: pod_sandbox_id 1, config 2, sandbox_config 3. ContainerConfig:
 * metadata 1 {name 1}, image 2 {image 1}, command 3, args 4, labels 9.
 */
export function encodeCreateContainerRequest(podId: string, spec: ContainerSpec, sandbox: PodSandboxSpec): Buffer {
  const config = new ProtoWriter().message(1, new ProtoWriter().string(1, spec.name)).message(2, new ProtoWriter().string(1, spec.image));
  for (const c of spec.command) config.string(3, c);
  for (const a of spec.args) config.string(4, a);
  config.stringMap(9, spec.labels);
  return new ProtoWriter().string(1, podId).message(2, config).message(3, encodePodSandboxConfig(sandbox)).finish();
}

/** StopContainerRequest: container_id 1, timeout 2 (seconds before SIGKILL). */
export function encodeStopContainerRequest(id: string, timeoutSeconds: number): Buffer {
  return new ProtoWriter().string(1, id).uint64(2, timeoutSeconds).finish();
}

export const CONTAINER_STATES = ['CREATED', 'RUNNING', 'EXITED', 'UNKNOWN'] as const;
export type ContainerState = (typeof CONTAINER_STATES)[number];

export interface ContainerStatus {
  state: ContainerState;
  exitCode: number;
  reason: string;
  message: string;
}

/** ContainerStatusResponse: status 1 {state 3, exit_code 7, reason 10, message 11}. */
export function decodeContainerStatusResponse(buf: Uint8Array): ContainerStatus {
  const st = new ProtoMessage(buf).message(1);
  const state = CONTAINER_STATES[Number(st?.uint64(3) ?? 3n)] ?? 'UNKNOWN';
  // exit_code is an int32: a negative one arrives as a 64-bit two's complement varint.
  const raw = st?.uint64(7) ?? 0n;
  return { state, exitCode: Number(BigInt.asIntN(32, raw)), reason: st?.string(10) ?? '', message: st?.string(11) ?? '' };
}

/** ExecSyncRequest: container_id 1, cmd 2 (repeated), timeout 3 (seconds). */
export function encodeExecSyncRequest(id: string, cmd: string[], timeoutSeconds: number): Buffer {
  const w = new ProtoWriter().string(1, id);
  for (const c of cmd) w.string(2, c);
  return w.uint64(3, timeoutSeconds).finish();
}

export interface ExecSyncResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/** ExecSyncResponse: stdout 1, stderr 2 (bytes), exit_code 3. */
export function decodeExecSyncResponse(buf: Uint8Array): ExecSyncResult {
  const m = new ProtoMessage(buf);
  return { stdout: m.string(1), stderr: m.string(2), exitCode: Number(BigInt.asIntN(32, m.uint64(3))) };
}

/** ImageStatusRequest: image 1 {image 1}. */
export function encodeImageStatusRequest(image: string): Buffer {
  return new ProtoWriter().message(1, new ProtoWriter().string(1, image)).finish();
}

/** ImageStatusResponse: image 1 {id 1}; no image field when the runtime has none by that name. */
export function decodeImageStatusResponse(buf: Uint8Array): string | null {
  return new ProtoMessage(buf).message(1)?.string(1) || null;
}
