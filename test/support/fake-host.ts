import type { Duplex } from 'node:stream';
import type { Connection } from '../../src/tasks/connection.js';
import type { ExecResult, HostLock, PeerSource, Serving } from '../../src/ssh/connection.js';
import { PeerCopyError } from '../../src/ssh/peer-copy.js';
import { HostError } from '../../src/util/errors.js';

/** A host that answers the gathering round trip with canned facts and records every other command. */
export class FakeHost implements Connection {
  readonly endpoint: {
    name: string;
    host: string;
    port: number;
    user: string;
    identityFiles: string[];
    identitiesOnly: boolean;
    connectTimeoutMs: number;
    commandTimeoutMs: number;
  };
  /** Files this host served to peers, and what it fetched from whom (`address:port`). */
  readonly served: string[] = [];
  readonly received: string[] = [];
  /** How serving or receiving a host-to-host copy fails here, if it does. */
  serveFails = false;
  receiveFails: PeerCopyError['blame'] | 'short' | undefined;
  /** Addresses this host cannot connect to. */
  readonly cannotReach = new Set<string>();
  /** How long a transfer takes, so overlapping copies can be observed. */
  copyMs = 0;
  readonly becomes = false;
  readonly isRoot = true;
  bytesPushed = 0;
  isClosed = false;

  constructor(name = 'h1', host = '10.0.0.1') {
    this.endpoint = { name, host, port: 22, user: 'root', identityFiles: [], identitiesOnly: false, connectTimeoutMs: 1000, commandTimeoutMs: 1000 };
  }
  readonly ran: string[] = [];
  locks = 0;
  released = 0;
  /** What lock() does: take it (optionally over a stale holder) or refuse as another run holds it. */
  lockResult: { busy?: string; stale?: string; lost?: boolean } = {};
  /** Gathering round trips answered, and the lock as they report it: its generation and whether a run holds it. */
  gathers = 0;
  lockGeneration = 5;
  lockHeld = false;
  /** The generation lock() reports, when another run took the lock since the host was read. */
  generationAtLock: number | undefined;
  /** Exit code for commands matching a pattern (a failing hook, say). */
  failing: RegExp | undefined;

  async exec(script: string): Promise<ExecResult> {
    // A gathering round trip: its sections, in order, whether they run in turn or side by side.
    const mark = /echo '(@@hoist-[0-9a-f]+) begin /.exec(script)?.[1];
    if (mark) {
      const ids = [...script.matchAll(/echo '@@hoist-[0-9a-f]+ begin ([^\s']+)'/g)].map((m) => m[1]);
      this.gathers++;
      const answer = (id: string) =>
        id === '__facts' ? 'init=systemd\narch=x86_64\npm=apt' : id === '__lock' ? `gen ${this.lockGeneration}\n${this.lockHeld ? 'held' : 'free'}` : 'probed';
      const body = ids.map((id) => `${mark} begin ${id}\n${answer(id)}\n${mark} end 0`).join('\n');
      return { stdout: `${body}\n`, stderr: '', code: 0 };
    }
    this.ran.push(script);
    const code = this.failing?.test(script) ? 3 : 0;
    return { stdout: '', stderr: code ? 'hook said no' : '', code };
  }

  async check(script: string, what: string): Promise<ExecResult> {
    const r = await this.exec(script);
    if (r.code !== 0) throw new Error(`${what} failed`);
    return r;
  }

  async upload(): Promise<void> {
    this.bytesPushed += 1;
  }

  async serveFile(file: string): Promise<Serving> {
    if (this.serveFails) throw new PeerCopyError(`${this.endpoint.name} could not serve ${file}: no tool`, 'source');
    this.served.push(file);
    // Like the real server's: it rejects when the transfer didn't happen, and nobody may have to read it.
    const port = 40000 + this.served.length;
    let stopped!: (e: Error) => void;
    const sent = new Promise<void>((resolve, reject) => {
      stopped = reject;
      this.sending.set(port, resolve);
    });
    sent.catch(() => undefined);
    return { port, sent, stop: () => stopped(new Error(`${this.endpoint.name} stopped serving without sending`)) };
  }

  /** Servers by port, each settled by the receiver that got its file. */
  readonly sending = new Map<number, () => void>();
  /** The hosts a receiver may fetch from, by address, so that a receive can settle its source's server. */
  peers = new Map<string, FakeHost>();

  async receiveFile(from: PeerSource, _token: string, remotePath: string): Promise<void> {
    await new Promise((r) => setTimeout(r, this.copyMs));
    if (this.cannotReach.has(from.address))
      throw new PeerCopyError(`${this.endpoint.name} could not fetch ${remotePath} from ${from.address}: cannot connect`, 'route');
    if (this.receiveFails) {
      const blame = this.receiveFails === 'short' ? 'source' : this.receiveFails;
      throw new PeerCopyError(`${this.endpoint.name} could not fetch ${remotePath} from ${from.address}`, blame, this.receiveFails !== 'short');
    }
    this.peers.get(from.address)?.sending.get(from.port)?.();
    this.received.push(`${from.address}:${from.port}`);
  }

  async lock(): Promise<HostLock> {
    this.locks++;
    if (this.lockResult.lost) {
      this.isClosed = true;
      throw new HostError(`h1: connection lost during taking the host lock (no answer to keepalives)`);
    }
    if (this.lockResult.busy) throw new HostError(`h1 is locked by another hoist run (${this.lockResult.busy}); use --lock-wait to wait for it`);
    return { staleHolder: this.lockResult.stale, generation: this.generationAtLock ?? this.lockGeneration, release: async () => void this.released++ };
  }

  async openUnixStream(): Promise<Duplex> {
    throw new Error('no sockets here');
  }
}
