import type { ClientChannel } from 'ssh2';
import { HostError } from '../util/errors.js';
import { printable } from '../util/printable.js';
import { sudoCommand, watchBecome, type BecomeHandshake, type BecomeSpec } from './become.js';
import type { Endpoint } from './endpoint.js';
import { commandsGate, GATE_BUSY_EXIT, GATE_BUSY_MARK, GATE_NOTE_MARK, lockHeldError } from './commands-gate.js';
import type { Link } from './transport.js';

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
 * The SSH session to one host and the commands run over it: each a channel, through sudo when
 * become is set, raced against the session's end so a dead host fails instead of hanging. Scripts
 * go in on stdin (uploads and bridges as `bash -c` with a fixed, quoted script), so nothing a user
 * wrote lands on a remote command line unquoted, and a sudo password is written only in answer to
 * sudo's own prompt (see become.ts). HostConnection (connection.ts) puts the features on top.
 */
export class HostSession {
  private closed = false;
  private lostWhy?: string;
  /** Bytes written to the host by upload(), for the report and the benchmark. */
  bytesPushed = 0;
  trace: Trace = () => undefined;
  /** Seconds to wait for another run's host lock (--lock-wait; 0 refuses at once). */
  lockWaitSeconds = 0;
  /** Notes for the host's report (a killed run's leftover command stopped). */
  onNote: (text: string) => void = () => undefined;
  /** Set while this session holds the host lock (host-lock.ts): its commands then skip the commands gate. */
  holdsHostLock = false;
  /** Aborts for channels in flight, called when the connection goes away under them. */
  private readonly pending = new Set<() => void>();

  constructor(
    readonly endpoint: Endpoint,
    readonly link: Link,
    private readonly becomeSpec: BecomeSpec | undefined,
  ) {
    // A dead host (keepalives unanswered) or a dropped link: every later use fails as unreachable.
    link.onLost((why) => {
      this.closed = true;
      this.lostWhy = why;
      for (const abort of this.pending) abort();
    });
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
  runsAsRoot(elevate: boolean): boolean {
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
  async open(inner: string, elevate: boolean, onStderr: (d: Buffer) => void): Promise<{ ch: ClientChannel; exit: ExitRecord }> {
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
    const r = await this.runChannel('bash -s', this.serialized(full, privileged), elevate, opts.timeoutMs ?? this.endpoint.commandTimeoutMs);
    this.trace(1, `exit ${r.code} in ${Date.now() - t0} ms`);
    if (r.stdout) this.trace(3, `stdout:\n${r.stdout.trimEnd()}`);
    if (r.stderr) this.trace(3, `stderr:\n${r.stderr.trimEnd()}`);
    return r;
  }

  async runChannel(inner: string, stdin: string | ((ch: ClientChannel) => Promise<void>), elevate: boolean, timeoutMs: number): Promise<ExecResult> {
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
        if (busy) return reject(lockHeldError(this.endpoint.name, busy[1].trim(), this.lockWaitSeconds));
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
   * Channel callbacks never fire once the connection is gone; racing them against the connection's
   * end turns a dead host into an error instead of a run that waits forever.
   */
  guard<T>(work: Promise<T>, what: string): Promise<T> {
    if (this.closed) return Promise.reject(new HostError(`${this.endpoint.name}: connection lost before ${what}`));
    let abort!: () => void;
    const lost = new Promise<never>((_, reject) => {
      abort = () => reject(new HostError(`${this.endpoint.name}: connection lost during ${what}${this.lostWhy ? ` (${this.lostWhy})` : ''}`));
    });
    this.pending.add(abort);
    return Promise.race([work, lost]).finally(() => this.pending.delete(abort));
  }

  /**
   * A script as it runs on the host. Commands of a killed run go on running there (nothing tells them
   * their client is gone), so every root command holds a flock on commands.lock for its whole life
   * (commandsGate): the next run's commands never work beside such a leftover.
   */
  serialized(script: string, privileged: boolean): string {
    if (!privileged) return script;
    return `${commandsGate(this.gate())}\n${script}`;
  }

  /** Ends the session and releases its hops, also after the host itself went away (the bastion didn't). */
  close(): void {
    this.closed = true;
    this.link.close();
  }
}

/** A channel's exit status, recorded from the moment the channel exists. */
export interface ExitRecord {
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
  const line =
    script
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l && !l.startsWith('#') && !/^set -[eu]/.test(l)) ?? '';
  return printable(line.length > 120 ? `${line.slice(0, 117)}...` : line);
}
