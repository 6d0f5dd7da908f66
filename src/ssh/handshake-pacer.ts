/**
 * How many SSH handshakes run at once. Each costs both ends a key exchange's CPU; a hundred at once on
 * a starved machine starve each other until every one misses its deadline. The limit grows by one for
 * every handshake done quickly and halves for every slow one (TCP's congestion rule): an idle
 * controller soon runs them all at once, a loaded one runs as many as it can finish.
 */

/** Handshakes in flight at first. A bastion's sshd admits 10 unauthenticated connections by default. */
export const PACE_START = 10;
export const PACE_MIN = 2;
export const PACE_MAX = 256;
/** A handshake done within this (wall time, queueing excluded) lets one more run at once. */
export const PACE_FAST_MS = 2_000;
/** A handshake that took this long (or failed after it) halves the number in flight. */
export const PACE_SLOW_MS = 5_000;

export class HandshakePacer {
  private inFlight = 0;
  private allowed = PACE_START;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly now: () => number = () => performance.now()) {}

  get limit(): number {
    return this.allowed;
  }

  get running(): number {
    return this.inFlight;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** Runs `fn` once a slot is free; its duration (success or not) adjusts the limit. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire();
    const t0 = this.now();
    try {
      return await fn();
    } finally {
      this.release(this.now() - t0);
    }
  }

  acquire(): Promise<void> {
    if (this.inFlight < this.allowed) {
      this.inFlight++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** A handshake that held a slot for `tookMs` is done. */
  release(tookMs: number): void {
    if (tookMs <= PACE_FAST_MS) this.allowed = Math.min(PACE_MAX, this.allowed + 1);
    else if (tookMs >= PACE_SLOW_MS) this.allowed = Math.max(PACE_MIN, Math.floor(this.allowed / 2));
    this.inFlight--;
    while (this.inFlight < this.allowed && this.waiting.length) {
      this.inFlight++;
      this.waiting.shift()!();
    }
  }
}
