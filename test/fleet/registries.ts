/**
 * Three real image registries for the fleet (Debian's docker-registry, the CNCF distribution
 * registry), as an operator would meet them:
 *   - mirror:  HTTPS with a certificate from the fleet's test CA, pre-filled with busybox under the
 *              upstream name library/busybox:1, so docker.io/library/busybox:1 resolves through it;
 *   - private: HTTPS on a non-default port, client certificates required (mTLS) and htpasswd basic auth;
 *   - plain:   plain HTTP (the "insecure registry" case).
 * Each runs once per host gateway address (a registry binds one address; never a wildcard), all
 * instances of one registry sharing its storage and access log. Hosts resolve the names through
 * /etc/hosts entries pointing at their own gateway (see hostsFileEntries). The test CA, keys and
 * the password are generated per fleet under the state dir and removed with it.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { REGISTRIES_DIR } from './paths.js';
import { $, log, waitFor } from './sh.js';

export const REGISTRY_BINARY = '/usr/bin/docker-registry';
const TOOLS: [string, string][] = [
  [REGISTRY_BINARY, 'docker-registry'],
  ['/usr/bin/skopeo', 'skopeo'],
  ['/usr/bin/htpasswd', 'apache2-utils'],
  ['/usr/bin/openssl', 'openssl'],
];

export type RegistryKind = 'mirror' | 'private' | 'plain';

interface Spec {
  kind: RegistryKind;
  name: string;
  port: number;
  tls: boolean;
  clientCerts: boolean;
  basicAuth: boolean;
  /** Repository:tag pushed into it: the fleet's busybox OCI image, or a pause-like image made from it. */
  images: string[];
}

/** Images pushed as the pause image: busybox with an entrypoint that keeps a pod sandbox running. */
const PAUSE_REPOS = new Set(['hoist/pause']);

export const REGISTRY_SPECS: Record<RegistryKind, Spec> = {
  mirror: { kind: 'mirror', name: 'mirror.fleet.test', port: 5443, tls: true, clientCerts: false, basicAuth: false, images: ['library/busybox:1'] },
  private: {
    kind: 'private',
    name: 'registry.fleet.test',
    port: 5000,
    tls: true,
    clientCerts: true,
    basicAuth: true,
    images: ['hoist/busybox:1', 'hoist/pause:1'],
  },
  plain: { kind: 'plain', name: 'plain.fleet.test', port: 5001, tls: false, clientCerts: false, basicAuth: false, images: ['hoist/busybox:1'] },
};

/** What a host's /etc/hosts needs so the registry names resolve to its own gateway. */
export function hostsFileEntries(gateway: string): string {
  return `${gateway} ${Object.values(REGISTRY_SPECS)
    .map((s) => s.name)
    .join(' ')}\n`;
}

export interface FleetRegistry {
  kind: RegistryKind;
  /** Registry host as written in image references and hoist's `registries` table: name:port. */
  host: string;
  /** Base URL hosts use: https://name:port or http://name:port. */
  url: string;
  /** Combined-format access log (client address first) of every instance of this registry. */
  accessLog: string;
  /** Images it serves, as full references through its own name. */
  images: string[];
}

export interface FleetPki {
  /** The fleet's test CA; signed every server and the valid client certificate. */
  ca: string;
  clientCert: string;
  clientKey: string;
  /** A CA that signed nothing the registries use: trusting it instead of `ca` must fail. */
  otherCa: string;
  /** A client certificate from otherCa: the private registry must refuse it. */
  otherClientCert: string;
  otherClientKey: string;
}

export interface FleetRegistries {
  mirror: FleetRegistry & { upstream: string };
  private: FleetRegistry & { username: string; password: string };
  plain: FleetRegistry;
  pki: FleetPki;
}

const PKI_DIR = join(REGISTRIES_DIR, 'pki');
const USERNAME = 'hoist';

function specDir(kind: RegistryKind): string {
  return join(REGISTRIES_DIR, kind);
}

function configPath(kind: RegistryKind, address: string): string {
  return join(specDir(kind), `config-${address}.yml`);
}

