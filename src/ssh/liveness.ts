/**
 * When a silent host counts as gone, and how long a handshake may take, in time the controller could
 * actually work. A controller whose own event loop runs late (a starved machine: hundreds of processes
 * on two cores) reads a host's replies late too; counting wall-clock silence would call live hosts
 * dead. Pure: every time comes in as an argument (see controller-clock.ts for the sampler).
 */

/** How often the controller's clock is sampled. */
export const TICK_MS = 250;
/** A tick that comes later than this past TICK_MS was the controller being late, not the host. */
export const TICK_SLACK_MS = 50;
/** Silence, in working time, after which a host is lost on an idle controller. */
export const SILENCE_MS = 4_000;
/** The longest silence allowed however loaded the controller has been. */
export const SILENCE_MAX_MS = 30_000;
/** Lag below this is an idle machine's jitter and extends nothing. */
export const LAG_FLOOR_MS = 100;
/** Each millisecond of recent lag above the floor allows this many more of silence. */
export const LAG_WEIGHT = 5;
/** How fast the remembered lag fades once the controller keeps time again. */
export const LAG_HALF_LIFE_MS = 10_000;

/** The part of a tick's elapsed time the controller could work: a late tick counts as one on time. */
export function workingTime(elapsedMs: number): number {
  return Math.max(0, Math.min(elapsedMs, TICK_MS + TICK_SLACK_MS));
}

/** The silence a host is allowed after recent controller lag `lagMs` (see LoadGauge). */
export function silenceBudget(lagMs: number): number {
  return Math.min(SILENCE_MAX_MS, SILENCE_MS + LAG_WEIGHT * Math.max(0, lagMs - LAG_FLOOR_MS));
}

/**
 * How late the controller has been lately: the largest overrun of a tick, fading by half every
 * LAG_HALF_LIFE_MS. A starved controller usually runs on a starved machine, where the hosts answer
 * late as well: the silence a host is allowed grows with it.
 */
export class LoadGauge {
  private lag = 0;
  private at = 0;

  /** A tick that ran `elapsedMs` after the previous one, at `nowMs`. */
  note(nowMs: number, elapsedMs: number): void {
    const faded = this.current(nowMs);
    this.lag = Math.max(faded, elapsedMs - TICK_MS);
    this.at = nowMs;
  }

  current(nowMs: number): number {
    if (this.lag <= 0) return 0;
    return this.lag * Math.pow(0.5, Math.max(0, nowMs - this.at) / LAG_HALF_LIFE_MS);
  }
}

/**
 * Counts a host's silence in working time. Any byte from the host is life (a keepalive reply, a
 * command's output, a window adjust): a host busy streaming output is never lost for a late reply.
 */
export class SilenceCounter {
  private silentMs = 0;

  heard(): void {
    this.silentMs = 0;
  }

  /** One tick `elapsedMs` after the last one, with recent lag `lagMs`: whether the host is now lost. */
  tick(elapsedMs: number, lagMs: number): boolean {
    this.silentMs += workingTime(elapsedMs);
    return this.silentMs >= silenceBudget(lagMs);
  }

  get silent(): number {
    return this.silentMs;
  }
}

/** A deadline in working time: a handshake is not failed for the seconds the controller itself stood still. */
export class WorkingDeadline {
  private spentMs = 0;
  constructor(private readonly limitMs: number) {}

  /** One tick `elapsedMs` after the last one: whether the deadline has now passed. */
  tick(elapsedMs: number): boolean {
    this.spentMs += workingTime(elapsedMs);
    return this.spentMs >= this.limitMs;
  }
}
