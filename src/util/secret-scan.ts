/**
 * Credentials found in text hoist did not write this run: a host's previous hosts.toml or
 * config.toml (the password before it changed), `containerd config dump`, a crictl info. Their
 * values become secrets as soon as hoist sees them, so the old password is as hidden as the new one.
 */

import { CONFIG_FIELD_ALTERNATION } from './credential-names.js';

/** Keys whose string values are credentials in containerd's and the registries' formats (credential-names.ts). */
const KEY = `(?:${CONFIG_FIELD_ALTERNATION})`;
/** A quoted string: TOML/JSON basic ("…" with escapes) or literal ('…'). */
const QUOTED = String.raw`"((?:[^"\\\n]|\\.)*)"|'([^'\n]*)'`;
const FIELD = new RegExp(String.raw`(?:^|[\s{,;."'])${KEY}["']?\s*[=:]\s*(?:${QUOTED})`, 'gim');
/** An Authorization header value, wherever it is written: `Authorization = ["Basic …"]`, `"authorization": "Bearer …"`. */
const AUTH_HEADER = /authorization["']?\s*[=:]\s*\[?\s*["']?(Basic|Bearer)\s+([A-Za-z0-9+/=._~-]{4,})/gi;

/** A TOML/JSON basic string's escapes undone (\uXXXX, \UXXXXXXXX, \n, \", \\). */
export function unescapeBasic(s: string): string {
  return s.replace(/\\(u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)/g, (_m, e: string) => {
    if (e[0] === 'u' || e[0] === 'U') {
      if (e.length > 1) return String.fromCodePoint(parseInt(e.slice(1), 16));
    }
    return ({ n: '\n', t: '\t', r: '\r', b: '\b', f: '\f', e: '\x1b' } as Record<string, string>)[e] ?? e;
  });
}

/** The credential values in `text`, each as written and decoded (the password inside a base64 `user:password` too). */
export function credentialsIn(text: string): string[] {
  const found: string[] = [];
  for (const m of text.matchAll(FIELD)) {
    const raw = m[1] ?? m[2] ?? '';
    const value = m[1] !== undefined ? unescapeBasic(raw) : raw;
    if (!value || /^\*+$/.test(value)) continue;
    found.push(value, ...basicParts(value));
  }
  for (const m of text.matchAll(AUTH_HEADER)) {
    found.push(m[2], ...basicParts(m[2]));
  }
  return found;
}

/** The password of a base64 `user:password` (what an `auth` field and a Basic header carry), if it is one. */
function basicParts(value: string): string[] {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(value) || value.length % 4 !== 0) return [];
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  // Decoding arbitrary base64 gives bytes, not text: only a clean UTF-8 `user:password` counts.
  if (colon < 0 || decoded.includes('\ufffd') || Buffer.from(decoded, 'utf8').toString('base64') !== value) return [];

  if (/[\x00-\x08\x0e-\x1f]/.test(decoded)) return [];
  return [decoded.slice(colon + 1)];
}
