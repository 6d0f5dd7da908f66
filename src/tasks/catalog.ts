import type { AnyTask, TaskModule } from './types.js';
import { InternalError } from '../util/errors.js';

/**
 * The tasks a playbook may name, built once by the CLI from the engine's built-in tasks and the
 * modules it ships; the playbook loader and the runner are handed it and know no task by name.
 */
export class TaskCatalog {
  private readonly tasks = new Map<string, AnyTask>();
  private readonly owner = new Map<string, TaskModule>();

  constructor(
    builtin: readonly AnyTask[],
    readonly modules: readonly TaskModule[] = [],
  ) {
    for (const t of builtin) this.add(t);
    for (const m of modules) {
      for (const t of m.tasks) {
        this.add(t);
        this.owner.set(t.name, m);
      }
    }
  }

  private add(t: AnyTask): void {
    if (this.tasks.has(t.name)) throw new InternalError(`two tasks are named "${t.name}"`);
    this.tasks.set(t.name, t);
  }

  get(name: string): AnyTask | undefined {
    return this.tasks.get(name);
  }

  names(): string[] {
    return [...this.tasks.keys()];
  }

  /** The module a task belongs to; built-in tasks have none. */
  moduleOf(task: string): TaskModule | undefined {
    return this.owner.get(task);
  }

  /** The first task that provides a slot, to name in the error when a playbook lacks it. */
  providerOf(slotName: string): AnyTask | undefined {
    return [...this.tasks.values()].find((t) => t.provides?.some((s) => s.name === slotName));
  }
}
