/**
 * CRI calls for tests that check a node beyond what verification does: pod sandboxes on the host
 * network (which pull the pause image through the CRI plugin's registry settings) and image lists.
 * The messages are hoist's own (cri/pod.ts); only ListImages, which hoist never sends, is encoded
 * here. They ride on hoist's client through its public call().
 */
import { ProtoMessage } from '../../src/modules/containerd/cri/protobuf.js';
import type { CallOptions, CriClient } from '../../src/modules/containerd/cri/client.js';
import { decodeIdResponse, encodeIdRequest, encodeRunPodSandboxRequest, type PodSandboxSpec } from '../../src/modules/containerd/cri/pod.js';

export interface ImageInfo {
  id: string;
  repoTags: string[];
  repoDigests: string[];
  size: number;
  pinned: boolean;
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
  return decodeIdResponse(body);
}

export async function stopPodSandbox(client: CriClient, id: string, opts?: CallOptions): Promise<void> {
  await client.call('RuntimeService', 'StopPodSandbox', () => encodeIdRequest(id), opts);
}

export async function removePodSandbox(client: CriClient, id: string, opts?: CallOptions): Promise<void> {
  await client.call('RuntimeService', 'RemovePodSandbox', () => encodeIdRequest(id), opts);
}

export async function listImages(client: CriClient, opts?: CallOptions): Promise<ImageInfo[]> {
  const { body } = await client.call('ImageService', 'ListImages', () => encodeListImagesRequest(), opts);
  return decodeListImagesResponse(body);
}
