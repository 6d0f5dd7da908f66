import type { ObjectSchema, Shape } from '../../util/schema.js';
import type { TaskDefinition } from '../../tasks/types.js';
import type { ContainerdSettings } from './settings.js';

/** A task of the containerd module: its context carries the host's containerd settings, checked before any connection. */
export function containerdTask<S extends ObjectSchema<Shape>, R = undefined>(
  def: TaskDefinition<S, R, ContainerdSettings>,
): TaskDefinition<S, R, ContainerdSettings> {
  return def;
}
