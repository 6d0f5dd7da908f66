import type { Connection } from './connection.js';
import type { Logger } from '../util/log.js';

/** One undo step; returns a sentence for the recap, or undefined when it has nothing to say. */
export type RollbackStep = (conn: Connection, log: Logger) => Promise<string | undefined>;

/**
 * The undo steps of one host, added by the tasks that change it. They run newest first, as the
 * changes are undone in the reverse of the order they were made; a step added under a key is
 * added once however many tasks ask for it (one restart after every file is back).
 */
export class RollbackPlan {
  private readonly steps: RollbackStep[] = [];
  private readonly keys = new Set<string>();

  add(step: RollbackStep): void {
    this.steps.push(step);
  }

  once(key: string, step: RollbackStep): void {
    if (this.keys.has(key)) return;
    this.keys.add(key);
    this.steps.push(step);
  }

  get empty(): boolean {
    return this.steps.length === 0;
  }

  /** Runs every step, newest first; the first failure stops the rest, since later steps assume earlier ones held. */
  async run(conn: Connection, log: Logger): Promise<string[]> {
    const said: string[] = [];
    for (const step of [...this.steps].reverse()) {
      const s = await step(conn, log);
      if (s) said.push(s);
    }
    return said;
  }
}
