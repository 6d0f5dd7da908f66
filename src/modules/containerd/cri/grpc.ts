/**
 * Unary gRPC over HTTP/2 over a byte stream that is dialled, not connected to: hoist reaches
 * containerd's socket through an SSH channel that opens asynchronously, one per HTTP/2 session.
 * gRPC framing: each message is 1 byte compressed-flag + 4 bytes big-endian length + payload.
 */
import type http2 from 'node:http2';
import type { Duplex } from 'node:stream';
import { ProtobufError } from './protobuf.js';
import { TRANSPORT_FAILURE } from '../../../ssh/unix-bridge.js';
import { HostError } from '../../../util/errors.js';

export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
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

export class CriError extends HostError {
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

function httpToGrpc(status: number): number {
  // https://github.com/grpc/grpc/blob/master/doc/http-grpc-status-mapping.md
  switch (status) {
    case 400:
      return GrpcStatus.INTERNAL;
    case 401:
      return GrpcStatus.UNAUTHENTICATED;
    case 403:
      return GrpcStatus.PERMISSION_DENIED;
    case 404:
      return GrpcStatus.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return GrpcStatus.UNAVAILABLE;
    default:
      return GrpcStatus.UNKNOWN;
  }
}

/** grpc-timeout allows at most 8 digits per unit. */
export function grpcTimeout(ms: number): string {
  const n = Math.max(1, Math.ceil(ms));
  return n <= 99_999_999 ? `${n}m` : `${Math.min(99_999_999, Math.ceil(n / 1000))}S`;
}

function decodeGrpcMessage(v: string | string[] | undefined): string {
  const s = Array.isArray(v) ? v.join(', ') : (v ?? '');
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** http2.constants.NGHTTP2_CANCEL (RFC 9113's CANCEL), without loading node:http2 to read it. */
const NGHTTP2_CANCEL = 0x8;

function headerStatus(h: http2.IncomingHttpHeaders): number | null {
  const v = h['grpc-status'];
  if (v === undefined) return null;
  const n = Number(Array.isArray(v) ? v[0] : v);
  return Number.isInteger(n) ? n : GrpcStatus.UNKNOWN;
}

export interface ChannelOptions {
  /** Opens a fresh byte stream to the server; called once per HTTP/2 session. */
  dial: () => Promise<Duplex>;
  /** Largest response message accepted. Default 64 MiB. */
  maxMessageBytes?: number;
}

/**
 * One HTTP/2 session at a time over a dialled stream. A session that fails, is told to go away or
 * times out is dropped, and the next call dials a new stream: a stream is never reused once its
 * session is gone (after a timed-out call, say), since nothing can be sent over it any more.
 */
export class GrpcChannel {
  /** The session in use: while dialling only its promise, once open the session itself too. */
  private current: { ready: Promise<http2.ClientHttp2Session>; session?: http2.ClientHttp2Session } | null = null;
  private active = 0;
  private readonly maxMessageBytes: number;

  constructor(private readonly opts: ChannelOptions) {
    this.maxMessageBytes = opts.maxMessageBytes ?? 64 * 1024 * 1024;
  }

  /** Closes the HTTP/2 session after in-flight calls finish (destroys it if that takes over 2 s). */
  async close(): Promise<void> {
    const pending = this.current;
    this.current = null;
    const s = await pending?.ready.catch(() => undefined);
    if (!s || s.destroyed) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        s.destroy();
        resolve();
      }, 2000);
      timer.unref();
      s.close(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private readonly transportErrors = new WeakMap<http2.ClientHttp2Session, Error>();

  private getSession(): Promise<http2.ClientHttp2Session> {
    if (this.current) return this.current.ready;
    const entry: { ready: Promise<http2.ClientHttp2Session>; session?: http2.ClientHttp2Session } = {
      // node:http2 only now: loading it is off every start's path to the first dial. Loaded before
      // dialing, so the stream's listeners below are on it in the tick it arrives.
      ready: import('node:http2').then(({ connect }) =>
        this.opts.dial().then((stream) => {
          // The transport's own failure (a bridge that found no program to run on the host) says more
          // than the stream reset HTTP/2 reports for it.
          stream.once('error', (e: Error) => this.transportErrors.set(session, e));
          stream.once(TRANSPORT_FAILURE, (e: Error) => this.transportErrors.set(session, e));
          const session = connect('http://localhost', { createConnection: () => stream });
          // Errors surface on the streams of in-flight calls; without a listener a session error
          // would be thrown as an uncaught exception.
          session.on('error', () => {});
          session.on('close', () => this.forget(session));
          session.on('goaway', () => this.forget(session));
          entry.session = session;
          return session;
        }),
      ),
    };
    // A dial that failed is not kept: the next call dials again.
    entry.ready.catch(() => {
      if (this.current === entry) this.current = null;
    });
    this.current = entry;
    return entry.ready;
  }

  private forget(session: http2.ClientHttp2Session): void {
    if (this.current?.session === session) this.current = null;
  }

  private drop(session: http2.ClientHttp2Session): void {
    this.forget(session);
    session.destroy();
  }

  /** One request message, one response message; every failure is a CriError with a gRPC status. */
  async unary(path: string, message: Buffer, timeoutMs: number): Promise<Buffer> {
    let session: http2.ClientHttp2Session;
    try {
      session = await this.getSession();
    } catch (e) {
      throw new CriError(GrpcStatus.UNAVAILABLE, `cannot open a connection to the socket: ${(e as Error).message}`, path);
    }
    return new Promise<Buffer>((resolve, reject) => {
      let settled = false;
      let req: http2.ClientHttp2Stream;
      try {
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
          if (!req.closed) req.close(NGHTTP2_CANCEL);
          reject(err);
        } else {
          resolve(body as Buffer);
        }
      };
      timer = setTimeout(() => {
        finish(new CriError(GrpcStatus.DEADLINE_EXCEEDED, `no answer within ${timeoutMs} ms`, path));
        // A stuck transport would keep further calls waiting too: drop it, and its stream with it.
        this.drop(session);
      }, timeoutMs);

      req.on('response', (headers) => {
        httpStatus = Number(headers[':status']);
        // Trailers-only response: the status arrives with the headers.
        const st = headerStatus(headers);
        if (st !== null) {
          grpcStatus = st;
          grpcMessage = decodeGrpcMessage(headers['grpc-message']);
        }
      });
      req.on('trailers', (trailers) => {
        const st = headerStatus(trailers);
        if (st !== null) {
          grpcStatus = st;
          grpcMessage = decodeGrpcMessage(trailers['grpc-message']);
        }
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
        if (httpStatus === 0) {
          // No answer at all: the transport may be about to say why (its error trails the reset).
          setTimeout(() => {
            const t = this.transportErrors.get(session);
            finish(new CriError(grpcStatus ?? GrpcStatus.UNAVAILABLE, grpcMessage || (t ? t.message : `stream closed (rst code ${req.rstCode})`), path));
          }, 200).unref();
          return;
        }
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
        if (reader.pending) {
          finish(new CriError(GrpcStatus.INTERNAL, 'truncated response message', path));
          return;
        }
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