function pki(): FleetPki {
  const p = (f: string) => join(PKI_DIR, f);
  return {
    ca: p('ca.pem'),
    clientCert: p('client.pem'),
    clientKey: p('client.key'),
    otherCa: p('other-ca.pem'),
    otherClientCert: p('other-client.pem'),
    otherClientKey: p('other-client.key'),
  };
}

export function checkRegistryTools(): void {
  const missing = TOOLS.filter(([bin]) => !existsSync(bin)).map(([, pkg]) => pkg);
  if (missing.length) throw new Error(`fleet registries need Debian packages: apt-get install ${missing.join(' ')}`);
}

async function openssl(args: string[]): Promise<void> {
  await $({ cwd: PKI_DIR })`openssl ${args}`;
}

async function newCa(name: string, cn: string): Promise<void> {
  await openssl([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.pem`,
    '-days',
    '30',
    '-subj',
    `/CN=${cn}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
}

async function issue(ca: string, name: string, cn: string, ext: string[]): Promise<void> {
  const extFile = join(PKI_DIR, `${name}.ext`);
  writeFileSync(extFile, `${['basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment', ...ext].join('\n')}\n`);
  await openssl([
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
    '-subj',
    `/CN=${cn}`,
  ]);
  await openssl([
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.pem`,
    '-CAkey',
    `${ca}.key`,
    '-CAcreateserial',
    '-out',
    `${name}.pem`,
    '-days',
    '30',
    '-extfile',
    extFile,
  ]);
  rmSync(join(PKI_DIR, `${name}.csr`));
  chmodSync(join(PKI_DIR, `${name}.key`), 0o600);
}

/** CA, server certificates (SANs: the registry name and every gateway, for pushes from the controller) and client certificates. */
async function makePki(gateways: string[]): Promise<void> {
  rmSync(PKI_DIR, { recursive: true, force: true });
  mkdirSync(PKI_DIR, { recursive: true, mode: 0o700 });
  await newCa('ca', 'hoist fleet test CA');
  await newCa('other-ca', 'hoist fleet unrelated CA');
  const ips = gateways.map((g) => `IP:${g}`).join(',');
  for (const s of Object.values(REGISTRY_SPECS).filter((x) => x.tls)) {
    await issue('ca', s.kind, s.name, ['extendedKeyUsage=serverAuth', `subjectAltName=DNS:${s.name},${ips}`]);
  }
  await issue('ca', 'client', 'hoist fleet client', ['extendedKeyUsage=clientAuth']);
  await issue('other-ca', 'other-client', 'hoist fleet client', ['extendedKeyUsage=clientAuth']);
  for (const ca of ['ca', 'other-ca']) chmodSync(join(PKI_DIR, `${ca}.key`), 0o600);
}

function registryConfig(s: Spec, address: string, secret: string): string {
  const dir = specDir(s.kind);
  const lines = [
    'version: 0.1',
    'log:',
    '  level: info',
    '  formatter: text',
    '  accesslog:',
    '    disabled: false',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${JSON.stringify(join(dir, 'storage'))}`,
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: ${JSON.stringify(`${address}:${s.port}`)}`,
    // Every instance of one registry shares its storage; upload state is signed with this.
    `  secret: ${JSON.stringify(secret)}`,
  ];
  if (s.tls) {
    lines.push('  tls:', `    certificate: ${JSON.stringify(join(PKI_DIR, `${s.kind}.pem`))}`, `    key: ${JSON.stringify(join(PKI_DIR, `${s.kind}.key`))}`);
    if (s.clientCerts) lines.push('    clientcas:', `      - ${JSON.stringify(join(PKI_DIR, 'ca.pem'))}`);
  }
  if (s.basicAuth) lines.push('auth:', '  htpasswd:', '    realm: hoist-fleet', `    path: ${JSON.stringify(join(dir, 'htpasswd'))}`);
  return `${lines.join('\n')}\n`;
}

function tcpOpen(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: address, port });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(500, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

function processGone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-5).join('\n');
  } catch {
    return '';
  }
}

async function startInstance(s: Spec, address: string): Promise<void> {
  if (await tcpOpen(address, s.port)) return;
  const dir = specDir(s.kind);
  const logFile = join(dir, 'registry.log');
  const access = openSync(join(dir, 'access.log'), 'a');
  const errs = openSync(logFile, 'a');
  // The access log goes to stdout, everything else to stderr.
  const child = spawn(REGISTRY_BINARY, ['serve', configPath(s.kind, address)], {
    detached: true,
    stdio: ['ignore', access, errs],
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
  });
  closeSync(access);
  closeSync(errs);
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start the ${s.kind} registry on ${address}`);
  await waitFor(
    `the ${s.kind} registry on ${address}:${s.port}`,
    20_000,
    async () => {
      if (processGone(pid)) throw new Error(`${s.kind} registry on ${address}:${s.port} exited: ${tail(logFile)}`);
      return (await tcpOpen(address, s.port)) ? true : undefined;
    },
    50,
  );
}

function pushed(s: Spec, image: string): boolean {
  const [repo, tag] = image.split(':');
  return existsSync(join(specDir(s.kind), 'storage/docker/registry/v2/repositories', repo, '_manifests/tags', tag, 'current/link'));
}

/** skopeo's view of a registry: a cert dir (*.crt CAs, *.cert/*.key client pair) and an auth file. */
function skopeoArgs(s: Spec, address: string, password: string): string[] {
  if (!s.tls) return ['--dest-tls-verify=false'];
  const certDir = join(specDir(s.kind), 'skopeo-certs');
  mkdirSync(certDir, { recursive: true, mode: 0o700 });
  writeFileSync(join(certDir, 'ca.crt'), readFileSync(join(PKI_DIR, 'ca.pem')));
  if (s.clientCerts) {
    writeFileSync(join(certDir, 'client.cert'), readFileSync(join(PKI_DIR, 'client.pem')));
    writeFileSync(join(certDir, 'client.key'), readFileSync(join(PKI_DIR, 'client.key')), { mode: 0o600 });
  }
  const args = ['--dest-cert-dir', certDir];
  if (s.basicAuth) {
    const authFile = join(specDir(s.kind), 'skopeo-auth.json');
    const auth = Buffer.from(`${USERNAME}:${password}`).toString('base64');
    writeFileSync(authFile, JSON.stringify({ auths: { [`${address}:${s.port}`]: { auth } } }), { mode: 0o600 });
    args.push('--dest-authfile', authFile);
  }
  return args;
}

/**
 * An OCI layout of the busybox image whose process sleeps until killed, as a pod sandbox's pause
 * container must (busybox's own /bin/sh would exit at once without a terminal).
 */
export async function pauseLayout(ociImagePath: string): Promise<string> {
  const dir = join(REGISTRIES_DIR, 'pause-layout');
  if (existsSync(join(dir, 'index.json'))) return dir;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  await $`tar -xf ${ociImagePath} -C ${dir}`;
  const blob = (d: string) => join(dir, 'blobs/sha256', d.replace(/^sha256:/, ''));
  const put = (data: Buffer) => {
    const digest = createHash('sha256').update(data).digest('hex');
    writeFileSync(join(dir, 'blobs/sha256', digest), data);
    return { digest: `sha256:${digest}`, size: data.length };
  };
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string; mediaType: string; platform?: unknown }[] };
  const manifest = JSON.parse(readFileSync(blob(index.manifests[0].digest), 'utf8')) as { config: { digest: string; mediaType: string }; [k: string]: unknown };
  const config = JSON.parse(readFileSync(blob(manifest.config.digest), 'utf8')) as { config: Record<string, unknown>; [k: string]: unknown };
  config.config = { ...config.config, Entrypoint: ['/bin/busybox', 'sleep', '2147483647'], Cmd: [] };
  const newConfig = put(Buffer.from(JSON.stringify(config)));
  const newManifest = put(Buffer.from(JSON.stringify({ ...manifest, config: { ...manifest.config, ...newConfig } })));
  writeFileSync(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [{ mediaType: index.manifests[0].mediaType, ...newManifest, platform: index.manifests[0].platform }],
    }),
  );
  return dir;
}

