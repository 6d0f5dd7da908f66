import { InputError } from './errors.js';
import { isPlainObject } from './schema.js';
import type { Vars } from './var-layer.js';
import { didYouMean } from './suggest.js';

const WHOLE = /^\s*\{\{\s*([A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*)\s*\}\}\s*$/;
const ANY = /\{\{|\{%/;

type Nunjucks = typeof import('nunjucks');
let nj: Nunjucks | undefined;
async function nunjucks(): Promise<Nunjucks> {
  nj ??= (await import('nunjucks')).default;
  return nj;
}

export function lookupVar(vars: Vars, dotted: string): unknown {
  let v: unknown = vars;
  for (const part of dotted.split('.')) {
    if (!isPlainObject(v) || !(part in v)) return undefined;
    v = v[part];
  }
  return v;
}

/**
 * Substitutes variables into task parameters. A string that is exactly "{{ name }}" takes the
 * variable's own value (a list stays a list, a bool a bool); anything else renders as text.
 * A variable that doesn't exist is an error naming it.
 */
export async function substitute(value: unknown, vars: Vars, where: string): Promise<unknown> {
  if (typeof value === 'string') {
    if (!ANY.test(value)) return value;
    const whole = WHOLE.exec(value);
    if (whole) {
      const v = lookupVar(vars, whole[1]);
      if (v === undefined) throw missing(whole[1], vars, where);
      return v;
    }
    return renderString(value, vars, where);
  }
  if (Array.isArray(value)) return Promise.all(value.map((v) => substitute(v, vars, where)));
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = await substitute(v, vars, where);
    return out;
  }
  return value;
}

function missing(name: string, vars: Vars, where: string): InputError {
  return new InputError(`${where}: undefined variable "${name}"${didYouMean(name.split('.')[0], Object.keys(vars))}`);
}

/** Renders template text with nunjucks; an undefined variable names itself instead of nunjucks' generic message. */
export async function renderString(text: string, vars: Vars, where: string, env?: import('nunjucks').Environment): Promise<string> {
  const n = await nunjucks();
  const e = env ?? new n.Environment(null, { autoescape: false, throwOnUndefined: true });
  try {
    return e.renderString(text, vars);
  } catch (err) {
    // nunjucks copies the context, so the missing name is found by reading the expressions back.
    const missed = [...text.matchAll(/\{\{-?\s*([A-Za-z_]\w*)/g)].map((m) => m[1]).find((name) => !(name in vars));
    if (missed) throw missing(missed, vars, where);
    throw new InputError(`${where}: template error: ${(err as Error).message.replace(/\s+/g, ' ')}`);
  }
}
