import type { Path } from './schema.js';

/** A host's variables, by name, as templates and tasks read them. */
export type Vars = Record<string, unknown>;

/**
 * One place variables are set (playbook defaults, the inventory's defaults, a group, a host,
 * playbook vars, -e), lowest precedence first in a list. Kept apart until the variables of a host
 * are checked, so a problem names the file, line and layer its value came from.
 */
export interface VarLayer {
  /** As the operator would name it: `inventory group "workers"`, `playbook defaults`, `-e`. */
  name: string;
  /** The file that set them; absent for -e key=value on the command line. */
  file?: string;
  vars: Record<string, unknown>;
  /** The line of a variable (by key path below the layer) in `file`. */
  lineOf(path: Path): number | undefined;
}

/** Merges layers, lowest precedence first, remembering which layer set each variable. */
export function mergeLayers(layers: readonly VarLayer[]): { vars: Record<string, unknown>; source: Map<string, VarLayer> } {
  const vars: Record<string, unknown> = {};
  const source = new Map<string, VarLayer>();
  for (const l of layers) {
    for (const [k, v] of Object.entries(l.vars)) {
      vars[k] = v;
      source.set(k, l);
    }
  }
  return { vars, source };
}
