/**
 * The CRI messages hoist sends and reads, after kubernetes/cri-api pkg/apis/runtime/v1/api.proto
 * (package runtime.v1); the deprecated runtime.v1alpha2 package has the same field numbers for them.
 */
import { ProtoMessage, ProtoWriter } from './protobuf.js';

export interface VersionResponse {
  /** Version of the kubelet runtime API (`0.1.0`). */
  version: string;
  runtimeName: string;
  runtimeVersion: string;
  runtimeApiVersion: string;
}

export interface RuntimeCondition {
  type: string;
  status: boolean;
  reason: string;
  message: string;
}

export interface StatusResponse {
  conditions: RuntimeCondition[];
  /** Only filled when verbose was requested; values are JSON documents. */
  info: Record<string, string>;
}

/** Registry credentials for one pull. Never logged, never put in error messages. */
export interface AuthConfig {
  username?: string;
  password?: string;
  /** base64("user:password") */
  auth?: string;
  serverAddress?: string;
  identityToken?: string;
  registryToken?: string;
}

export function encodeVersionRequest(apiVersion: string): Buffer {
  return new ProtoWriter().string(1, apiVersion).finish();
}

export function decodeVersionResponse(buf: Uint8Array): VersionResponse {
  const m = new ProtoMessage(buf);
  return { version: m.string(1), runtimeName: m.string(2), runtimeVersion: m.string(3), runtimeApiVersion: m.string(4) };
}

export function encodeStatusRequest(verbose: boolean): Buffer {
  const w = new ProtoWriter();
  if (verbose) w.bool(1, true);
  return w.finish();
}

export function decodeStatusResponse(buf: Uint8Array): StatusResponse {
  const m = new ProtoMessage(buf);
  const conditions = (m.message(1)?.messages(1) ?? []).map((c) => ({
    type: c.string(1),
    status: c.bool(2),
    reason: c.string(3),
    message: c.string(4),
  }));
  return { conditions, info: m.stringMap(2) };
}

export function encodePullImageRequest(image: string, auth?: AuthConfig): Buffer {
  const w = new ProtoWriter().message(1, new ProtoWriter().string(1, image));
  if (auth) {
    const a = new ProtoWriter();
    // proto3 omits empty strings; the server treats absent and empty alike.
    const fields: [number, string | undefined][] = [
      [1, auth.username],
      [2, auth.password],
      [3, auth.auth],
      [4, auth.serverAddress],
      [5, auth.identityToken],
      [6, auth.registryToken],
    ];
    for (const [n, v] of fields) if (v) a.string(n, v);
    w.message(2, a);
  }
  return w.finish();
}

export function decodePullImageResponse(buf: Uint8Array): string {
  return new ProtoMessage(buf).string(1);
}

/** A pod sandbox as kubelet asks for one; only what a runtime check needs. */
