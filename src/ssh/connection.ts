import type { Duplex } from 'node:stream';
import type { Endpoint } from './endpoint.js';
import { takeHostLock, type HostLock } from './host-lock.js';
import { openLink, type TransportOptions } from './transport.js';
import { openUnixStream } from './unix-bridge.js';
import { uploadFile, type UploadOptions } from './upload.js';
import { receiveFile, serveFile, type PeerSource, type Serving } from './peer-copy.js';
import { HostSession, type ExecOptions, type ExecResult, type Trace } from './session.js';

export { HostKeyError, type TransportOptions } from './transport.js';
export { BecomeError } from './become.js';
export type { HostLock } from './host-lock.js';
export type { UploadOptions } from './upload.js';
export type { Endpoint } from './endpoint.js';
export { PeerCopyError, type PeerSource, type Serving } from './peer-copy.js';
export type { ExecOptions, ExecResult, Trace } from './session.js';

/**
 * One SSH connection per host, opened once and shared by every task of the run: the session's
 * commands (session.ts: exec and sudo) and what hoist does over them, each in its own file —
 * uploads (upload.ts), host-to-host copies (peer-copy.ts), the host lock (host-lock.ts) and unix
 * sockets (unix-bridge.ts).
 */
export class HostConnection {
  private constructor(private readonly session: HostSession) {}

  static async connect(endpoint: Endpoint, opts: TransportOptions): Promise<HostConnection> {
    const link = await openLink(endpoint, opts);
    return new HostConnection(new HostSession(endpoint, link, endpoint.become ? opts.credentials.becomeFor(endpoint) : undefined));
  }

  get endpoint(): Endpoint {
    return this.session.endpoint;
  }

  /** Bytes written to the host by upload(), for the report and the benchmark. */
  get bytesPushed(): number {
    return this.session.bytesPushed;
  }

  /** Where each command's trace goes (see Trace). */
  set trace(fn: Trace) {
    this.session.trace = fn;
  }

  /** Seconds to wait for another run's host lock (--lock-wait; 0 refuses at once). */
  set lockWaitSeconds(s: number) {
    this.session.lockWaitSeconds = s;
  }

  /** Notes for the host's report (a killed run's leftover command stopped). */
  set onNote(fn: (text: string) => void) {
    this.session.onNote = fn;
  }

  /** Whether commands run as root: a root login, or sudo to root. */
  get isRoot(): boolean {
    return this.session.isRoot;
  }

  /** Whether commands go through sudo. */
  get becomes(): boolean {
    return this.session.becomes;
  }

  get isClosed(): boolean {
    return this.session.isClosed;
  }

  /** Runs a bash script on the host (as root when become is set), fed on stdin. */
  exec(script: string, opts: ExecOptions = {}): Promise<ExecResult> {
    return this.session.exec(script, opts);
  }

  /** exec that throws with the command's stderr when it exits non-zero. */
  check(script: string, what: string, opts: ExecOptions = {}): Promise<ExecResult> {
    return this.session.check(script, what, opts);
  }

  /** Writes a file atomically (see uploadFile). */
  upload(data: Buffer | { localPath: string }, remotePath: string, opts: UploadOptions): Promise<void> {
    return uploadFile(this.session, data, remotePath, opts);
  }

  /** Serves `file` once to the peer that presents `token` (see peer-copy.ts). */
  serveFile(file: string, token: string): Promise<Serving> {
    return serveFile(this.session, file, token);
  }

  /** Fetches a file a peer serves into `remotePath`, checked before it replaces anything (see peer-copy.ts). */
  receiveFile(from: PeerSource, token: string, remotePath: string, want: { size: number; sha256: string }): Promise<void> {
    return receiveFile(this.session, from, token, remotePath, want);
  }

  /** Takes hoist's per-host lock (see host-lock.ts). */
  lock(holder: string, waitSeconds: number): Promise<HostLock> {
    return takeHostLock(this.session, holder, waitSeconds);
  }

  /** A byte stream to a unix socket on the host, a new connection to it each call (see unix-bridge.ts). */
  openUnixStream(socketPath: string): Promise<Duplex> {
    return openUnixStream(this.session, socketPath);
  }

  /** Ends the session and releases its hops, also after the host itself went away (the bastion didn't). */
  close(): void {
    this.session.close();
  }
}
