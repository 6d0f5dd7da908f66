import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type { Duplex } from 'node:stream';
import type { ClientChannel } from 'ssh2';
import { HostError, LockHeldError } from '../util/errors.js';
import { printable } from '../util/printable.js';
import { sudoCommand, watchBecome, type BecomeHandshake, type BecomeSpec } from './become.js';
import type { Endpoint } from './endpoint.js';
import { commandsGate, GATE_BUSY_EXIT, GATE_BUSY_MARK, GATE_NOTE_MARK, lockScript, parseLockOutput, type HostLock } from './host-lock.js';
import { quote } from './quote.js';
import { openLink, type Link, type TransportOptions } from './transport.js';
import { TRANSPORT_FAILURE, unixBridgeCommand } from './unix-bridge.js';
import { uploadScript, type UploadOptions } from './upload.js';
import { PeerCopyError, RECEIVE_EXIT, receiveScript, serveCommand, type PeerSource } from './peer-copy.js';

export { HostKeyError, type TransportOptions } from './transport.js';
export { BecomeError } from './become.js';
export type { HostLock } from './host-lock.js';
export type { UploadOptions } from './upload.js';
export type { Endpoint } from './endpoint.js';
export { PeerCopyError, type PeerSource } from './peer-copy.js';

/** A file being served once to a peer (see serveFile). */
/** Another hoist run holds the host's lock: a wrapper may retry later (exit 5). */
export interface Serving {
  port: number;
  /** Settles when the server has sent the file, or failed or stopped without sending it. */
  sent: Promise<void>;
  /** Ends the server (it also ends by itself once it has sent the file). */
  stop(): void;
}
/** Where hoist keeps its own state on a host (locks, records, artifacts). */

export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number;
}

/**
 * What happens on the wire, by detail: 1 each command (its first line, exit code, time), 2 the whole
 * script, 3 its output. The runner sends level ≤ -v to the terminal and everything to the log.
 */
export type Trace = (level: 1 | 2 | 3, text: string) => void;

export interface ExecOptions {
  timeoutMs?: number;
  /** Run through sudo when the host has become set. Default true; false runs as the login user. */
  become?: boolean;
  /** Bash lines run before the script (hoist's path pins), left out of the command's headline in the trace. */
  precheck?: string;
}

/** How long sudo may take to start a shell (a wrong password costs sudo's own 2 s delay). */
const BECOME_TIMEOUT_MS = 20_000;

/**
 * One SSH connection per host, opened once and shared by every task of the run.
 * Scripts go in on stdin (uploads and bridges as `bash -c` with a fixed, quoted script), so nothing a
 * user wrote lands on a remote command line unquoted, and a sudo password is written only in answer to
 * sudo's own prompt (see become.ts).
 */
export class HostConnection {
  private closed = false;
  private lostWhy?: string;
  /** Bytes written to the host by upload(), for the report and the benchmark. */
  bytesPushed = 0;
  trace: Trace = () => undefined;
  /** Seconds to wait for another run's host lock (--lock-wait; 0 refuses at once). */
  lockWaitSeconds = 0;
  /** Notes for the host's report (a killed run's leftover command stopped). */
  onNote: (text: string) => void = () => undefined;
  private holdsHostLock = false;
  /** Aborts for channels in flight, called when the connection goes away under them. */
  private readonly pending = new Set<() => void>();

  private constructor(
    readonly endpoint: Endpoint,
    private readonly link: Link,
    private readonly becomeSpec: BecomeSpec | undefined,
  ) {
    // A dead host (keepalives unanswered) or a dropped link: every later use fails as unreachable.
    link.onLost((why) => {
      this.closed = true;
      this.lostWhy = why;
      for (const abort of this.pending) abort();
    });
  }

  static async connect(endpoint: Endpoint, opts: TransportOptions): Promise<HostConnection> {
    const link = await openLink(endpoint, opts);
    return new HostConnection(endpoint, link, endpoint.become ? opts.credentials.becomeFor(endpoint) : undefined);
  }

  /** Whether commands run as root: a root login, or sudo to root. */
  get isRoot(): boolean {
    return this.becomeSpec ? this.becomeSpec.user === 'root' : this.endpoint.user === 'root';
  }

