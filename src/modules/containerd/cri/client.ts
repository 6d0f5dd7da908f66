/**
 * A minimal CRI (Kubernetes Container Runtime Interface) client: unary gRPC over HTTP/2 over any
 * duplex stream. hoist reaches containerd's socket through an SSH stream-local forward, so it
 * cannot use a gRPC library that wants to dial by itself, and the handful of messages it needs
 * do not justify a protobuf toolchain: the wire format is written out here.
 *
 * Message layouts follow kubernetes/cri-api pkg/apis/runtime/v1/api.proto (package runtime.v1);
 * the deprecated runtime.v1alpha2 package has the same field numbers for these messages.
 */
import http2 from 'node:http2';
import type { Duplex } from 'node:stream';

// =============================================================================================
// Protobuf wire format (proto3): just varint, fixed and length-delimited fields.

export const WireType = { VARINT: 0, I64: 1, LEN: 2, I32: 5 } as const;
export type WireTypeValue = (typeof WireType)[keyof typeof WireType];

export class ProtobufError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtobufError';
  }
}

export function encodeVarint(value: number | bigint): Buffer {
  let v = BigInt(value);
  if (v < 0n) throw new ProtobufError(`cannot encode negative varint ${v}`);
  if (v > 0xffff_ffff_ffff_ffffn) throw new ProtobufError(`varint ${v} exceeds 64 bits`);
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v !== 0n) byte |= 0x80;
    out.push(byte);
  } while (v !== 0n);
  return Buffer.from(out);
}

export function decodeVarint(buf: Uint8Array, offset: number): { value: bigint; next: number } {
  let result = 0n;
  let shift = 0n;
  for (let i = offset; i < buf.length && i < offset + 10; i++) {
    const b = buf[i];
    result |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return { value: result & 0xffff_ffff_ffff_ffffn, next: i + 1 };
    shift += 7n;
  }
  throw new ProtobufError(offset + 10 <= buf.length ? `varint at ${offset} longer than 10 bytes` : `truncated varint at ${offset}`);
}

/** Builds one message. Field order is the caller's; proto3 readers accept any order. */
export class ProtoWriter {
  private readonly parts: Buffer[] = [];

  private tag(field: number, wire: WireTypeValue): void {
    if (!Number.isInteger(field) || field < 1 || field > 0x1fffffff) throw new ProtobufError(`invalid field number ${field}`);
    this.parts.push(encodeVarint((BigInt(field) << 3n) | BigInt(wire)));
  }

  uint64(field: number, value: number | bigint): this {
    this.tag(field, WireType.VARINT);
    this.parts.push(encodeVarint(value));
    return this;
  }

  bool(field: number, value: boolean): this {
    return this.uint64(field, value ? 1 : 0);
  }

  bytes(field: number, value: Uint8Array): this {
    this.tag(field, WireType.LEN);
    this.parts.push(encodeVarint(value.length), Buffer.from(value.buffer, value.byteOffset, value.byteLength));
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, Buffer.from(value, 'utf8'));
  }

  message(field: number, value: ProtoWriter | Uint8Array): this {
    return this.bytes(field, value instanceof ProtoWriter ? value.finish() : value);
  }

  /** map<string,string>: each entry is a nested message {key = 1, value = 2}. */
  stringMap(field: number, entries: Record<string, string>): this {
    for (const [k, v] of Object.entries(entries)) {
      this.message(field, new ProtoWriter().string(1, k).string(2, v));
    }
    return this;
  }

  finish(): Buffer {
    return Buffer.concat(this.parts);
  }
}

export interface ProtoField {
  field: number;
  wire: WireTypeValue;
  /** bigint for VARINT; the raw bytes for LEN, I64 and I32. */
  value: bigint | Buffer;
}

export function decodeFields(buf: Uint8Array): ProtoField[] {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const fields: ProtoField[] = [];
  let pos = 0;
  while (pos < b.length) {
    const t = decodeVarint(b, pos);
    pos = t.next;
    const field = Number(t.value >> 3n);
    const wire = Number(t.value & 7n);
    if (field < 1) throw new ProtobufError(`invalid field number 0 at ${pos}`);
    switch (wire) {
      case WireType.VARINT: {
        const v = decodeVarint(b, pos);
        pos = v.next;
        fields.push({ field, wire, value: v.value });
        break;
      }
      case WireType.LEN: {
        const l = decodeVarint(b, pos);
        const len = Number(l.value);
        if (l.next + len > b.length) throw new ProtobufError(`field ${field}: length ${len} overruns message`);
        fields.push({ field, wire, value: b.subarray(l.next, l.next + len) });
        pos = l.next + len;
        break;
      }
      case WireType.I64:
      case WireType.I32: {
        const len = wire === WireType.I64 ? 8 : 4;
        if (pos + len > b.length) throw new ProtobufError(`field ${field}: truncated fixed${len * 8}`);
        fields.push({ field, wire, value: b.subarray(pos, pos + len) });
        pos += len;
        break;
      }
      default:
        throw new ProtobufError(`field ${field}: unsupported wire type ${wire}`);
    }
  }
  return fields;
}

