import { parse } from 'smol-toml';
import { readToml } from '../util/toml-file.js';
import { InputError } from '../util/errors.js';
import { printable } from '../util/printable.js';
import { mergeLayers, type VarLayer } from '../util/var-layer.js';

/**
 * -e key=value (the value read as a TOML value when it is one — true, 3, ["a","b"] — else as
 * text) or -e @file.toml, each a layer of its own so a problem names the flag or the file's line.
 * Later flags win; a table in a file is merged key by key into the same table set below it.
 */
export async function extraVarLayers(items: string[]): Promise<VarLayer[]> {
  const layers: VarLayer[] = [];
  for (const item of items) {
    if (item.startsWith('@')) {
      const doc = await readToml(item.slice(1));
      layers.push({ name: `-e ${printable(item)}`, file: doc.file, vars: doc.data, lineOf: (p) => doc.locator.lineOf(p), mergeTables: true });
      continue;
    }
    const eq = item.indexOf('=');
    if (eq <= 0) throw new InputError(`-e ${printable(item)}: expected key=value or @file.toml`);
    const key = item.slice(0, eq).trim();
    if (!/^[A-Za-z_]\w*$/.test(key)) throw new InputError(`-e ${printable(item)}: ${JSON.stringify(key)} is not a variable name`);
    layers.push({ name: `-e ${key}=…`, vars: { [key]: tomlValue(item.slice(eq + 1)) }, lineOf: () => undefined });
  }
  return layers;
}

/** The -e layers merged, later flags winning. */
export async function parseExtraVars(items: string[]): Promise<Record<string, unknown>> {
  return mergeLayers(await extraVarLayers(items)).vars;
}

function tomlValue(text: string): unknown {
  try {
    return parse(`v = ${text}`).v;
  } catch {
    return text;
  }
}