async function prefill(s: Spec, address: string, ociImagePath: string, password: string): Promise<void> {
  for (const image of s.images) {
    if (pushed(s, image)) continue;
    const source = PAUSE_REPOS.has(image.split(':')[0]) ? `oci:${await pauseLayout(ociImagePath)}` : `oci-archive:${ociImagePath}`;
    await $`skopeo --insecure-policy copy --quiet ${skopeoArgs(s, address, password)} ${source} ${`docker://${address}:${s.port}/${image}`}`;
  }
}

function readPassword(): string {
  return readFileSync(join(specDir('private'), 'password'), 'utf8').trim();
}

/**
 * Start (or find running) the three registries on every gateway, pre-filled. Generates the PKI,
 * configs and password on first use after `up`; later calls only restart what is not listening.
 */
export async function startRegistries(gateways: string[], ociImagePath: string): Promise<FleetRegistries> {
  checkRegistryTools();
  const marker = join(REGISTRIES_DIR, 'ready.json');
  const fresh = !existsSync(marker) || readFileSync(marker, 'utf8') !== JSON.stringify(gateways);
  if (fresh) {
    const t0 = Date.now();
    // Registries of an earlier setup would keep serving old certificates from deleted storage.
    await stopRegistries();
    rmSync(REGISTRIES_DIR, { recursive: true, force: true });
    mkdirSync(REGISTRIES_DIR, { recursive: true, mode: 0o700 });
    await makePki(gateways);
    const secret = randomBytes(24).toString('hex');
    const password = randomBytes(18).toString('base64url');
    for (const s of Object.values(REGISTRY_SPECS)) {
      mkdirSync(join(specDir(s.kind), 'storage'), { recursive: true });
      for (const g of gateways) writeFileSync(configPath(s.kind, g), registryConfig(s, g, secret), { mode: 0o600 });
    }
    writeFileSync(join(specDir('private'), 'password'), `${password}\n`, { mode: 0o600 });
    // bcrypt (the only scheme the registry accepts), password on stdin so it is not in any argv.
    await $({ input: password })`htpasswd -B -i -c ${join(specDir('private'), 'htpasswd')} ${USERNAME}`;
    log(`registries: PKI and configs in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  const password = readPassword();
  await Promise.all(Object.values(REGISTRY_SPECS).flatMap((s) => gateways.map((g) => startInstance(s, g))));
  for (const s of Object.values(REGISTRY_SPECS)) await prefill(s, gateways[0], ociImagePath, password);
  writeFileSync(marker, JSON.stringify(gateways));
  const entry = (s: Spec): FleetRegistry => {
    const host = `${s.name}:${s.port}`;
    return {
      kind: s.kind,
      host,
      url: `${s.tls ? 'https' : 'http'}://${host}`,
      accessLog: join(specDir(s.kind), 'access.log'),
      images: s.images.map((i) => `${host}/${i}`),
    };
  };
  return {
    mirror: { ...entry(REGISTRY_SPECS.mirror), upstream: 'docker.io', images: REGISTRY_SPECS.mirror.images.map((i) => `docker.io/${i}`) },
    private: { ...entry(REGISTRY_SPECS.private), username: USERNAME, password },
    plain: entry(REGISTRY_SPECS.plain),
    pki: pki(),
  };
}

/** Command lines of registry processes that belong to this fleet (found by their config's location). */
export function isFleetRegistryProcess(cmdline: string): boolean {
  return cmdline.startsWith(`${REGISTRY_BINARY} serve `) && cmdline.includes(`${REGISTRIES_DIR}/`);
}

function registryPids(): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    let c = '';
    try {
      c = readFileSync(`/proc/${e}/cmdline`, 'utf8').replace(/\0/g, ' ');
    } catch {
      continue;
    }
    if (isFleetRegistryProcess(c)) out.push(Number(e));
  }
  return out;
}

/** Stop this fleet's registries (down does the same through its own process sweep). */
export async function stopRegistries(): Promise<void> {
  for (const pid of registryPids()) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
  await waitFor('the fleet registries to stop', 10_000, async () => (registryPids().every(processGone) ? true : undefined), 50);
}
