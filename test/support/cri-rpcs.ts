/**
 * CRI calls hoist itself never makes, for tests that check a node beyond what verification does:
 * pod sandboxes (which pull the pause image through the CRI plugin's registry settings) and image
 * lists. They ride on hoist's client through its public call().
 */
import { ProtoMessage, ProtoWriter } from '../../src/modules/containerd/cri/protobuf.js';
import type { CallOptions, CriClient } from '../../src/modules/containerd/cri/client.js';

export interface ImageInfo {
  id: string;
  repoTags: string[];
  repoDigests: string[];
  size: number;
  pinned: boolean;
}

export interface PodSandboxSpec {
  name: string;
  uid: string;
  namespace: string;
  attempt?: number;
  /** Parent cgroup; with the systemd cgroup driver a slice name such as `hoist.slice`. */
  cgroupParent?: string;
  /** Share the node's network namespace (hostNetwork): no CNI involved. */
  hostNetwork?: boolean;
  labels?: Record<string, string>;
}

// runtime.v1 NamespaceMode; v1alpha2 uses the same values.
const NAMESPACE_MODE_NODE = 2;

export function encodeRunPodSandboxRequest(spec: PodSandboxSpec, runtimeHandler = ''): Buffer {
  const meta = new ProtoWriter().string(1, spec.name).string(2, spec.uid).string(3, spec.namespace);
  if (spec.attempt) meta.uint64(4, spec.attempt);
  const linux = new ProtoWriter();
  if (spec.cgroupParent) linux.string(1, spec.cgroupParent);
  if (spec.hostNetwork) {
    // LinuxSandboxSecurityContext.namespace_options(1) → NamespaceOption.network(1) = NODE
    linux.message(2, new ProtoWriter().message(1, new ProtoWriter().uint64(1, NAMESPACE_MODE_NODE)));
  }
  const config = new ProtoWriter().message(1, meta);
  if (spec.labels) config.stringMap(6, spec.labels);
  config.message(8, linux);
  const w = new ProtoWriter().message(1, config);
  if (runtimeHandler) w.string(2, runtimeHandler);
  return w.finish();
}

export function decodeRunPodSandboxResponse(buf: Uint8Array): string {
  return new ProtoMessage(buf).string(1);
}

/** StopPodSandboxRequest and RemovePodSandboxRequest: just the sandbox id. */
export function encodePodSandboxIdRequest(id: string): Buffer {
  return new ProtoWriter().string(1, id).finish();
}

export function encodeListImagesRequest(): Buffer {
  return Buffer.alloc(0);
}

export function decodeListImagesResponse(buf: Uint8Array): ImageInfo[] {
  return new ProtoMessage(buf).messages(1).map((i) => ({
    id: i.string(1),
    repoTags: i.strings(2),
    repoDigests: i.strings(3),
    size: Number(i.uint64(4)),
    pinned: i.bool(8),
  }));
}

/** Creates and starts a pod sandbox (the runtime pulls its sandbox image first); returns its id. */
export async function runPodSandbox(client: CriClient, spec: PodSandboxSpec, runtimeHandler = '', opts?: CallOptions): Promise<string> {
  const { body } = await client.call('RuntimeService', 'RunPodSandbox', () => encodeRunPodSandboxRequest(spec, runtimeHandler), {
    timeoutMs: opts?.timeoutMs ?? client.pullTimeoutMs,
  });
  return decodeRunPodSandboxResponse(body);
}

export async function stopPodSandbox(client: CriClient, id: string, opts?: CallOptions): Promise<void> {
  await client.call('RuntimeService', 'StopPodSandbox', () => encodePodSandboxIdRequest(id), opts);
}

export async function removePodSandbox(client: CriClient, id: string, opts?: CallOptions): Promise<void> {
  await client.call('RuntimeService', 'RemovePodSandbox', () => encodePodSandboxIdRequest(id), opts);
}

export async function listImages(client: CriClient, opts?: CallOptions): Promise<ImageInfo[]> {
  const { body } = await client.call('ImageService', 'ListImages', () => encodeListImagesRequest(), opts);
  return decodeListImagesResponse(body);
}
