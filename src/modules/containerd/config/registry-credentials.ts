import { isCredentialName } from '../../../util/credential-names.js';
import { isPlainObject } from '../../../util/schema.js';

/** Header names whose values are credentials: files carrying them are written 0600 and values redacted. */
export function isSensitiveHeader(name: string): boolean {
  return isCredentialName(name, 'header');
}

const strings = (v: unknown): string[] => (typeof v === 'string' ? [v] : Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

/**
 * The credentials written in `registries` as the operator wrote them, before any check: each
 * registry's password and auth, and the values of its mirrors' credential-named headers. Read from
 * the raw tables so a mistake elsewhere in a registry (which keeps it out of the settings) can't
 * leave one unregistered and shown in clear in the problem list or `hoist inventory`.
 */
export function registryCredentialsIn(vars: Readonly<Record<string, unknown>>): string[] {
  const registries = vars.registries;
  if (!isPlainObject(registries)) return [];
  const found: string[] = [];
  for (const registry of Object.values(registries)) {
    if (!isPlainObject(registry)) continue;
    found.push(...strings(registry.password), ...strings(registry.auth));
    const mirrors = Array.isArray(registry.mirrors) ? registry.mirrors : [];
    for (const mirror of mirrors) {
      if (!isPlainObject(mirror) || !isPlainObject(mirror.headers)) continue;
      for (const [name, value] of Object.entries(mirror.headers)) if (isSensitiveHeader(name)) found.push(...strings(value));
    }
  }
  return found;
}