/** Typed access to a decoded message; unknown fields are ignored, as proto3 requires. */
export class ProtoMessage {
  readonly fields: ProtoField[];

  constructor(buf: Uint8Array) {
    this.fields = decodeFields(buf);
  }

  private all(field: number, wire: WireTypeValue): ProtoField[] {
    return this.fields.filter((f) => {
      if (f.field !== field) return false;
      if (f.wire !== wire) throw new ProtobufError(`field ${field}: wire type ${f.wire}, expected ${wire}`);
      return true;
    });
  }

  private lastBytes(field: number): Buffer | null {
    const fs = this.all(field, WireType.LEN);
    return fs.length ? (fs[fs.length - 1].value as Buffer) : null;
  }

  /** proto3 scalar: the last occurrence wins, absent means the default. */
  string(field: number): string {
    return this.lastBytes(field)?.toString('utf8') ?? '';
  }

  strings(field: number): string[] {
    return this.all(field, WireType.LEN).map((f) => (f.value as Buffer).toString('utf8'));
  }

  uint64(field: number): bigint {
    const fs = this.all(field, WireType.VARINT);
    return fs.length ? (fs[fs.length - 1].value as bigint) : 0n;
  }

  bool(field: number): boolean {
    return this.uint64(field) !== 0n;
  }

  /** A singular nested message; several occurrences are merged, as protobuf specifies. */
  message(field: number): ProtoMessage | null {
    const fs = this.all(field, WireType.LEN);
    if (fs.length === 0) return null;
    return new ProtoMessage(Buffer.concat(fs.map((f) => f.value as Buffer)));
  }

  messages(field: number): ProtoMessage[] {
    return this.all(field, WireType.LEN).map((f) => new ProtoMessage(f.value as Buffer));
  }

  stringMap(field: number): Record<string, string> {
    const out: Record<string, string> = {};
    for (const entry of this.messages(field)) out[entry.string(1)] = entry.string(2);
    return out;
  }
}

// =============================================================================================
// CRI messages

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

export interface ImageInfo {
  id: string;
  repoTags: string[];
  repoDigests: string[];
  size: number;
  pinned: boolean;
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
      [1, auth.username], [2, auth.password], [3, auth.auth],
      [4, auth.serverAddress], [5, auth.identityToken], [6, auth.registryToken],
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

// =============================================================================================
// gRPC framing: each message is 1 byte compressed-flag + 4 bytes big-endian length + payload.

export const GrpcStatus = {
  OK: 0, CANCELLED: 1, UNKNOWN: 2, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5,
  ALREADY_EXISTS: 6, PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8, FAILED_PRECONDITION: 9,
  ABORTED: 10, OUT_OF_RANGE: 11, UNIMPLEMENTED: 12, INTERNAL: 13, UNAVAILABLE: 14,
  DATA_LOSS: 15, UNAUTHENTICATED: 16,
} as const;

const STATUS_NAMES: Record<number, string> = Object.fromEntries(Object.entries(GrpcStatus).map(([k, v]) => [v, k]));

export function grpcStatusName(code: number): string {
  return STATUS_NAMES[code] ?? `CODE_${code}`;
}

export function encodeGrpcFrame(message: Uint8Array): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt8(0, 0);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

/** Reassembles length-prefixed messages from arbitrarily split DATA chunks. */
export class GrpcFrameReader {
  private buf: Buffer = Buffer.alloc(0);

  constructor(private readonly maxMessageBytes = 64 * 1024 * 1024) {}

  push(chunk: Uint8Array): Buffer[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : Buffer.from(chunk);
    const out: Buffer[] = [];
    while (this.buf.length >= 5) {
      const flag = this.buf.readUInt8(0);
      const len = this.buf.readUInt32BE(1);
      // hoist never advertises grpc-accept-encoding, so a compressed message is a protocol error.
      if (flag !== 0) throw new ProtobufError(`compressed gRPC message (flag ${flag}) not supported`);
      if (len > this.maxMessageBytes) throw new ProtobufError(`gRPC message of ${len} bytes exceeds limit ${this.maxMessageBytes}`);
      if (this.buf.length < 5 + len) break;
      out.push(this.buf.subarray(5, 5 + len));
      this.buf = this.buf.subarray(5 + len);
    }
    return out;
  }

