/**
 * Which key names hold credentials: the one list every masking consumer reads. A key containing
 * one of CREDENTIAL_WORDS is a credential wherever hoist meets it; each scope below adds only what
 * its consumer meets and the others must not take:
 *
 * - `variable` (maskVariables, `hoist inventory`): also `pass` anywhere (become_pass) and `auth` as
 *   the whole name or its last `_` word (`auth`, `basic_auth`, not `author_email`).
 * - `header` (a mirror's headers: hosts.toml 0600, values masked): also `auth` anywhere
 *   (Authorization, X-Auth-Token), `key` (X-Api-Key) and `cookie`.
 * - `line` (a credentials file's lines in --diff): also `auth` anywhere (`auth = …`,
 *   `Authorization = […]`).
 *
 * Credentials read off a host's files (secret-scan.ts) are matched by exact field name, since the
 * value found becomes a secret masked in all output: CONFIG_FIELD_NAMES.
 */

/** A key containing one of these (any case) names a credential in every scope. */
export const CREDENTIAL_WORDS: readonly string[] = ['password', 'passwd', 'passphrase', 'secret', 'token', 'private_key'];

export type CredentialScope = 'variable' | 'header' | 'line';

/** Words each scope matches anywhere in a name besides CREDENTIAL_WORDS. */
export const SCOPE_WORDS: Readonly<Record<CredentialScope, readonly string[]>> = {
  variable: ['pass'],
  header: ['auth', 'key', 'cookie'],
  line: ['auth'],
};

/**
 * Field names whose string values are credentials in containerd's and the registries' formats
 * (hosts.toml, config.toml, a docker config.json, crictl info): matched whole.
 */
export const CONFIG_FIELD_NAMES: readonly string[] = [...CREDENTIAL_WORDS, 'auth', 'identitytoken', 'identity_token', 'registrytoken', 'registry_token'];

const escape = (w: string) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const anyOf = (words: readonly string[]) => words.map(escape).join('|');

const SCOPE_RE: Record<CredentialScope, RegExp> = {
  variable: new RegExp(`${anyOf([...CREDENTIAL_WORDS, ...SCOPE_WORDS.variable])}|(?:^|_)auth$`, 'i'),
  header: new RegExp(anyOf([...CREDENTIAL_WORDS, ...SCOPE_WORDS.header]), 'i'),
  line: new RegExp(anyOf([...CREDENTIAL_WORDS, ...SCOPE_WORDS.line]), 'i'),
};

/** Whether a key named `name` holds a credential in `scope`. */
export function isCredentialName(name: string, scope: CredentialScope): boolean {
  return SCOPE_RE[scope].test(name);
}

/** CONFIG_FIELD_NAMES as a regular-expression alternation, longest first, for a pattern that reads the value after one. */
export const CONFIG_FIELD_ALTERNATION = anyOf([...CONFIG_FIELD_NAMES].sort((a, b) => b.length - a.length));

const MENTION_RE = new RegExp(anyOf([...CONFIG_FIELD_NAMES, 'authorization']), 'i');

/** Whether `text` may hold a credential field at all: a cheap test before scanning it. */
export function mentionsCredential(text: string): boolean {
  return MENTION_RE.test(text);
}
