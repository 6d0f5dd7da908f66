import { readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { Client, type AnyAuthMethod, type ServerHostKeyAlgorithm, type ConnectConfig, type ClientChannel, type SFTPWrapper } from 'ssh2';
import { HostError } from '../util/errors.js';
import { KnownHosts, fingerprint, keyTypeOf } from './known-hosts.js';
import { quote } from './quote.js';

export interface Endpoint {
  /** Inventory name, used in messages. */
  name: string;
  host: string;
  port: number;
  user: string;
  identityFiles: string[];
  jump?: Endpoint;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  become: boolean;
}

export interface SecurityOptions {
  knownHosts: KnownHosts;
  acceptNewHostKeys: boolean;
  /** Passphrase for encrypted identity files. */
  passphrase?: () => Promise<string | undefined>;
  becomePassword?: () => Promise<string | undefined>;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface ExecOptions {
  timeoutMs?: number;
  /** Run as root through sudo when the login user isn't root. Default: the host's `become`. */
  become?: boolean;
}

export interface UploadOptions {
  mode: number;
  owner?: string;
  group?: string;
  /** Keep the file being replaced as <path>.hoist-prev (a hard link: the old bytes, at no copy cost). */
  backup?: boolean;
  /** A bash command that checks the staged file (given its path) before it replaces the live one. */
  validate?: (stagedPath: string) => string;
}

export class HostKeyError extends HostError {}

export const LOCK_DIR = '/var/lib/hoist';

export interface HostLock {
  /** Who held the lock before, when that run was killed before it could clean up. */
  staleHolder?: string;
  release(): Promise<void>;
}

/**
 * One SSH connection per host, opened once and shared by every task of the run.
 * Commands are bash scripts fed on stdin, so nothing user-supplied ever lands on the remote command line
 * unquoted; arguments inside scripts go through quote().
 */
export class HostConnection {
  private client = new Client();
  private jumpConn?: HostConnection;
  private sftpP?: Promise<SFTPWrapper>;
  private closed = false;
  private becomePassword?: string;
  readonly isRoot: boolean;
  /** Bytes written to the host by upload(), for the report and the benchmark. */
  bytesPushed = 0;
  /** Aborts for channels in flight, called when the connection goes away under them. */
  private readonly pending = new Set<() => void>();

  private constructor(readonly endpoint: Endpoint, private readonly security: SecurityOptions) {
    this.isRoot = endpoint.user === 'root';
  }

  static async connect(endpoint: Endpoint, security: SecurityOptions): Promise<HostConnection> {
    const conn = new HostConnection(endpoint, security);
    await conn.open();
    return conn;
  }

  private async open(): Promise<void> {
    const ep = this.endpoint;
    let sock: Duplex | undefined;
    if (ep.jump) {
      this.jumpConn = await HostConnection.connect(ep.jump, this.security);
      sock = await this.jumpConn.forwardTcp(ep.host, ep.port);
    }
    const types = this.security.knownHosts.typesFor(ep.host, ep.port);
    let keyProblem: HostKeyError | undefined;
    let newKey: Buffer | undefined;
    const cfg: ConnectConfig = {
      host: ep.host,
      port: ep.port,
      username: ep.user,
      sock,
      readyTimeout: ep.connectTimeoutMs,
      // A host that dies without closing TCP is noticed in about 15 s rather than minutes.
      keepaliveInterval: 5_000,
      keepaliveCountMax: 3,
      algorithms: types.length ? { serverHostKey: preferTypes(types) as ServerHostKeyAlgorithm[] } : undefined,
      hostVerifier: (key: Buffer) => {
        const verdict = this.security.knownHosts.verify(ep.host, ep.port, key);
        if (verdict.status === 'match') return true;
        if (verdict.status === 'changed') {
          keyProblem = new HostKeyError(
            `HOST KEY CHANGED for ${ep.name} (${ep.host}:${ep.port}): it now offers ${keyTypeOf(key)} ${fingerprint(key)}, ` +
              `but ${this.security.knownHosts.file}:${verdict.line} records ${fingerprint(verdict.expected[0].blob)}. ` +
              `Someone may be intercepting the connection, or the host was rebuilt; nothing was run on it. ` +
              `If the change is expected, remove the old entry (ssh-keygen -R) and run again.`,
          );
          return false;
        }
        if (!this.security.acceptNewHostKeys) {
          keyProblem = new HostKeyError(
            `unknown host key for ${ep.name} (${ep.host}:${ep.port}): ${keyTypeOf(key)} ${fingerprint(key)} is not in ${this.security.knownHosts.file}. ` +
              `Check the fingerprint and run with --accept-new-host-keys to record it.`,
          );
          return false;
        }
        newKey = key;
        return true;
      },
      authHandler: await this.authMethods(),
    };
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error & { level?: string }) => {
        this.client.removeListener('ready', onReady);
        if (keyProblem) return reject(keyProblem);
        reject(new HostError(`cannot connect to ${ep.name} (${ep.user}@${ep.host}:${ep.port}): ${describeConnectError(err)}`));
      };
      const onReady = () => {
        this.client.removeListener('error', onError);
        this.client.on('error', () => {
          // Errors after the handshake surface through the channel that was in use.
        });
        // A dead host (keepalives unanswered) or a dropped link: every later use fails as unreachable.
        this.client.on('close', () => {
          this.closed = true;
          for (const abort of this.pending) abort();
        });
        resolve();
      };
      this.client.once('error', onError);
      this.client.once('ready', onReady);
      this.client.connect(cfg);
    });
    if (newKey) await this.security.knownHosts.add(ep.host, ep.port, newKey);
  }

  private async authMethods(): Promise<AnyAuthMethod[]> {
    const ep = this.endpoint;
    const methods: AnyAuthMethod[] = [];
    if (process.env.SSH_AUTH_SOCK) methods.push({ type: 'agent' as const, username: ep.user, agent: process.env.SSH_AUTH_SOCK });
    const files = ep.identityFiles.length
      ? ep.identityFiles
      : ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((f) => path.join(os.homedir(), '.ssh', f));
    for (const f of files) {
      let key: Buffer;
      try {
        key = await readFile(f);
      } catch {
        if (ep.identityFiles.length) throw new HostError(`${ep.name}: cannot read identity file ${f}`);
        continue;
      }
      const encrypted = /ENCRYPTED|bcrypt/.test(key.subarray(0, 400).toString('latin1')) || isOpenSshEncrypted(key);
      const passphrase = encrypted ? await this.security.passphrase?.() : undefined;
      if (encrypted && !passphrase) throw new HostError(`${ep.name}: identity file ${f} is encrypted; set HOIST_SSH_PASSPHRASE or use ssh-agent`);
      methods.push({ type: 'publickey' as const, username: ep.user, key, passphrase: passphrase ?? '' });
    }
    if (methods.length === 0) throw new HostError(`${ep.name}: no SSH agent and no identity file to log in with`);
    return methods;
  }

  /** Runs a bash script on the host; as root through `sudo -n` when the login user isn't root and become is on. */
  async exec(script: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const become = (opts.become ?? this.endpoint.become) && !this.isRoot;
    let command = 'bash -s';
    let prefix = '';
    if (become) {
      const pw = await this.sudoPassword();
      if (pw === undefined) command = 'sudo -n -- bash -s';
      else {
        // -S reads the password from the first stdin line; bash then reads the script from the rest.
        command = "sudo -S -p '' -- bash -s";
        prefix = `${pw}\n`;
      }
    }
    // Commands of a killed run go on running on the host (nothing tells them their client is gone).
    // Every root command holds a flock on commands.lock for its whole life, so the next run's first command
    // waits until such a leftover has finished instead of working beside it.
    const serialize = become || this.isRoot ? `mkdir -p ${LOCK_DIR} 2>/dev/null; { exec 8>>${LOCK_DIR}/commands.lock && flock 8; } 2>/dev/null\n` : '';
    return this.run(command, prefix + serialize + script, opts.timeoutMs ?? this.endpoint.commandTimeoutMs);
  }

  private async sudoPassword(): Promise<string | undefined> {
    if (this.becomePassword === undefined) this.becomePassword = (await this.security.becomePassword?.()) ?? '';
    return this.becomePassword || undefined;
  }

  private run(command: string, stdin: string, timeoutMs: number): Promise<ExecResult> {
    return this.guard(this.runChannel(command, stdin, timeoutMs), 'a command');
  }

  private runChannel(command: string, stdin: string, timeoutMs: number): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      this.client.exec(command, (err, ch: ClientChannel) => {
        if (err) return reject(new HostError(`${this.endpoint.name}: cannot start a command: ${err.message}`));
        const out: Buffer[] = [];
        const errb: Buffer[] = [];
        let code: number | null = null;
        let signal: string | undefined;
        const timer = setTimeout(() => {
          ch.close();
          reject(new HostError(`${this.endpoint.name}: command timed out after ${Math.round(timeoutMs / 1000)} s`));
        }, timeoutMs);
        // A lost connection is reported by guard(); this timer must not keep the process alive after it.
        timer.unref();
        ch.on('data', (d: Buffer) => out.push(d));
        ch.stderr.on('data', (d: Buffer) => errb.push(d));
        ch.on('exit', (c: number | null, sig?: string) => {
          code = c;
          signal = sig;
        });
        ch.on('close', () => {
          clearTimeout(timer);
          if (code === null && signal === undefined && this.closed) {
            return reject(new HostError(`${this.endpoint.name}: connection closed during a command`));
          }
          resolve({
            stdout: Buffer.concat(out).toString('utf8'),
            stderr: Buffer.concat(errb).toString('utf8'),
            code: code ?? (signal ? 128 : 255),
          });
        });
        ch.end(stdin);
      });
    });
  }

  /** exec that throws with the command's stderr when it exits non-zero. */
  async check(script: string, what: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const r = await this.exec(script, opts);
    if (r.code !== 0) {
      const detail = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-6).join('\n');
      throw new HostError(`${what} failed (exit ${r.code})${detail ? `: ${detail}` : ''}`);
    }
    return r;
  }

  /**
   * SFTP and forwarding callbacks never fire once the connection is gone; racing them against the
   * connection's end turns a dead host into an error instead of a run that waits forever.
   */
  private guard<T>(work: Promise<T>, what: string): Promise<T> {
    if (this.closed) return Promise.reject(new HostError(`${this.endpoint.name}: connection lost before ${what}`));
    let abort!: () => void;
    const lost = new Promise<never>((_, reject) => {
      abort = () => reject(new HostError(`${this.endpoint.name}: connection lost during ${what}`));
    });
    this.pending.add(abort);
    return Promise.race([work, lost]).finally(() => this.pending.delete(abort));
  }

  private sftp(): Promise<SFTPWrapper> {
    this.sftpP ??= new Promise((resolve, reject) =>
      this.client.sftp((err, s) => (err ? reject(new HostError(`${this.endpoint.name}: SFTP unavailable: ${err.message}`)) : resolve(s))),
    );
    return this.guard(this.sftpP, 'opening SFTP');
  }

  /**
   * Writes a file atomically: SFTP to a temporary name beside the target (or the login user's
   * home when sudo is needed), then owner, mode and a rename into place, so a reader or a killed
   * run never sees half a file.
   */
  async upload(data: Buffer | { localPath: string }, remotePath: string, opts: UploadOptions): Promise<void> {
    const sftp = await this.sftp();
    const viaSudo = this.endpoint.become && !this.isRoot;
    const dir = path.posix.dirname(remotePath);
    const nonce = randomBytes(6).toString('hex');
    const staging = viaSudo ? `.hoist-upload-${nonce}` : `${dir}/.${path.posix.basename(remotePath)}.hoist-${nonce}`;
    const put = () =>
      this.guard(
        new Promise<void>((resolve, reject) => {
          const done = (err?: Error | null) => (err ? reject(err) : resolve());
          if (Buffer.isBuffer(data)) sftp.writeFile(staging, data, { mode: 0o600 }, done);
          else sftp.fastPut(data.localPath, staging, { mode: 0o600, concurrency: 16, chunkSize: 256 * 1024 }, done);
        }),
        `the upload of ${remotePath}`,
      );
    this.bytesPushed += Buffer.isBuffer(data) ? data.length : (await stat(data.localPath)).size;
    try {
      await put().catch(async (err: Error & { code?: number }) => {
        // SFTP status 2 is "no such file": create the directory only then, saving a round trip per file.
        if (viaSudo || err.code !== 2) throw err;
        await this.check(`mkdir -p ${quote(dir)}`, `create ${dir}`);
        await put();
      });
    } catch (err) {
      throw new HostError(`upload of ${remotePath} failed: ${(err as Error).message}`);
    }
    const owner = opts.owner ?? 'root';
    const group = opts.group ?? (opts.owner ?? 'root');
    const mode = opts.mode.toString(8).padStart(4, '0');
    const final = viaSudo ? `${dir}/.${path.posix.basename(remotePath)}.hoist-${nonce}` : staging;
    const script = [
      'set -e',
      viaSudo
        ? `mkdir -p ${quote(dir)}; src="$(getent passwd ${quote(this.endpoint.user)} | cut -d: -f6)/${staging}"; install -m 0600 "$src" ${quote(final)}; rm -f "$src"`
        : '',
      `chown ${quote(`${owner}:${group}`)} ${quote(final)}`,
      `chmod ${mode} ${quote(final)}`,
      opts.validate ? `if ! out=$( { ${opts.validate(final)} ; } 2>&1 ); then rm -f ${quote(final)}; echo "$out" | tail -5 >&2; echo "the new ${remotePath.replace(/[^\w./-]/g, '')} was refused; the old one is still in place" >&2; exit 3; fi` : '',
      opts.backup ? `if [ -f ${quote(remotePath)} ]; then ln -f ${quote(remotePath)} ${quote(remotePath + '.hoist-prev')}; fi` : '',
      `mv -f ${quote(final)} ${quote(remotePath)}`,
    ]
      .filter(Boolean)
      .join('\n');
    const r = await this.exec(script);
    if (r.code !== 0) {
      await this.exec(`rm -f ${quote(final)}`).catch(() => undefined);
      throw new HostError(`installing ${remotePath} failed: ${r.stderr.trim()}`);
    }
  }

  /**
   * Takes hoist's per-host lock: flock(1) held by a command that lives as long as this SSH
   * channel. A killed hoist closes its connection, sshd ends the command and the kernel drops the
   * lock, so a lock can't outlive its run; the holder file left behind only tells who it was.
   */
  async lock(holder: string, waitSeconds: number): Promise<HostLock> {
    const viaSudo = this.endpoint.become && !this.isRoot;
    const pw = viaSudo ? await this.sudoPassword() : undefined;
    const command = !viaSudo ? 'bash -s' : pw === undefined ? 'sudo -n -- bash -s' : "sudo -S -p '' -- bash -s";
    // One brace group: bash parses it whole before running it, so `cat` holding the lock reads only
    // what comes after the script (nothing, until release() closes stdin) and not its own last lines.
    const script = `{
mkdir -p ${LOCK_DIR} && exec 9>>${LOCK_DIR}/lock || exit 70
if ! flock ${waitSeconds > 0 ? `-w ${waitSeconds}` : '-n'} 9; then echo "busy $(cat ${LOCK_DIR}/lock.holder 2>/dev/null)"; exit 75; fi
if [ -s ${LOCK_DIR}/lock.holder ]; then echo "stale $(cat ${LOCK_DIR}/lock.holder)"; fi
printf '%s\n' ${quote(holder)} > ${LOCK_DIR}/lock.holder
echo locked
cat >/dev/null
rm -f ${LOCK_DIR}/lock.holder
}
`;
    const taking = new Promise<HostLock>((resolve, reject) => {
      this.client.exec(command, (err, ch: ClientChannel) => {
        if (err) return reject(new HostError(`${this.endpoint.name}: cannot take the host lock: ${err.message}`));
        let out = '';
        let settled = false;
        const onData = (d: Buffer) => {
          out += d.toString();
          if (settled || !out.includes('\n') || !/^(locked|busy)/m.test(out)) return;
          const busy = /^busy ?(.*)$/m.exec(out);
          if (busy) return;
          if (!/^locked$/m.test(out)) return;
          settled = true;
          const stale = /^stale (.*)$/m.exec(out)?.[1];
          resolve({
            staleHolder: stale,
            release: () =>
              new Promise<void>((done) => {
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
        };
        ch.on('data', onData);
        ch.stderr.on('data', (d: Buffer) => (out += d.toString()));
        ch.on('close', (code: number | null) => {
          if (settled) return;
          settled = true;
          const busy = /^busy ?(.*)$/m.exec(out);
          if (busy) {
            reject(new HostError(`${this.endpoint.name} is locked by another hoist run${busy[1] ? ` (${busy[1].trim()})` : ''}${waitSeconds > 0 ? ` after waiting ${waitSeconds} s` : ''}; use --lock-wait to wait for it`));
          } else reject(new HostError(`${this.endpoint.name}: cannot take the host lock (exit ${code}): ${out.trim().split('\n').slice(-3).join(' ')}`));
        });
        ch.write(pw !== undefined ? `${pw}\n${script}` : script);
      });
    });
    return this.guard(taking, 'taking the host lock');
  }

  /** A stream to a unix socket on the host (stream-local forwarding), e.g. containerd's gRPC socket. */
  forwardUnix(socketPath: string): Promise<Duplex> {
    return this.guard(
      new Promise((resolve, reject) =>
        this.client.openssh_forwardOutStreamLocal(socketPath, (err, ch) =>
          err ? reject(new HostError(`${this.endpoint.name}: cannot open ${socketPath} over SSH: ${err.message}`)) : resolve(ch),
        ),
      ),
      `opening ${socketPath}`,
    );
  }

  forwardTcp(host: string, port: number): Promise<Duplex> {
    return new Promise((resolve, reject) =>
      this.client.forwardOut('127.0.0.1', 0, host, port, (err, ch) =>
        err ? reject(new HostError(`${this.endpoint.name}: cannot reach ${host}:${port} through the jump host: ${err.message}`)) : resolve(ch),
      ),
    );
  }

  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.client.end();
    this.jumpConn?.close();
  }
}

function preferTypes(known: string[]): string[] {
  // rsa keys are offered under the rsa-sha2 signature names.
  const expanded = known.flatMap((t) => (t === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [t]));
  return [...new Set(expanded)];
}

function isOpenSshEncrypted(key: Buffer): boolean {
  const text = key.toString('latin1');
  const m = /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]+?)-----END/.exec(text);
  if (!m) return false;
  const raw = Buffer.from(m[1].replace(/\s+/g, ''), 'base64');
  // "openssh-key-v1\0" then the cipher name as an SSH string.
  const off = 15;
  const len = raw.readUInt32BE(off);
  return raw.subarray(off + 4, off + 4 + len).toString() !== 'none';
}

function describeConnectError(err: Error & { level?: string; code?: string }): string {
  if (err.level === 'client-authentication') return 'authentication failed (no key was accepted)';
  if (err.level === 'client-timeout') return 'timed out during the SSH handshake';
  if (err.code) return `${err.code} ${err.message.replace(err.code, '').trim()}`.trim();
  return err.message;
}
