import type { InterruptSignal } from '../util/errors.js';

/**
 * A run interrupted by SIGINT or SIGTERM: no host starts a new task, hook or batch once one is
 * requested; what a host is doing at that moment (one task's actions, or a hook) finishes or is
 * abandoned, and the CLI says which hosts were where.
 */
export type { InterruptSignal };

let requested: InterruptSignal | undefined;
const listeners = new Set<(s: InterruptSignal) => void>();

export const interruption = {
  get signal(): InterruptSignal | undefined {
    return requested;
  },
  request(signal: InterruptSignal): void {
    if (requested) return;
    requested = signal;
    for (const l of listeners) l(signal);
  },
  /** Resolves when a signal is requested; never rejects. */
  wait(): Promise<InterruptSignal> {
    if (requested) return Promise.resolve(requested);
    return new Promise((resolve) => {
      const l = (s: InterruptSignal) => {
        listeners.delete(l);
        resolve(s);
      };
      listeners.add(l);
    });
  },
};

/** Where each host stands, for the message after an interrupt. */
export const hostProgress = {
  /** Hosts inside a step that changes them (a task's actions, a hook), and that step. */
  inFlight: new Map<string, string>(),
  /** Hosts whose run has ended, with their status. */
  done: new Map<string, string>(),
  /** Hosts whose run has begun (connecting counts). */
  started: new Set<string>(),
};