  /** Bytes of an incomplete message still buffered. */
  get pending(): number {
    return this.buf.length;
  }
}

// =============================================================================================
// Client

export type CriApiVersion = 'v1' | 'v1alpha2';
export type CriService = 'RuntimeService' | 'ImageService';

export class CriError extends Error {
  constructor(
    /** gRPC status code (GrpcStatus). */
    readonly code: number,
    /** grpc-message as sent by the server, decoded. */
    readonly grpcMessage: string,
    /** Full method path, e.g. /runtime.v1.RuntimeService/Version. */
    readonly method: string,
  ) {
    super(`${method}: ${grpcStatusName(code)}${grpcMessage ? `: ${grpcMessage}` : ''}`);
    this.name = 'CriError';
  }
}

export interface CallOptions {
  /** Milliseconds; overrides the client default. */
  timeoutMs?: number;
}

export interface CriClientOptions {
  /** Opens a fresh byte stream to the CRI socket each time a connection is needed. */
  createConnection: () => Duplex;
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

function httpToGrpc(status: number): number {
  // https://github.com/grpc/grpc/blob/master/doc/http-grpc-status-mapping.md
  switch (status) {
    case 400: return GrpcStatus.INTERNAL;
    case 401: return GrpcStatus.UNAUTHENTICATED;
    case 403: return GrpcStatus.PERMISSION_DENIED;
    case 404: return GrpcStatus.UNIMPLEMENTED;
    case 429: case 502: case 503: case 504: return GrpcStatus.UNAVAILABLE;
    default: return GrpcStatus.UNKNOWN;
  }
}

/** grpc-timeout allows at most 8 digits per unit. */
export function grpcTimeout(ms: number): string {
  const n = Math.max(1, Math.ceil(ms));
  return n <= 99_999_999 ? `${n}m` : `${Math.min(99_999_999, Math.ceil(n / 1000))}S`;
}

function decodeGrpcMessage(v: string | string[] | undefined): string {
  const s = Array.isArray(v) ? v.join(', ') : v ?? '';
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function headerStatus(h: http2.IncomingHttpHeaders): number | null {
  const v = h['grpc-status'];
  if (v === undefined) return null;
  const n = Number(Array.isArray(v) ? v[0] : v);
  return Number.isInteger(n) ? n : GrpcStatus.UNKNOWN;
}

export class CriClient {
  private session: http2.ClientHttp2Session | null = null;
  private active = 0;
  private api: CriApiVersion | null;
  private readonly timeoutMs: number;
  private readonly pullTimeoutMs: number;
  private readonly maxMessageBytes: number;

  constructor(private readonly opts: CriClientOptions) {
    this.api = opts.apiVersion ?? null;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.pullTimeoutMs = opts.pullTimeoutMs ?? 600_000;
    this.maxMessageBytes = opts.maxMessageBytes ?? 64 * 1024 * 1024;
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

  /**
   * Creates and starts a pod sandbox; the runtime pulls its configured sandbox (pause) image first
   * if it is not there, which is the pull kubelet never asks for itself. Returns the sandbox id.
   */
  async runPodSandbox(spec: PodSandboxSpec, runtimeHandler = '', opts?: CallOptions): Promise<string> {
    const { body } = await this.call('RuntimeService', 'RunPodSandbox', () => encodeRunPodSandboxRequest(spec, runtimeHandler), {
      timeoutMs: opts?.timeoutMs ?? this.pullTimeoutMs,
    });
    return decodeRunPodSandboxResponse(body);
  }

  async stopPodSandbox(id: string, opts?: CallOptions): Promise<void> {
    await this.call('RuntimeService', 'StopPodSandbox', () => encodePodSandboxIdRequest(id), opts);
  }

  async removePodSandbox(id: string, opts?: CallOptions): Promise<void> {
    await this.call('RuntimeService', 'RemovePodSandbox', () => encodePodSandboxIdRequest(id), opts);
  }

  async listImages(opts?: CallOptions): Promise<ImageInfo[]> {
    const { body } = await this.call('ImageService', 'ListImages', () => encodeListImagesRequest(), opts);
    return decodeListImagesResponse(body);
  }

  /** Closes the HTTP/2 session after in-flight calls finish (destroys it if that takes over 2 s). */
  async close(): Promise<void> {
    const s = this.session;
    this.session = null;
    if (!s || s.destroyed) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => { s.destroy(); resolve(); }, 2000);
      timer.unref();
      s.close(() => { clearTimeout(timer); resolve(); });
    });
  }

