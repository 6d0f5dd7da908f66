import { LoadGauge, TICK_MS } from './liveness.js';

/** Called on every sample with the time since the previous one and the controller's recent lag. */
export type TickListener = (elapsedMs: number, lagMs: number) => void;

const listeners = new Set<TickListener>();
const gauge = new LoadGauge();
let timer: NodeJS.Timeout | undefined;
let last = 0;

/**
 * One sampler of the controller's event loop for every connection: a timer every TICK_MS whose
 * drift is how late the controller runs. It keeps nothing alive (unref) and stops when no one listens.
 */
export function onTick(fn: TickListener): () => void {
  listeners.add(fn);
  if (!timer) {
    last = performance.now();
    timer = setInterval(sample, TICK_MS);
    timer.unref();
  }
  return () => {
    listeners.delete(fn);
    if (listeners.size === 0 && timer) {
      clearInterval(timer);
      timer = undefined;
    }
  };
}

/** The controller's recent lag in ms (0 when no sampler runs). */
export function recentLag(): number {
  return gauge.current(performance.now());
}

function sample(): void {
  const now = performance.now();
  const elapsed = now - last;
  last = now;
  gauge.note(now, elapsed);
  const lag = gauge.current(now);
  for (const fn of [...listeners]) fn(elapsed, lag);
}
