/**
 * Every credential hoist reads (schema fields marked secret, registry passwords, derived
 * Authorization headers) is registered here once; everything printed or logged goes through
 * redact(), so a secret can't leak through an error message, a diff or --json.
 */
const secrets = new Set<string>();

export function addSecret(value: string | undefined): void {
  // Very short values would mask ordinary words all over the output.
  if (value && value.length >= 4) secrets.add(value);
}

export function redact(text: string): string {
  if (secrets.size === 0 || !text) return text;
  let out = text;
  for (const s of [...secrets].sort((a, b) => b.length - a.length)) {
    if (out.includes(s)) out = out.split(s).join('***');
  }
  return out;
}

/** Deep copy with every string redacted, for --json reports. */
export function redactDeep<T>(value: T): T {
  if (typeof value === 'string') return redact(value) as T;
  if (Array.isArray(value)) return value.map((v) => redactDeep(v)) as T;
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = redactDeep(v);
    return out as T;
  }
  return value;
}

/** Names whose values are credentials whatever a schema says: masked wherever variables are shown. */
export const SECRET_NAME = /pass(word)?|secret|token|(^|_)auth$|private_key/i;

/** A copy of variables for the log or `hoist inventory`: credentials by name masked, known secrets redacted. */
export function maskVariables<T>(value: T): T {
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, SECRET_NAME.test(k) ? '***' : walk(x)]));
    return v;
  };
  return redactDeep(walk(value) as T);
}
