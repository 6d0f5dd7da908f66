/**
 * Every credential hoist reads (schema fields marked secret, registry passwords, derived
 * Authorization headers, the credentials of a host's previous configuration) is registered here once;
 * everything printed or logged goes through redact(), so a secret can't leak through an error
 * message, a diff or --json, in any encoding (secret-forms.ts).
 */
import { secretPattern } from './secret-forms.js';
import { credentialsIn } from './secret-scan.js';
import { isCredentialName, mentionsCredential } from './credential-names.js';

/** Each secret with its pattern; one expression per secret matches much faster than one alternation of all. */
const secrets = new Map<string, RegExp>();
let ordered: RegExp[] = [];

export function addSecret(value: string | undefined): void {
  // Very short values would mask ordinary words all over the output.
  if (!value || value.length < 4 || secrets.has(value)) return;
  secrets.set(value, new RegExp(secretPattern(value), 'g'));
  // Longest secrets first, so one that contains another is masked whole.
  ordered = [...secrets].sort((a, b) => b[0].length - a[0].length).map((e) => e[1]);
}

/** Registers the credentials written in a file or command output (a previous config), before anything prints it. */
export function addSecretsIn(text: string): void {
  for (const v of credentialsIn(text)) addSecret(v);
}

export function redact(text: string): string {
  if (!text) return text;
  // Credentials a host shows (an old password in a config dump) are secrets from now on.
  if (mentionsCredential(text)) addSecretsIn(text);
  if (secrets.size === 0) return text;
  let out = text;
  for (const re of ordered) out = out.replace(re, '***');
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

/** Whether a variable named `name` is a credential whatever a schema says: masked wherever variables are shown. */
export const isSecretName = (name: string): boolean => isCredentialName(name, 'variable');

/** A copy of variables for the log or `hoist inventory`: credentials by name masked, known secrets redacted. */
export function maskVariables<T>(value: T): T {
  // Under a `headers` table the names are HTTP headers': Authorization, X-Api-Key, Cookie.
  const secretIn = (parent: string | undefined, k: string) => isSecretName(k) || (parent === 'headers' && isCredentialName(k, 'header'));
  const walk = (v: unknown, parent?: string): unknown => {
    if (Array.isArray(v)) return v.map((x) => walk(x));
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, secretIn(parent, k) ? '***' : walk(x, k)]));
    return v;
  };
  return redactDeep(walk(value) as T);
}
