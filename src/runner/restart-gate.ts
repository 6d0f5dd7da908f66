import { HostError } from '../util/errors.js';

/**
 * Rolling restarts. A host whose plan restarts a service that is already running (containerd under
 * the pods of a live node) takes one of `restart_batch` places before its before_host hooks and
 * keeps it until its run ends, verification included; hosts whose plans disrupt nothing (a fresh
 * install, a no-op) don't wait. When a host that held a place fails, the hosts still waiting are
 * not touched: a config change that breaks containerd stops at the first batch.
 */
export class RestartGate {
  private free: number;
  private readonly waiting: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private stopped?: string;

  constructor(readonly size: number) {
    this.free = Math.max(1, size);
  }

  /** Resolves with the release once the host may go on; rejects with the reason when the roll-out stopped. */
  async enter(): Promise<() => void> {
    if (this.stopped) throw new HostError(this.stopped);
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve, reject) => this.waiting.push({ resolve, reject }));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next.resolve();
      else this.free++;
    };
  }

  /** No waiting host goes on after this. */
  stop(reason: string): void {
    if (this.stopped) return;
    this.stopped = reason;
    for (const w of this.waiting.splice(0)) w.reject(new HostError(reason));
  }
}

/** Places of the gate for `restart_batch`: a host count, or a percentage of the play's hosts (at least one). */
export function restartBatchSize(batch: number | string | undefined, hosts: number): number {
  if (batch === undefined) return 1;
  if (typeof batch === 'number') return batch;
  return Math.max(1, Math.floor((hosts * Number(batch.slice(0, -1))) / 100));
}
