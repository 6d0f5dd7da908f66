/**
 * Turns containerd's image pull errors into what an operator must change. containerd reports a
 * failed pull as one long Go error chain ("failed to pull and unpack image …: failed to resolve
 * reference …: failed to do request: Head "https://…": tls: …"); the last link says what went
 * wrong and the URL says where. hoist knows which of its `registries` entries that endpoint belongs
 * to and whether a CA, client certificate or credentials were configured for it, so it can say
 * "missing" or "rejected" and name the variable to set.
 *
 * The patterns are the messages of Go's crypto/tls and net packages and of containerd's docker
 * resolver as observed from containerd 1.4, 1.7 and 2.1 against a real registry.
 */
import path from 'node:path';
import { urlAuthority } from './config/registry-paths.js';
import { type RegistryConfig, type TlsFiles } from './config/types.js';

export type PullProblem =
  | 'ca-not-trusted'
  | 'certificate-name'
  | 'certificate-expired'
  | 'client-certificate'
  | 'credentials'
  | 'forbidden'
  | 'plain-http'
  | 'not-found'
  | 'name-resolution'
  | 'unreachable'
  | 'timeout'
  | 'other';

export interface PullDiagnosis {
  problem: PullProblem;
  /** Where containerd was talking to: `https://host:port`, or `host:port` when the error names no scheme. */
  endpoint: string | null;
  /** The `registries` entry that endpoint belongs to (as its server or one of its mirrors), if any. */
  registry: string | null;
  /** One line: what is wrong and what to set. */
  message: string;
  /** containerd's own words, without the method name and the repeated image reference. */
  detail: string;
}

/** The registry host of an image reference, normalised the way containerd does: no domain means docker.io. */
export function imageRegistryHost(image: string): string {
  const slash = image.indexOf('/');
  if (slash < 0) return 'docker.io';
  const first = image.slice(0, slash);
  if (first.includes('.') || first.includes(':') || first === 'localhost') return first === 'index.docker.io' ? 'docker.io' : first;
  return 'docker.io';
}

