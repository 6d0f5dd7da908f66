/**
 * A host's clock against the controller's, read in the gathering round trip: the host reads its
 * clock first and last in the script, the controller notes when it sent the script and when the
 * answer came. The first read happened after the send and the last before the answer, so the
 * host's offset lies between (last read − answer) and (first read − send): the uncertainty is the
 * round trip's transport alone, whatever the probes between the two reads cost.
 */
export interface ClockReading {
  /** Host clock minus controller clock, in ms: the middle of the interval. */
  offsetMs: number;
  /** Half the interval's width, in ms: the true offset is offsetMs ± errorMs. */
  errorMs: number;
}

/** Prints the host's wall clock in seconds with microseconds (bash 5's EPOCHREALTIME, else date). */
export const CLOCK_READ = 'echo "${EPOCHREALTIME:-$(date +%s.%N)}"';

/** Seconds as the host printed them (a locale may use a decimal comma), in ms; undefined if unreadable. */
export function parseClock(out: string): number | undefined {
  const m = /^(\d+)[.,](\d+)$/.exec(out.trim());
  if (!m) return undefined;
  return Number(m[1]) * 1000 + Number(`0.${m[2]}`) * 1000;
}

/** The offset from the controller's send/receive times (ms) and the host's first/last reads (ms). */
export function clockReading(sentMs: number, receivedMs: number, firstMs: number, lastMs: number): ClockReading | undefined {
  const hi = firstMs - sentMs;
  const lo = lastMs - receivedMs;
  // A host clock that stepped backwards mid-script (or went wrong) gives no interval.
  if (!(lo <= hi) || lastMs < firstMs) return undefined;
  return { offsetMs: (lo + hi) / 2, errorMs: (hi - lo) / 2 };
}
