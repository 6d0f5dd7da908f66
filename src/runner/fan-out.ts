import { randomBytes } from 'node:crypto';
import { PeerCopyError } from '../ssh/peer-copy.js';
import type { Connection } from '../tasks/connection.js';
import type { DeliveredFile, DeliverOptions } from '../tasks/types.js';
import type { Logger } from '../util/log.js';
import { InternalError } from '../util/errors.js';

/**
 * How many hosts the controller sends a large file to at once. Its sends share one thread's
 * encryption (7–9 s of CPU per GB through a bastion, measured by npm run bench) and each holds
 * 10–13 MB of buffers while it runs: a few at once keep the link busy, more only finish every
 * host later and grow the controller's memory with the fleet. With peers, the first hosts done
 * pass the file on.
 */
export const CONTROLLER_SENDS = 8;
/** How many hosts one holder serves at once. */
export const HOLDER_SENDS = 2;
/**
 * A holder that two receivers could not reach, or that sent two of them short copies, is not asked
 * again; once two holders could not be reached, the run stops trying host-to-host copies.
 */
const STRIKES = 2;

interface Holder {
  conn: Connection;
  address: string;
  path: string;
  busy: number;
  /** It failed to serve, served bytes that didn't match, or had STRIKES: never asked again. */
  bad: boolean;
  /** Receivers that could not reach it, and receivers it sent short copies. */
  unreachableFrom: Set<string>;
  shortTo: Set<string>;
}

/**
 * Delivers files the controller holds to many hosts without the controller sending each of them
 * every byte: a host that received a file (its sha256 checked there) serves it to the next ones,
 * so the number of holders triples per round and the controller sends only the first few.
 * Every copy is checked again at its receiver. A copy that fails is retried from another holder or
 * from the controller; a holder that served wrong bytes is not used again (nor one that two
 * receivers could not reach, or that sent two of them short copies), and once two holders could
 * not be reached the run stops trying host-to-host copies altogether.
 */
export class FanOut {
  private readonly holders = new Map<string, Holder[]>();
  private controllerBusy = 0;
  private waiting: (() => void)[] = [];
  /** Holders some receiver could not reach. */
  private readonly unreachable = new Set<Holder>();
  private peersOff?: string;

  constructor(
    private readonly log: Logger,
    private readonly limits = { controller: CONTROLLER_SENDS, holder: HOLDER_SENDS },
  ) {}

  /** Bound to the instance, so it can be handed out as the Controller's deliver(). */
  readonly deliver = async (conn: Connection, file: DeliveredFile, how: DeliverOptions): Promise<string> => {
    if (!/^[0-9a-f]{64}$/.test(file.sha256)) throw new InternalError(`${file.name}: not a sha256: ${JSON.stringify(file.sha256)}`);
    const tried = new Set<Holder>();
    for (;;) {
      const src = await this.acquire(file.sha256, how.peers, tried);
      if (src === 'controller') {
        try {
          await how.push();
        } finally {
          this.controllerBusy--;
          this.wake();
        }
        this.hold(conn, file, how);
        return 'controller';
      }
      tried.add(src);
      try {
        await this.copy(src, conn, file);
      } catch (e) {
        if (!(e instanceof PeerCopyError) || e.blame === 'receiver') throw e;
        this.failed(src, conn, e);
        continue;
      } finally {
        src.busy--;
        this.wake();
      }
      this.log.log(conn.endpoint.name, `${file.name} copied from ${src.conn.endpoint.name} (${src.address})`);
      this.hold(conn, file, how);
      return src.conn.endpoint.name;
    }
  };

  private async copy(src: Holder, dst: Connection, file: DeliveredFile): Promise<void> {
    const token = randomBytes(24).toString('hex');
    const serving = await src.conn.serveFile(src.path, token).catch((e: unknown) => {
      throw e instanceof PeerCopyError
        ? e
        : new PeerCopyError(`${src.conn.endpoint.name} could not serve ${file.name}: ${e instanceof Error ? e.message : String(e)}`, 'source');
    });
    try {
      await dst.receiveFile({ address: src.address, port: serving.port }, token, file.remotePath, file);
    } finally {
      serving.stop();
    }
    // The receiver has checked the file and moved it into place: whatever the server says now is news only.
    await serving.sent.catch((e: unknown) => this.log.log(src.conn.endpoint.name, `after serving ${file.name}: ${e instanceof Error ? e.message : String(e)}`));
  }

  private failed(src: Holder, dst: Connection, e: PeerCopyError): void {
    this.log.log(dst.endpoint.name, `host-to-host copy failed, trying elsewhere: ${e.message}`);
    const receiver = dst.endpoint.name;
    if (e.blame === 'source' && e.certain) src.bad = true;
    if (e.blame === 'source' && !e.certain && src.shortTo.add(receiver).size >= STRIKES) src.bad = true;
    if (e.blame === 'route') {
      if (src.unreachableFrom.add(receiver).size >= STRIKES) src.bad = true;
      this.unreachable.add(src);
      if (this.unreachable.size >= STRIKES && !this.peersOff) {
        this.peersOff = e.message;
        this.log.log(
          'hoist',
          `host-to-host copies stopped: ${this.unreachable.size} hosts holding the file could not be reached from others; the controller sends the rest`,
        );
      }
    }
  }

  private hold(conn: Connection, file: DeliveredFile, how: DeliverOptions): void {
    if (!how.peers) return;
    const list = this.holders.get(file.sha256) ?? [];
    list.push({ conn, address: how.peerAddress, path: file.remotePath, busy: 0, bad: false, unreachableFrom: new Set(), shortTo: new Set() });
    this.holders.set(file.sha256, list);
    this.wake();
  }

  /**
   * A holder with a free slot (the least busy); else, while no holder this receiver may use exists
   * yet, a controller slot; else waits. Once some host holds the file the controller sends no more
   * than fallbacks: holders multiply each round, and the controller's one thread would only slow
   * them down.
   */
  private async acquire(sha256: string, peers: boolean, tried: ReadonlySet<Holder>): Promise<Holder | 'controller'> {
    for (;;) {
      const usable = peers && !this.peersOff ? (this.holders.get(sha256) ?? []).filter((h) => !h.bad && !tried.has(h) && !h.conn.isClosed) : [];
      const pick = usable.filter((h) => h.busy < this.limits.holder).sort((a, b) => a.busy - b.busy)[0];
      if (pick) {
        pick.busy++;
        return pick;
      }
      if (usable.length === 0 && this.controllerBusy < this.limits.controller) {
        this.controllerBusy++;
        return 'controller';
      }
      await new Promise<void>((r) => this.waiting.push(r));
    }
  }

  private wake(): void {
    for (const w of this.waiting.splice(0)) w();
  }
}