/** The endpoint an error chain names: a request URL, or the host of 1.4's "pulling from host X failed". */
export function errorEndpoint(raw: string): string | null {
  const url = /\b(https?):\/\/([^/"\s?]+)/.exec(raw);
  if (url) return `${url[1]}://${url[2]}`;
  const host = /\bpulling from host ([^\s:]+(?::\d+)?) failed/.exec(raw);
  return host ? host[1] : null;
}

interface Owner {
  host: string;
  /** The TLS settings that apply to that endpoint: the mirror's own, or the registry's for its server. */
  tls: TlsFiles;
  /** Variable path of those settings, e.g. registries."docker.io".mirrors[0]. */
  where: string;
  isServer: boolean;
  reg: RegistryConfig;
}

function authorityOf(endpoint: string): string {
  return endpoint.includes('://') ? urlAuthority(endpoint) : endpoint;
}

/** Which configured registry (server or mirror) the endpoint is; else the image's own registry entry. */
function ownerOf(endpoint: string | null, image: string, registries: Record<string, RegistryConfig>): Owner | null {
  const a = endpoint ? authorityOf(endpoint) : null;
  if (a) {
    for (const [host, reg] of Object.entries(registries)) {
      const i = reg.mirrors.findIndex((m) => urlAuthority(m.url) === a);
      if (i >= 0) return { host, tls: reg.mirrors[i], where: `registries."${host}".mirrors[${i}]`, isServer: false, reg };
    }
    for (const [host, reg] of Object.entries(registries)) {
      if (reg.server && urlAuthority(reg.server) === a) return { host, tls: reg, where: `registries."${host}"`, isServer: true, reg };
    }
  }
  const host = imageRegistryHost(image);
  const reg = registries[host];
  if (reg && (!a || a === host)) return { host, tls: reg, where: `registries."${host}"`, isServer: true, reg };
  return null;
}

/** containerd's message minus the gRPC method prefix and the "failed to pull and unpack image" preamble. */
export function pullErrorDetail(raw: string): string {
  return raw
    .replace(/^\/runtime\.[^:]+:\s*[A-Z_]+:\s*/, '')
    .replace(/^failed to pull and unpack image "[^"]*":\s*/, '')
    .replace(/^failed to resolve (?:reference "[^"]*"|image):\s*/, '')
    .trim();
}

const RE = {
  caUnknown: /x509: certificate signed by unknown authority|x509: certificate is not trusted/,
  certName: /x509: certificate is (?:valid for .*, not|not valid for any names)/,
  certExpired: /x509: certificate has expired or is not yet valid/,
  clientCert:
    /remote error: tls: (?:bad certificate|certificate required|unknown certificate authority|handshake failure|unknown certificate)|tls: client didn't provide a certificate/,
  plainHttp: /server gave HTTP response to HTTPS client|tls: first record does not look like a TLS handshake/,
  unauthorized: /\b401 Unauthorized\b|no basic auth credentials|authorization failed|pull access denied/,
  forbidden: /\b403 Forbidden\b/,
  notFound: /: not found$|\b404 Not Found\b|manifest unknown/,
  dns: /\blookup \S+(?: on \S+)?: (?:no such host|server misbehaving|i\/o timeout)|dial tcp: lookup /,
  refused: /connect: connection refused|connect: no route to host|connect: network is unreachable|connection reset by peer/,
  timeout: /i\/o timeout|context deadline exceeded|DEADLINE_EXCEEDED|Client\.Timeout exceeded/,
};

function base(f: string | null): string {
  return f ? path.basename(f) : '';
}

/** Classifies one failed pull; `registries` is what hoist configured (or would configure) on the host. */
export function diagnosePull(image: string, raw: string, registries: Record<string, RegistryConfig> = {}): PullDiagnosis {
  const detail = pullErrorDetail(raw);
  const endpoint = errorEndpoint(detail);
  const owner = ownerOf(endpoint, image, registries);
  const at = endpoint ?? imageRegistryHost(image);
  const where = owner?.where ?? `registries."${imageRegistryHost(image)}"`;
  const d = (problem: PullProblem, message: string): PullDiagnosis => ({ problem, endpoint, registry: owner?.host ?? null, message, detail });

  if (RE.caUnknown.test(detail)) {
    const ca = owner?.tls.ca;
    return d(
      'ca-not-trusted',
      ca
        ? `CA not trusted: the certificate of ${at} is not signed by the configured CA (${where}.ca = ${base(ca)}); give the CA that issued the registry's certificate`
        : `CA not trusted: the certificate of ${at} is signed by a CA this host does not trust; set ${where}.ca to that CA's certificate`,
    );
  }
  if (RE.certName.test(detail))
    return d(
      'certificate-name',
      `certificate name mismatch: the certificate of ${at} does not name the host being contacted; use the name the certificate was issued for`,
    );
  if (RE.certExpired.test(detail))
    return d('certificate-expired', `certificate expired or not yet valid at ${at} (check the registry's certificate and this host's clock)`);
  if (RE.clientCert.test(detail)) {
    const cert = owner?.tls.clientCert;
    return d(
      'client-certificate',
      cert
        ? `client certificate rejected or missing: ${at} refused the configured client certificate (${where}.client_cert = ${base(cert)}); it must be issued by a CA the registry trusts for clients`
        : `client certificate rejected or missing: ${at} requires a client certificate (mutual TLS) and none is configured; set ${where}.client_cert and client_key`,
    );
  }
  if (RE.plainHttp.test(detail)) {
    const reg = owner ? `registries."${owner.host}"` : where;
    return d(
      'plain-http',
      `registry speaks plain HTTP: ${at} answered the TLS handshake with HTTP; if that registry is meant to be used without TLS, set ${reg}.insecure_http = true (or an http:// mirror URL)`,
    );
  }
  if (RE.forbidden.test(detail)) return d('forbidden', `access forbidden: ${at} refused this user access to ${image} (403); check the account's permissions`);
  if (RE.unauthorized.test(detail)) {
    // Credentials only reach the registry's own server; a mirror that asks for them gets none.
    const configured = owner?.isServer && owner.reg.auth;
    return d(
      'credentials',
      configured
        ? `credentials rejected or missing: ${at} refused the configured credentials (${where}.username/password or auth); check them`
        : owner && !owner.isServer
          ? `credentials rejected or missing: mirror ${at} asks for credentials, which hoist sends only to the registry's own server; allow anonymous pulls on the mirror`
          : `credentials rejected or missing: ${at} requires authentication and none is configured; set ${where}.username and password (or auth)`,
    );
  }
  if (RE.notFound.test(detail)) return d('not-found', `image not found: ${image} does not exist at ${at} (check the repository name and tag)`);
  if (RE.dns.test(detail)) {
    const name = /lookup (\S+?)(?: on |: )/.exec(detail)?.[1] ?? at;
    return d(
      'name-resolution',
      `cannot resolve ${name}: this host has no DNS or /etc/hosts entry for it${owner ? '' : ' (no mirror configured for this registry)'}`,
    );
  }
  if (RE.refused.test(detail)) return d('unreachable', `registry unreachable: ${at} refused or dropped the connection (is it running and listening there?)`);
  if (RE.timeout.test(detail)) return d('timeout', `timed out talking to ${at}`);
  return d('other', detail.split('\n')[0]);
}

/** The line verify prints for a failed pull: diagnosis first, containerd's own words after. */
export function formatPullFailure(image: string, dx: PullDiagnosis): string {
  return dx.problem === 'other' ? `pull ${image}: ${dx.detail}` : `pull ${image}: ${dx.message} (containerd: ${dx.detail})`;
}
