import { isPlainObject, type Path } from './schema.js';
import { secretRefOf } from './secret-ref.js';

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
  /**
   * Tables this layer sets are merged key by key into what lower layers set (`-e @file`), instead
   * of replacing them; arrays, values and secret references still replace.
   */
  mergeTables?: boolean;
}

export interface MergedVars {
  vars: Record<string, unknown>;
  /** The highest layer that set each variable. */
  source: Map<string, VarLayer>;
  /** The layer a value below a variable came from: where tables were merged, the highest layer holding that path. */
  layerOf(path: Path): VarLayer | undefined;
}

/** Merges layers, lowest precedence first, remembering which layer set each variable. */
export function mergeLayers(layers: readonly VarLayer[]): MergedVars {
  const vars: Record<string, unknown> = {};
  const source = new Map<string, VarLayer>();
  const merged = new Set<string>();
  for (const l of layers) {
    for (const [k, v] of Object.entries(l.vars)) {
      if (l.mergeTables && mergeable(vars[k]) && mergeable(v)) {
        vars[k] = deepMerge(vars[k] as Record<string, unknown>, v as Record<string, unknown>);
        merged.add(k);
      } else {
        vars[k] = v;
        merged.delete(k);
      }
      source.set(k, l);
    }
  }
  const layerOf = (path: Path): VarLayer | undefined => {
    const top = String(path[0]);
    if (!merged.has(top)) return source.get(top);
    for (let i = layers.length - 1; i >= 0; i--) if (has(layers[i].vars, path)) return layers[i];
    return source.get(top);
  };
  return { vars, source, layerOf };
}

const mergeable = (v: unknown): v is Record<string, unknown> => isPlainObject(v) && !secretRefOf(v);

function deepMerge(low: Record<string, unknown>, high: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...low };
  for (const [k, v] of Object.entries(high)) out[k] = mergeable(out[k]) && mergeable(v) ? deepMerge(out[k] as Record<string, unknown>, v) : v;
  return out;
}

function has(vars: Record<string, unknown>, path: Path): boolean {
  let cur: unknown = vars;
  for (const p of path) {
    if (cur === null || typeof cur !== 'object') return false;
    cur = (cur as Record<string | number, unknown>)[p];
    if (cur === undefined) return false;
  }
  return true;
}
