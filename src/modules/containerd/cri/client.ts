/**
 * A minimal CRI (Kubernetes Container Runtime Interface) client for what verification needs:
 * Version, Status and PullImage, negotiating runtime.v1 or the v1alpha2 of containerd 1.4.
 * Three layers, each in its file: the protobuf codec (protobuf.ts), the CRI messages
 * (messages.ts), and unary gRPC over HTTP/2 over a dialled stream (grpc.ts).
 */
import type { Duplex } from 'node:stream';
import { CriError, GrpcChannel, GrpcStatus } from './grpc.js';
import {
  decodePullImageResponse,
  decodeStatusResponse,
  decodeVersionResponse,
  encodePullImageRequest,
  encodeStatusRequest,
  encodeVersionRequest,
  type AuthConfig,
  type StatusResponse,
  type VersionResponse,
} from './messages.js';

export type CriApiVersion = 'v1' | 'v1alpha2';
export type CriService = 'RuntimeService' | 'ImageService';

export interface CallOptions {
  /** Milliseconds; overrides the client default. */
  timeoutMs?: number;
}

export interface CriClientOptions {
  /**
   * Opens a fresh byte stream to the CRI socket (over SSH: `conn.openUnixStream(socket)`). Called
   * once per HTTP/2 session, again after a session is lost (a timed-out call drops it).
   */
  dial: () => Promise<Duplex>;
  /** Per-call deadline, sent as grpc-timeout and enforced locally. Default 10 s. */
  timeoutMs?: number;
  /** Deadline for pullImage, which downloads layers. Default 10 min. */
  pullTimeoutMs?: number;
  /** Skip negotiation and use this API package. */
  apiVersion?: CriApiVersion;
  /** Largest response message accepted. Default 64 MiB. */
  maxMessageBytes?: number;
}

// containerd serves runtime.v1 from 1.5 on; 1.4 only has v1alpha2.
const API_ORDER: readonly CriApiVersion[] = ['v1', 'v1alpha2'];

export class CriClient {
  private readonly channel: GrpcChannel;
  private api: CriApiVersion | null;
  private readonly timeoutMs: number;
  /** Deadline of calls that pull images (PullImage here; RunPodSandbox in tests). */
  readonly pullTimeoutMs: number;

  constructor(opts: CriClientOptions) {
    this.channel = new GrpcChannel({ dial: opts.dial, maxMessageBytes: opts.maxMessageBytes });
    this.api = opts.apiVersion ?? null;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.pullTimeoutMs = opts.pullTimeoutMs ?? 600_000;
  }

  /** The API package that answered, once a call has succeeded (or as configured). */
  get apiVersion(): CriApiVersion | null {
    return this.api;
  }

  async version(opts?: CallOptions): Promise<VersionResponse & { api: CriApiVersion }> {
    // VersionRequest.version names the kubelet API version; containerd ignores the value
    // but kubelet sends the package version, so do the same.
    const { api, body } = await this.call('RuntimeService', 'Version', (api) => encodeVersionRequest(api), opts);
    return { ...decodeVersionResponse(body), api };
  }

  async status(verbose = false, opts?: CallOptions): Promise<StatusResponse> {
    const { body } = await this.call('RuntimeService', 'Status', () => encodeStatusRequest(verbose), opts);
    return decodeStatusResponse(body);
  }

  /** Pulls through the CRI plugin (so its registry config applies); returns the image ref. */
  async pullImage(image: string, auth?: AuthConfig, opts?: CallOptions): Promise<string> {
    const { body } = await this.call('ImageService', 'PullImage', () => encodePullImageRequest(image, auth), {
      timeoutMs: opts?.timeoutMs ?? this.pullTimeoutMs,
    });
    return decodePullImageResponse(body);
  }

  /** Closes the HTTP/2 session after in-flight calls finish. */
  close(): Promise<void> {
    return this.channel.close();
  }

  /**
   * One unary CRI call in the negotiated API package (v1 first, then v1alpha2). Public so tests can
   * make the calls hoist itself never needs (sandboxes, image lists) with their own messages.
   */
  async call(service: CriService, method: string, encode: (api: CriApiVersion) => Buffer, opts?: CallOptions): Promise<{ api: CriApiVersion; body: Buffer }> {
    const timeoutMs = opts?.timeoutMs ?? this.timeoutMs;
    if (this.api) return { api: this.api, body: await this.channel.unary(`/runtime.${this.api}.${service}/${method}`, encode(this.api), timeoutMs) };
    let lastErr: unknown;
    for (const api of API_ORDER) {
      try {
        const body = await this.channel.unary(`/runtime.${api}.${service}/${method}`, encode(api), timeoutMs);
        this.api = api;
        return { api, body };
      } catch (e) {
        if (e instanceof CriError && e.code === GrpcStatus.UNIMPLEMENTED) {
          lastErr = e;
          continue;
        }
        throw e;
      }
    }
    throw lastErr;
  }
}