  private async call(
    service: CriService,
    method: string,
    encode: (api: CriApiVersion) => Buffer,
    opts?: CallOptions,
  ): Promise<{ api: CriApiVersion; body: Buffer }> {
    const timeoutMs = opts?.timeoutMs ?? this.timeoutMs;
    if (this.api) return { api: this.api, body: await this.unary(`/runtime.${this.api}.${service}/${method}`, encode(this.api), timeoutMs) };
    let lastErr: unknown;
    for (const api of API_ORDER) {
      try {
        const body = await this.unary(`/runtime.${api}.${service}/${method}`, encode(api), timeoutMs);
        this.api = api;
        return { api, body };
      } catch (e) {
        if (e instanceof CriError && e.code === GrpcStatus.UNIMPLEMENTED) { lastErr = e; continue; }
        throw e;
      }
    }
    throw lastErr;
  }

  private getSession(): http2.ClientHttp2Session {
    if (this.session && !this.session.destroyed && !this.session.closed) return this.session;
    const session = http2.connect('http://localhost', { createConnection: () => this.opts.createConnection() });
    // Errors surface on the streams of in-flight calls; without a listener a session error
    // would be thrown as an uncaught exception.
    session.on('error', () => {});
    session.on('close', () => { if (this.session === session) this.session = null; });
    session.on('goaway', () => { if (this.session === session) this.session = null; });
    this.session = session;
    return session;
  }

  private unary(path: string, message: Buffer, timeoutMs: number): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      let settled = false;
      let session: http2.ClientHttp2Session;
      let req: http2.ClientHttp2Stream;
      try {
        session = this.getSession();
        req = session.request({
          ':method': 'POST',
          ':path': path,
          'content-type': 'application/grpc',
          te: 'trailers',
          'grpc-timeout': grpcTimeout(timeoutMs),
          'user-agent': 'hoist-cri/1',
        });
      } catch (e) {
        reject(new CriError(GrpcStatus.UNAVAILABLE, (e as Error).message, path));
        return;
      }
      this.active++;
      session.ref();
      const reader = new GrpcFrameReader(this.maxMessageBytes);
      const messages: Buffer[] = [];
      let httpStatus = 0;
      let timer: NodeJS.Timeout | undefined;
      let grpcStatus: number | null = null;
      let grpcMessage = '';

      const finish = (err: Error | null, body?: Buffer): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        // An idle session must not keep the process alive when the caller forgets close().
        if (--this.active === 0 && !session.destroyed) session.unref();
        if (err) {
          if (!req.closed) req.close(http2.constants.NGHTTP2_CANCEL);
          reject(err);
        } else {
          resolve(body as Buffer);
        }
      };
      timer = setTimeout(() => {
        finish(new CriError(GrpcStatus.DEADLINE_EXCEEDED, `no answer within ${timeoutMs} ms`, path));
        // A stuck transport would keep further calls waiting too: drop it.
        if (this.session === session) { this.session = null; session.destroy(); }
      }, timeoutMs);

      req.on('response', (headers) => {
        httpStatus = Number(headers[':status']);
        // Trailers-only response: the status arrives with the headers.
        const st = headerStatus(headers);
        if (st !== null) { grpcStatus = st; grpcMessage = decodeGrpcMessage(headers['grpc-message']); }
      });
      req.on('trailers', (trailers) => {
        const st = headerStatus(trailers);
        if (st !== null) { grpcStatus = st; grpcMessage = decodeGrpcMessage(trailers['grpc-message']); }
      });
      req.on('data', (chunk: Buffer) => {
        try {
          messages.push(...reader.push(chunk));
        } catch (e) {
          finish(new CriError(GrpcStatus.INTERNAL, (e as Error).message, path));
        }
      });
      req.on('error', (e: Error) => {
        finish(new CriError(GrpcStatus.UNAVAILABLE, e.message, path));
      });
      req.on('close', () => {
        // 'close' follows 'end' and 'trailers'; it is the one event every outcome reaches.
        if (settled) return;
        if (httpStatus !== 200) {
          const code = httpStatus ? httpToGrpc(httpStatus) : GrpcStatus.UNAVAILABLE;
          finish(new CriError(grpcStatus ?? code, grpcMessage || (httpStatus ? `HTTP status ${httpStatus}` : `stream closed (rst code ${req.rstCode})`), path));
          return;
        }
        if (grpcStatus === null) {
          finish(new CriError(GrpcStatus.INTERNAL, `stream ended without grpc-status (rst code ${req.rstCode})`, path));
          return;
        }
        if (grpcStatus !== GrpcStatus.OK) {
          finish(new CriError(grpcStatus, grpcMessage, path));
          return;
        }
        if (reader.pending) { finish(new CriError(GrpcStatus.INTERNAL, 'truncated response message', path)); return; }
        if (messages.length !== 1) {
          finish(new CriError(GrpcStatus.INTERNAL, `expected one response message, got ${messages.length}`, path));
          return;
        }
        finish(null, messages[0]);
      });
      req.end(encodeGrpcFrame(message));
    });
  }
}
