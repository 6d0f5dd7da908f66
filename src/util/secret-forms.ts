/**
 * Every form a secret can take on its way to a terminal or a log: a password hoist registered raw
 * comes back from a host JSON- or TOML-escaped (`\"`, `\\`, `\u00e9`), shell-quoted (`'\''`, `\$`),
 * URL-encoded (`%24`), escaped by printable() (`\x1b`), or inside a base64 `user:password`. One
 * pattern per secret matches any mix of these, character by character, so no single encoder has to
 * be anticipated by name.
 */

const reEscape = (s: string) => s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');

/** A hex number matched in either case (`\u00E9` and `\u00e9`). */
function hexCi(n: number, width: number): string {
  return [...n.toString(16).padStart(width, '0')].map((d) => (/[a-f]/.test(d) ? `[${d}${d.toUpperCase()}]` : d)).join('');
}

/** One or more backslashes: escapes nest (a JSON string inside a JSON string doubles them). */
const BS = '\\\\{1,8}';

const SHORT_ESCAPES: Record<string, string> = { '\n': 'n', '\t': 't', '\r': 'r', '\b': 'b', '\f': 'f', '\v': 'v', '\0': '0' };

/** The alternatives one character of a secret may appear as. */
function charForms(ch: string): string[] {
  const cp = ch.codePointAt(0)!;
  const forms = [reEscape(ch)];
  const bytes = [...Buffer.from(ch, 'utf8')];
  // \uXXXX (JSON, TOML, JavaScript; a surrogate pair above the BMP) and \UXXXXXXXX (TOML).
  if (cp > 0xffff) {
    const hi = 0xd800 + ((cp - 0x10000) >> 10);
    const lo = 0xdc00 + ((cp - 0x10000) & 0x3ff);
    forms.push(`${BS}u${hexCi(hi, 4)}${BS}u${hexCi(lo, 4)}`);
  } else forms.push(`${BS}u${hexCi(cp, 4)}`, `${BS}u\\{${hexCi(cp, 1)}\\}`);
  forms.push(`${BS}U${hexCi(cp, 8)}`);
  // \xHH per UTF-8 byte (printable(), C, bash $'…'), %HH per byte (URLs), octal \NNN (printf, bash).
  forms.push(bytes.map((b) => `${BS}x${hexCi(b, 2)}`).join(''));
  forms.push(bytes.map((b) => `%(?:25)?${hexCi(b, 2)}`).join(''));
  forms.push(bytes.map((b) => `${BS}0?${b.toString(8).padStart(3, '0')}`).join(''));
  if (SHORT_ESCAPES[ch]) forms.push(`${BS}${SHORT_ESCAPES[ch]}`);
  if (ch === ' ') forms.push('\\+');
  // A single quote closed, escaped and reopened by a shell quoter: '\'' or '"'"'.
  if (ch === "'") forms.push(`'${BS}''`, `'"'"'`);
  // Punctuation escaped by a backslash (JSON \" \\ \/, shell \$ \` \", TOML \"): any depth.
  if (cp < 0x80 && !/[A-Za-z0-9]/.test(ch)) forms.push(`${BS}${reEscape(ch)}`);
  return forms;
}

/** A regular-expression source that matches `secret` in any of the forms above, mixed freely. */
export function escapedFormsPattern(secret: string): string {
  return [...secret].map((ch) => `(?:${charForms(ch).join('|')})`).join('');
}

/**
 * Base64 of the secret wherever it sits in the encoded bytes: `user:password` puts the password at
 * any offset modulo 3, and only the characters that depend on the secret's bits alone are the same
 * for every user. Those runs (of at least 8 characters, so short ones don't mask ordinary text) and
 * the plain base64 and base64url of the secret itself.
 */
export function base64Forms(secret: string): string[] {
  const bytes = Buffer.from(secret, 'utf8');
  const out = new Set<string>();
  for (const enc of ['base64', 'base64url'] as const) {
    out.add(bytes.toString(enc));
    for (let k = 0; k < 3; k++) {
      const s = Buffer.concat([Buffer.alloc(k), bytes]).toString(enc);
      const first = Math.ceil((8 * k) / 6);
      const last = Math.floor((8 * k + 8 * bytes.length) / 6) - 1;
      const core = s.slice(first, last + 1);
      if (core.length >= 8) out.add(core);
    }
  }
  return [...out].filter((s) => s.length >= 4);
}

/** Everything that matches `secret` in any encoding, as one alternation (longest forms first). */
export function secretPattern(secret: string): string {
  const b64 = base64Forms(secret)
    .sort((a, b) => b.length - a.length)
    .map(reEscape);
  return [escapedFormsPattern(secret), ...b64].join('|');
}
