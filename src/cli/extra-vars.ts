import { parse } from 'smol-toml';
import { readToml } from '../util/toml-file.js';
import { InputError } from '../util/errors.js';

/**
 * -e key=value (the value read as a TOML value when it is one — true, 3, ["a","b"] — else as
 * text) or -e @file.toml. Later flags win.
 */
export async function parseExtraVars(items: string[]): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const item of items) {
    if (item.startsWith('@')) {
      Object.assign(out, (await readToml(item.slice(1))).data);
      continue;
    }
    const eq = item.indexOf('=');
    if (eq <= 0) throw new InputError(`-e ${item}: expected key=value or @file.toml`);
    const key = item.slice(0, eq).trim();
    if (!/^[A-Za-z_]\w*$/.test(key)) throw new InputError(`-e ${item}: "${key}" is not a variable name`);
    out[key] = tomlValue(item.slice(eq + 1));
  }
  return out;
}

function tomlValue(text: string): unknown {
  try {
    return parse(`v = ${text}`).v;
  } catch {
    return text;
  }
}
