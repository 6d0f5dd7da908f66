import { InternalError } from '../util/errors.js';

/**
 * A value one task's plan hands to later tasks of the same host (the artifacts staged, the
 * version installed before). Tasks declare the slots they need and provide; the playbook loader
 * checks every need has a provider earlier in the playbook, so a read here never comes up empty.
 * Values are kept per plan (host), typed by the slot, with no string keys in between.
 */
export class Slot<T> {
  readonly #values = new WeakMap<object, { value: T }>();

  constructor(
    readonly name: string,
    /** What the value is, for the loader's error when no task provides it. */
    readonly description: string,
  ) {}

  put(plan: object, value: T): void {
    this.#values.set(plan, { value });
  }

  /** The value an earlier task provided; a missing one is a bug in a task's declarations, not bad input. */
  get(plan: object): T {
    const held = this.#values.get(plan);
    if (!held) throw new InternalError(`no task provided ${this.description} (${this.name}) before this one`);
    return held.value;
  }

  /** For tasks that use the value when an earlier task provided it and work without it otherwise. */
  peek(plan: object): T | undefined {
    return this.#values.get(plan)?.value;
  }
}

export function slot<T>(name: string, description: string): Slot<T> {
  return new Slot<T>(name, description);
}
