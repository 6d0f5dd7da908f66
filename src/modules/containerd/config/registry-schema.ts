/**
 * The `registries` variable as a schema: every key of a registry and of a mirror, its type, default
 * and meaning. The reference is generated from it and the types below are inferred from it;
 * validate.ts adds only what depends on several keys or on the target containerd release.
 */
import path from 'node:path';
import { s, type Infer, type Schema } from '../../../util/schema.js';
import { secretRefSchema, type SecretRef } from '../../../util/secret-ref.js';
import { CAPABILITIES, DEFAULT_MIRROR_CAPABILITIES, type Capability } from './types.js';

const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?';
export const HOST_RE = new RegExp(`^(?:${LABEL}(?:\\.${LABEL})*|\\[[0-9A-Fa-f:.]+\\])(?::(\\d{1,5}))?$`);
// RFC 3986 path characters, so a URL never needs quoting or escaping anywhere containerd or a shell sees it.
const URL_PATH_RE = /^(?:\/[A-Za-z0-9._~!$&'()*+,;=:@%-]*)*$/;
const HEADER_NAME_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const BASENAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
// Control characters, and lone surrogates that no TOML or YAML file can carry.
export const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

const show = (v: string) => JSON.stringify(v);

/** An http:// or https:// URL containerd and a shell can take as written: host[:port] and a plain path. */
const httpUrl = s.string().refine((v, report) => {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(.*)$/.exec(v);
  if (!m) return report(`${show(v)} has no scheme (http:// or https://)`);
  if (m[1] !== 'http' && m[1] !== 'https') return report(`${show(v)} must use http:// or https://, not ${m[1]}://`);
  const rest = m[2];
  const slash = rest.indexOf('/');
  const authority = slash < 0 ? rest : rest.slice(0, slash);
  const p = slash < 0 ? '' : rest.slice(slash);
  if (authority.includes('@')) return report('must not carry credentials in the URL; use username/password on the registry');
  const hm = HOST_RE.exec(authority);
  if (!hm || (hm[1] !== undefined && (Number(hm[1]) < 1 || Number(hm[1]) > 65535))) return report(`${show(v)} has no valid host[:port]`);
  if (/[?#]/.test(p) || !URL_PATH_RE.test(p)) return report(`${show(v)} must not have a query, fragment, or characters outside a URL path`);
  return v;
}, 'http(s) URL');

/** A controller-side file pushed to the registry's directory; its basename becomes the file name on the host. */
const controllerFile = s.string().refine((v, report) => {
  if (v === '' || CONTROL_RE.test(v)) return report('must be a non-empty path without control characters');
  const base = path.basename(v);
  if (!BASENAME_RE.test(base) || base === 'hosts.toml')
    return report(`file name ${show(base)} can't be used on the host (letters, digits, ".", "_", "-"; not hosts.toml)`);
  return v;
}, 'path on the controller');

/** Why `host` can't be a key of `registries`, or null. */
export function registryHostProblem(host: string): string | null {
  if (host === '_default') return null;
  const m = HOST_RE.exec(host);
  if (!m) return `${show(host)} is not a registry host (name or IP, optional :port, as in image references)`;
  if (m[1] !== undefined && (Number(m[1]) < 1 || Number(m[1]) > 65535)) return `${show(host)} has a port outside 1-65535`;
  return null;
}

// Go's HTTP client refuses control characters (other than tab) in header values.
const headerValue = s
  .string()
  .refine((v, report) => (/[\u0000-\u0008\u000a-\u001f\u007f]/.test(v) ? report('must not contain control characters (CR, LF, NUL, …)') : v));

const headers = s.record(s.list(headerValue).min(1), {
  name: 'HEADER',
  problem: (name) => (HEADER_NAME_RE.test(name) ? null : 'is not a valid HTTP header name'),
});

const capability = s.enum(...(CAPABILITIES as Capability[]));

/** TLS keys a registry and each of its mirrors carry. */
const tls = {
  ca: controllerFile.optional().describe('CA bundle (a path on the controller) pushed beside hosts.toml and trusted for this endpoint'),
  client_cert: controllerFile.optional().describe('client certificate for mutual TLS (controller path, pushed); set with client_key'),
  client_key: controllerFile.optional().describe('its private key (controller path, pushed 0600)'),
  skip_verify: s.bool().default(false).describe('accept any server certificate (testing only)'),
};

export const mirrorSchema = s.object({
  url: httpUrl.describe('http:// or https:// URL of the mirror, optionally with a path'),
  // Canonical order, no duplicates: the same capabilities written two ways render the same hosts.toml.
  capabilities: s
    .nonEmptyArray(capability)
    .refine((list) => CAPABILITIES.filter((c) => list.includes(c)))
    .default([...DEFAULT_MIRROR_CAPABILITIES])
    .describe('what the mirror is used for (1.5 and later; 1.4 uses every mirror for pull and resolve)'),
  ...tls,
  override_path: s.bool().default(false).describe('the URL path is the API root (no /v2 appended; containerd 1.6 and later)'),
  headers: headers
    .default({})
    .describe('HTTP headers sent to the mirror (1.5 and later), each a value or a list of values; a credential-named one makes hosts.toml 0600 and is masked'),
});

/** A credential written in place or named by reference; resolved on the controller before any host is contacted. */
const credential: Schema<string | SecretRef> = s.union<string | SecretRef>(
  'a string or a secret reference: { env = "NAME" }, { file = "path" } or { command = "…" }',
  s.string(),
  secretRefSchema,
);

export const registrySchema = s.object({
  server: httpUrl
    .optional()
    .describe(
      'upstream endpoint tried after the mirrors (default: what containerd uses, https://registry-1.docker.io for docker.io, else https:// or with insecure_http http:// plus the host); not on _default',
    ),
  mirrors: s.array(s.shorthand(mirrorSchema, 'url')).default([]).describe('mirrors tried in order before the server: URLs, or tables as below'),
  ...tls,
  insecure_http: s.bool().default(false).describe('the registry speaks plain http'),
  username: s.string().optional().describe('user for basic auth; set with password'),
  password: credential.optional().describe('password, written or by reference; masked everywhere'),
  auth: credential.optional().describe('base64 of "username:password" as in a docker config.json, written or by reference; instead of username/password'),
});

export const registriesSchema = s.record(registrySchema, { name: 'HOST', problem: registryHostProblem });

export type MirrorVars = Infer<typeof mirrorSchema>;
export type RegistryVars = Infer<typeof registrySchema>;
export type RegistriesVars = Infer<typeof registriesSchema>;