  /** Whether commands go through sudo. */
  get becomes(): boolean {
    return !!this.becomeSpec;
  }

  /** Whether a command runs as root: through sudo to root, or on a root login without sudo. */
  private runsAsRoot(elevate: boolean): boolean {
    return elevate ? this.isRoot : this.endpoint.user === 'root';
  }

  private gate() {
    return { holdsHostLock: this.holdsHostLock, waitSeconds: this.lockWaitSeconds };
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * A channel running `inner` (a command line), through sudo when `elevate`. It resolves once the
   * command itself runs, so whatever the caller writes goes to the command and never to sudo.
   */
  private async open(inner: string, elevate: boolean, onStderr: (d: Buffer) => void): Promise<{ ch: ClientChannel; exit: ExitRecord }> {
    const spec = elevate ? this.becomeSpec : undefined;
    const command = spec ? sudoCommand(inner, spec) : inner;
    // Everything that listens to the channel is attached in the exec callback itself: a command that
    // ends at once (sudo refusing) can deliver its exit status in the same tick, and an 'exit' event
    // emitted before a listener exists is gone.
    const { ch, exit, hs } = await this.guard(
      new Promise<{ ch: ClientChannel; exit: ExitRecord; hs?: BecomeHandshake }>((resolve, reject) =>
        this.link.client.exec(command, (err, c) => {
          if (err) return reject(new HostError(`${this.endpoint.name}: cannot start a command: ${err.message}`));
          const rec = exitRecord(c);
          if (!spec) {
            c.stderr.on('data', onStderr);
            return resolve({ ch: c, exit: rec });
          }
          const watch = watchBecome(c, spec, { host: this.endpoint.name, login: this.endpoint.user, timeoutMs: BECOME_TIMEOUT_MS });
          watch.onStderr(onStderr);
          resolve({ ch: c, exit: rec, hs: watch });
        }),
      ),
      'starting a command',
    );
    if (hs) await this.guard(hs.ready, 'sudo');
    return { ch, exit };
  }

  /** Runs a bash script on the host (as root when become is set), fed on stdin. */
  async exec(script: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const elevate = opts.become !== false && this.becomes;
    const privileged = this.runsAsRoot(elevate);
    const t0 = Date.now();
    this.trace(1, `$ ${headline(script)}${elevate ? ' (sudo)' : ''}`);
    const full = opts.precheck ? `${opts.precheck}\n${script}` : script;
    this.trace(2, full);
    const r = await this.runChannel('bash -s', serialized(full, privileged, this.gate()), elevate, opts.timeoutMs ?? this.endpoint.commandTimeoutMs);
    this.trace(1, `exit ${r.code} in ${Date.now() - t0} ms`);
    if (r.stdout) this.trace(3, `stdout:\n${r.stdout.trimEnd()}`);
    if (r.stderr) this.trace(3, `stderr:\n${r.stderr.trimEnd()}`);
    return r;
  }

  private async runChannel(inner: string, stdin: string | ((ch: ClientChannel) => Promise<void>), elevate: boolean, timeoutMs: number): Promise<ExecResult> {
    const out: Buffer[] = [];
    const errb: Buffer[] = [];
    const { ch, exit } = await this.open(inner, elevate, (d) => errb.push(d));
    const work = new Promise<ExecResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        ch.close();
        reject(new HostError(`${this.endpoint.name}: command timed out after ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs);
      // A lost connection is reported by guard(); this timer must not keep the process alive after it.
      timer.unref();
      ch.on('data', (d: Buffer) => out.push(d));
      ch.on('close', () => {
        clearTimeout(timer);
        const { code, signal } = exit;
        if (code === null && signal === undefined && this.closed) return reject(new HostError(`${this.endpoint.name}: connection closed during a command`));
        let stderr = Buffer.concat(errb).toString('utf8');
        if (stderr.includes(GATE_NOTE_MARK)) {
          const lines = stderr.split('\n');
          for (const l of lines) if (l.startsWith(GATE_NOTE_MARK)) this.onNote(printable(l.slice(GATE_NOTE_MARK.length)));
          stderr = lines.filter((l) => !l.startsWith(GATE_NOTE_MARK)).join('\n');
        }
        const busy = code === GATE_BUSY_EXIT ? new RegExp(`^${GATE_BUSY_MARK} ?(.*)$`, 'm').exec(stderr) : null;
        if (busy) return reject(this.lockHeld(busy[1].trim(), this.lockWaitSeconds));
        resolve({ stdout: Buffer.concat(out).toString('utf8'), stderr, code: code ?? (signal ? 128 : 255) });
      });
    });
    // The feed is raced against the connection like the rest: a host that dies mid-upload never
    // drains its window, and an unguarded write would wait for it forever. A feed the command cut short
    // (it exited early) is no error of its own: the exit status says why.
    const feeding = typeof stdin === 'string' ? Promise.resolve(void ch.end(stdin)) : stdin(ch).catch(() => void ch.close());
    return this.guard(
      Promise.all([feeding, work]).then(([, r]) => r),
      'a command',
    );
  }

  /** exec that throws with the command's stderr when it exits non-zero. */
  async check(script: string, what: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const r = await this.exec(script, opts);
    if (r.code !== 0) {
      const detail = printable((r.stderr.trim() || r.stdout.trim()).split('\n').slice(-6).join('\n')).replace(/\\n/g, '\n');
      throw new HostError(`${what} failed (exit ${r.code})${detail ? `: ${detail}` : ''}`);
    }
    return r;
  }

  /**
   * SFTP-free atomic write: the bytes stream into a temporary file beside the target (through sudo
   * under become, so nothing passes through the login user's home), which is checked for size, given
   * owner and mode, optionally validated, and renamed into place. A reader or a killed run never sees
   * half a file; a killed upload leaves a `.hoist-tmp-` file that the next upload of it removes.
   */
  async upload(data: Buffer | { localPath: string }, remotePath: string, opts: UploadOptions): Promise<void> {
    const size = Buffer.isBuffer(data) ? data.length : (await stat(data.localPath)).size;
    const elevate = this.becomes;
    const privileged = this.runsAsRoot(elevate);
    const script = uploadScript(remotePath, size, opts, { privileged });
    const feed = async (ch: ClientChannel) => {
      if (Buffer.isBuffer(data)) ch.end(data);
      else await pipeline(createReadStream(data.localPath, { highWaterMark: 256 * 1024 }), ch);
    };
    const t0 = Date.now();
    const r = await this.runChannel(`bash -c ${quote(serialized(script, privileged, this.gate()))}`, feed, elevate, Math.max(this.endpoint.commandTimeoutMs, 600_000));
    this.trace(1, `upload ${remotePath} (${size} bytes, mode ${opts.mode.toString(8)}): exit ${r.code} in ${Date.now() - t0} ms`);
    this.bytesPushed += size;
    if (r.code !== 0) throw new HostError(`installing ${remotePath} failed: ${printable(r.stderr.trim().split('\n').slice(-5).join('\n')).replace(/\\n/g, '\n')}`);
  }

  /**
   * Serves `file` once, on an ephemeral TCP port of this host, to whoever presents `token` (see
   * peer-copy.ts). It runs as the login user without sudo: what it serves is a release file hoist
   * staged world-readable, and a command outside sudo holds no commands.lock, so serving never waits
   * for this host's own work nor holds it up.
   */
  async serveFile(file: string, token: string): Promise<Serving> {
    let stderr = '';
    const t0 = Date.now();
    const { ch, exit } = await this.open(`bash -c ${quote(serveCommand(file))}`, false, (d) => {
      if (stderr.length < 2048) stderr += d.toString();
    });
    let out = '';
    let sentOk = false;
    const failed = () => new PeerCopyError(`${this.endpoint.name} could not serve ${file}: ${printable(stderr.trim()) || `exit ${exit.code ?? 'unknown'}`}`, 'source');
    const listening = new Promise<number>((resolve, reject) => {
      ch.on('data', (d: Buffer) => {
        out += d.toString();
        const port = /^port (\d+)$/m.exec(out);
        if (port) resolve(Number(port[1]));
        if (/^sent$/m.test(out)) sentOk = true;
      });
      ch.on('close', () => reject(failed()));
    });
    // One line when it ends, like an upload's: it runs beside this host's own commands.
    const sent = new Promise<void>((resolve, reject) =>
      ch.on('close', () => {
        this.trace(1, `serve ${file} to a peer: ${sentOk ? 'sent' : 'not sent'}, exit ${exit.code ?? 'unknown'} in ${Date.now() - t0} ms`);
        if (sentOk) resolve();
        else reject(failed());
      }),
    );
    sent.catch(() => undefined);
    ch.write(`${token}\n`);
    const port = await this.guard(listening, 'starting a file server');
    // Awaited only when the receiver succeeded: a copy that failed at the receiver leaves it unread.
    const guarded = this.guard(sent, 'serving a file');
    guarded.catch(() => undefined);
    return { port, sent: guarded, stop: () => void ch.end() };
  }

  /**
   * Fetches a file another host serves (serveFile there) into `remotePath`, checking its size and
   * sha256 before it replaces anything. Failures are PeerCopyErrors that say whose fault they were.
   */
  async receiveFile(from: PeerSource, token: string, remotePath: string, want: { size: number; sha256: string }): Promise<void> {
    const elevate = this.becomes;
    const privileged = this.runsAsRoot(elevate);
    const timeoutS = Math.max(this.endpoint.commandTimeoutMs, 600_000) / 1000;
    const script = receiveScript(from, remotePath, want, { privileged, timeoutS });
    const t0 = Date.now();
    const r = await this.runChannel(`bash -c ${quote(serialized(script, privileged, this.gate()))}`, `${token}\n`, elevate, (timeoutS + 30) * 1000);
    this.trace(1, `receive ${remotePath} (${want.size} bytes) from ${from.address}:${from.port}: exit ${r.code} in ${Date.now() - t0} ms`);
    if (r.code === 0) return;
    const why = printable(r.stderr.trim().split('\n').slice(-3).join('\n')).replace(/\\n/g, '\n') || `exit ${r.code}`;
    const blame = r.code === RECEIVE_EXIT.unreachable ? 'route' : r.code === RECEIVE_EXIT.short || r.code === RECEIVE_EXIT.checksum ? 'source' : 'receiver';
    throw new PeerCopyError(`${this.endpoint.name} could not fetch ${remotePath} from ${from.address}: ${why}`, blame, r.code !== RECEIVE_EXIT.short);
  }

  /**
   * Takes hoist's per-host lock: flock(1) held by a command that lives as long as this SSH channel.
   * A killed hoist closes its connection, sshd ends the command and the kernel drops the lock, so a
   * lock can't outlive its run; the holder file left behind only tells who it was.
   */
  private lockHeld(holder: string | undefined, waitSeconds: number): LockHeldError {
    return new LockHeldError(`${this.endpoint.name} is locked by another hoist run${holder ? ` (${printable(holder)})` : ''}${waitSeconds > 0 ? ` after waiting ${waitSeconds} s` : ''}; use --lock-wait to wait for it`, holder);
  }

  async lock(holder: string, waitSeconds: number): Promise<HostLock> {
    let out = '';
    const { ch } = await this.open('bash -s', this.becomes, (d) => (out += d.toString()));
    const taking = new Promise<HostLock>((resolve, reject) => {
      let settled = false;
      ch.on('data', (d: Buffer) => {
        out += d.toString();
        if (settled) return;
        const v = parseLockOutput(out);
        if (v.state !== 'locked') return;
        settled = true;
        this.holdsHostLock = true;
        resolve({
          staleHolder: v.staleHolder,
          generation: v.generation,
          release: () =>
            new Promise<void>((done) => {
              this.holdsHostLock = false;
              if (this.closed) return done();
              // Bounded: on a dying link the close may never come, and the lock dies with the session anyway.
              const t = setTimeout(done, 3000);
              ch.once('close', () => {
                clearTimeout(t);
                done();
              });
              ch.end();
            }),
        });
      });
      ch.on('close', (code: number | null) => {
        if (settled) return;
        settled = true;
        const v = parseLockOutput(out);
        if (v.state === 'busy') {
          reject(this.lockHeld(v.holder, waitSeconds));
        } else reject(new HostError(`${this.endpoint.name}: cannot take the host lock (exit ${code}): ${printable(out.trim().split('\n').slice(-3).join(' '))}`));
      });
      ch.write(lockScript(holder, waitSeconds));
    });
    return this.guard(taking, 'taking the host lock');
  }

  /**
   * A byte stream to a unix socket on the host, e.g. containerd's gRPC socket. A root login uses
   * OpenSSH's stream-local forwarding; under become, sshd would open the socket as the login user, so a
   * bridge runs through sudo instead (see unix-bridge.ts). Each call is a new connection to the socket.
   */
  async openUnixStream(socketPath: string): Promise<Duplex> {
    if (!this.becomes) {
      return this.guard(
        new Promise<Duplex>((resolve, reject) =>
          this.link.client.openssh_forwardOutStreamLocal(socketPath, (err, ch) =>
            err ? reject(new HostError(`${this.endpoint.name}: cannot open ${socketPath} over SSH: ${err.message}`)) : resolve(ch),
          ),
        ),
        `opening ${socketPath}`,
      );
    }
    let stderr = '';
    const { ch, exit } = await this.open(`bash -c ${quote(unixBridgeCommand(socketPath))}`, true, (d) => {
      if (stderr.length < 2048) stderr += d.toString();
    });
    // The bridge's own complaint (no socket, no tool) is the useful error when the stream ends early.
    exit.onExit((code) => {
      if (!code) return;
      const err = new HostError(`${this.endpoint.name}: cannot open ${socketPath}: ${printable(stderr.trim()) || `bridge exited with ${code}`}`);
      // Announced apart from destroy(): the stream's user may have closed it already on the end of data.
      ch.emit(TRANSPORT_FAILURE, err);
      (ch as unknown as Duplex).destroy(err);
    });
    return ch;
  }

  /**
   * Channel callbacks never fire once the connection is gone; racing them against the connection's
   * end turns a dead host into an error instead of a run that waits forever.
   */
  private guard<T>(work: Promise<T>, what: string): Promise<T> {
    if (this.closed) return Promise.reject(new HostError(`${this.endpoint.name}: connection lost before ${what}`));
    let abort!: () => void;
    const lost = new Promise<never>((_, reject) => {
      abort = () => reject(new HostError(`${this.endpoint.name}: connection lost during ${what}${this.lostWhy ? ` (${this.lostWhy})` : ''}`));
    });
    this.pending.add(abort);
    return Promise.race([work, lost]).finally(() => this.pending.delete(abort));
  }

  /** Ends the session and releases its hops, also after the host itself went away (the bastion didn't). */
  close(): void {
    this.closed = true;
    this.link.close();
  }
}

/** A channel's exit status, recorded from the moment the channel exists. */
interface ExitRecord {
  code: number | null;
  signal?: string;
  onExit(fn: (code: number | null) => void): void;
}

function exitRecord(ch: ClientChannel): ExitRecord {
  let seen = false;
  const waiting: ((code: number | null) => void)[] = [];
  const rec: ExitRecord = {
    code: null,
    onExit: (fn) => (seen ? fn(rec.code) : void waiting.push(fn)),
  };
  ch.on('exit', (code: number | null, signal?: string) => {
    rec.code = code;
    rec.signal = signal;
    seen = true;
    for (const fn of waiting.splice(0)) fn(code);
  });
  return rec;
}

/** The first line of a script that says what it does (not `set -e` or a comment). */
function headline(script: string): string {
  const line = script.split('\n').map((l) => l.trim()).find((l) => l && !l.startsWith('#') && !/^set -[eu]/.test(l)) ?? '';
  return printable(line.length > 120 ? `${line.slice(0, 117)}...` : line);
}

/**
 * A script as it runs on the host. Commands of a killed run go on running there (nothing tells them
 * their client is gone), so every root command holds a flock on commands.lock for its whole life
 * (commandsGate): the next run's commands never work beside such a leftover.
 */
function serialized(script: string, privileged: boolean, gate: { holdsHostLock: boolean; waitSeconds: number }): string {
  if (!privileged) return script;
  return `${commandsGate(gate)}\n${script}`;
}
