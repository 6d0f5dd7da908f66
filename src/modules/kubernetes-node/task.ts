import type { ObjectSchema, Shape } from '../../util/schema.js';
import type { TaskDefinition } from '../../tasks/types.js';
import type { NodeSettings } from './settings.js';

/** A task of the kubernetes-node module: its context carries the host's node settings, checked before any connection. */
export function nodeTask<S extends ObjectSchema<Shape>, R = undefined>(def: TaskDefinition<S, R, NodeSettings>): TaskDefinition<S, R, NodeSettings> {
  return def;
}
