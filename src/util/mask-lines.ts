import { isCredentialName } from './credential-names.js';
import { redact } from './redact.js';

/**
 * A credentials file as a reviewer may see it: every line kept except the value of a credential
 * assignment (`password = "…"`, `auth = …`, `Authorization = ["Basic …"]`, tokens, keys), which
 * becomes `"***"` with a tag, and any registered secret elsewhere in a line. Equal values get
 * equal tags within one call, so a diff shows that a password changed without showing either one.
 */
const ASSIGNMENT = /^(\s*)(["']?)([A-Za-z_-]+)\2(\s*[=:]\s*)(.+?)\s*$/;

export function lineMasker(): (text: string) => string {
  const tags = new Map<string, number>();
  const tag = (v: string) => {
    if (!tags.has(v)) tags.set(v, tags.size + 1);
    return tags.get(v)!;
  };
  return (text) =>
    text
      .split('\n')
      .map((line) => {
        const m = ASSIGNMENT.exec(line);
        if (!m || !isCredentialName(m[3], 'line')) return redact(line);
        return `${m[1]}${m[2]}${m[3]}${m[2]}${m[4]}"*** (secret ${tag(m[5])})"`;
      })
      .join('\n');
}

/** A private key is secret from its first line to its last: nothing of it is shown. */
export function holdsPrivateKey(text: string): boolean {
  return /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text);
}
