import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { basename, join } from 'node:path';
import { aptEnv, upstreamVersion } from './debian.js';
import { CACHE_DIR } from './paths.js';
import { $, log, pruneStale, sha256Hex } from './sh.js';
import { reproducibleTarGz } from './tarball.js';
import {
  CNI_CONFLIST,
  CRICTL_YAML,
  CRI_DEPRECATED_TXT,
  clearSigned,
  clusterVersionFile,
  compareVersions,
  containerdUnit,
  versionAtLeast,
} from './upstream-files.js';

export interface MirrorRelease {
  containerd: string;
  line: string;
  kind: 'bundle' | 'components';
  runc: string;
  cni: string;
}

/** Oldest first; "nearest suite" below means nearest in this order. */
export const MIRROR_SUITES = ['bullseye', 'bookworm', 'trixie', 'sid'];
const PACKAGES = ['containerd', 'runc', 'containernetworking-plugins'] as const;
type Pkg = (typeof PACKAGES)[number];
const MIRROR_VERSION = 2;

export const RELEASES_JSON = 'releases.json';

interface Unpacked {
  version: string; // upstream numeric core
  debianVersion: string;
  root: string; // dpkg-deb -x target
}

interface SuiteContent {
  suite: string;
  pkgs: Partial<Record<Pkg, Unpacked>>;
}

function mirrorKey(): string {
  return sha256Hex(
    JSON.stringify({
      MIRROR_SUITES,
      PACKAGES,
      MIRROR_VERSION,
      units: ['1.4.0', '1.6.0', '1.7.0', '2.0.0'].map(containerdUnit),
      CRICTL_YAML,
      CNI_CONFLIST,
      CRI_DEPRECATED_TXT,
    }),
  ).slice(0, 16);
}

export function mirrorDir(): string {
  return join(CACHE_DIR, `mirror-${mirrorKey()}`);
}

export function readReleases(dir: string): MirrorRelease[] {
  return JSON.parse(readFileSync(join(dir, RELEASES_JSON), 'utf8')) as MirrorRelease[];
}

export async function ensureMirror(): Promise<{ dir: string; releases: MirrorRelease[] }> {
  const dir = mirrorDir();
  if (existsSync(join(dir, RELEASES_JSON))) return { dir, releases: readReleases(dir) };
  const t0 = Date.now();
  log('building release mirror from Debian packages…');
  const work = `${dir}.work`;
  const tmp = `${dir}.tmp`;
  rmSync(work, { recursive: true, force: true });
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });

  const suites = (await Promise.all(MIRROR_SUITES.map((s) => fetchSuite(s, join(work, s))))).filter((s): s is SuiteContent => s !== undefined);
  if (!suites.some((s) => s.pkgs.containerd)) throw new Error('no suite offered containerd; cannot build the release mirror');

  const releases: MirrorRelease[] = [];
  const published = { runc: new Set<string>(), cni: new Set<string>() };
  for (const [i, s] of suites.entries()) {
    const cd = s.pkgs.containerd;
    if (!cd) continue;
    if (releases.some((r) => r.containerd === cd.version)) continue;
    const runc = nearest(suites, i, 'runc');
    const cni = nearest(suites, i, 'containernetworking-plugins');
    if (!runc || !cni) throw new Error(`no runc or CNI plugins anywhere to pair with containerd ${cd.version}`);
    const major2 = versionAtLeast(cd.version, '2.0.0');
    await publishContainerdTarball(tmp, cd, join(work, 'stage'));
    if (!major2) await publishCriBundle(tmp, cd, runc, cni, join(work, 'stage'));
    releases.push({
      containerd: cd.version,
      line: cd.version.split('.').slice(0, 2).join('.'),
      kind: major2 ? 'components' : 'bundle',
      runc: runc.version,
      cni: cni.version,
    });
  }
  // runc and CNI assets for every version seen, so 1.x can also be installed component-wise.
  for (const s of suites) {
    const runc = s.pkgs.runc;
    if (runc && !published.runc.has(runc.version)) {
      published.runc.add(runc.version);
      await publishRunc(tmp, s.suite, runc, join(work, s.suite));
    }
    const cni = s.pkgs['containernetworking-plugins'];
    if (cni && !published.cni.has(cni.version)) {
      published.cni.add(cni.version);
      await publishCni(tmp, cni, join(work, 'stage'));
    }
  }
  releases.sort((a, b) => compareVersions(a.containerd, b.containerd));
  writeFileSync(join(tmp, RELEASES_JSON), `${JSON.stringify(releases, null, 2)}\n`);
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  rmSync(work, { recursive: true, force: true });
  pruneStale(CACHE_DIR, 'mirror', dir);
  log(
    `release mirror ready in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${releases.map((r) => `${r.containerd}(${r.kind}, runc ${r.runc}, cni ${r.cni})`).join(', ')}`,
  );
  return { dir, releases };
}

function nearest(suites: SuiteContent[], i: number, pkg: Pkg): Unpacked | undefined {
  for (let d = 0; d < suites.length; d++) {
    for (const j of [i - d, i + d]) {
      const u = suites[j]?.pkgs[pkg];
      if (u) return u;
    }
  }
  return undefined;
}

async function fetchSuite(suite: string, dir: string): Promise<SuiteContent | undefined> {
  const env = aptEnv(suite);
  const upd = await env.run('apt-get', ['update'], { nothrow: true });
  if (!upd.ok || /^(W|E): .*(Failed to fetch|not signed|NO_PUBKEY|EXPKEYSIG)/m.test(upd.stderr)) {
    log(`suite ${suite} not usable, skipped: ${upd.stderr.trim().split('\n').slice(-2).join(' ')}`);
    return undefined;
  }
  mkdirSync(join(dir, 'debs'), { recursive: true });
  const out: SuiteContent = { suite, pkgs: {} };
  for (const pkg of PACKAGES) {
    const r = await env.run('apt-get', ['download', pkg], { cwd: join(dir, 'debs'), nothrow: true });
    if (!r.ok) {
      log(`${suite}: ${pkg} not available`);
      continue;
    }
    const deb = readdirSync(join(dir, 'debs')).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
    if (!deb) continue;
    const debPath = join(dir, 'debs', deb);
    const debianVersion = (await $`dpkg-deb -f ${debPath} Version`).stdout.trim();
    const root = join(dir, pkg);
    await $`dpkg-deb -x ${debPath} ${root}`;
    out.pkgs[pkg] = { version: upstreamVersion(debianVersion), debianVersion, root };
  }
  log(`${suite}: ${PACKAGES.map((p) => `${p} ${out.pkgs[p]?.debianVersion ?? '-'}`).join(', ')}`);
  return out;
}

function checksumLine(file: string, name = basename(file)): string {
  return `${createHash('sha256').update(readFileSync(file)).digest('hex')}  ${name}\n`;
}

function freshDir(d: string): string {
  rmSync(d, { recursive: true, force: true });
  mkdirSync(d, { recursive: true });
  return d;
}

function install(src: string, dst: string, mode: number): void {
  mkdirSync(join(dst, '..'), { recursive: true });
  copyFileSync(src, dst);
  chmodSync(dst, mode);
}

/** containerd's own binaries from the Debian package (/usr/bin/containerd*, ctr). */
function containerdBinaries(cd: Unpacked): string[] {
  const bin = join(cd.root, 'usr/bin');
  const names = readdirSync(bin).filter((f) => f === 'ctr' || f.startsWith('containerd'));
  if (!names.includes('containerd') || !names.includes('ctr'))
    throw new Error(`containerd ${cd.debianVersion}: unexpected package layout (${names.join(' ')})`);
  return names.map((n) => join(bin, n));
}

function releaseDir(mirror: string, project: string, tag: string): string {
  const d = join(mirror, project, 'releases/download', tag);
  mkdirSync(d, { recursive: true });
  return d;
}

async function publishContainerdTarball(mirror: string, cd: Unpacked, stageRoot: string): Promise<void> {
  const stage = freshDir(join(stageRoot, `containerd-${cd.version}`));
  for (const b of containerdBinaries(cd)) install(b, join(stage, 'bin', basename(b)), 0o755);
  const name = `containerd-${cd.version}-linux-amd64.tar.gz`;
  const out = join(releaseDir(mirror, 'containerd/containerd', `v${cd.version}`), name);
  await reproducibleTarGz(stage, ['bin'], out);
  writeFileSync(`${out}.sha256sum`, checksumLine(out));
}

function runcBinary(runc: Unpacked): string {
  for (const p of ['usr/sbin/runc', 'usr/bin/runc']) if (existsSync(join(runc.root, p))) return join(runc.root, p);
  throw new Error(`runc ${runc.debianVersion}: no runc binary in package`);
}

function cniPlugins(cni: Unpacked): string[] {
  const d = join(cni.root, 'usr/lib/cni');
  if (!existsSync(d)) throw new Error(`containernetworking-plugins ${cni.debianVersion}: no /usr/lib/cni`);
  return readdirSync(d).map((f) => join(d, f));
}

async function publishCriBundle(mirror: string, cd: Unpacked, runc: Unpacked, cni: Unpacked, stageRoot: string): Promise<void> {
  const stage = freshDir(join(stageRoot, `cri-containerd-cni-${cd.version}`));
  for (const b of containerdBinaries(cd)) install(b, join(stage, 'usr/local/bin', basename(b)), 0o755);
  install(runcBinary(runc), join(stage, 'usr/local/sbin/runc'), 0o755);
  for (const p of cniPlugins(cni)) install(p, join(stage, 'opt/cni/bin', basename(p)), 0o755);
  const files: [string, string][] = [
    ['etc/systemd/system/containerd.service', containerdUnit(cd.version)],
    ['etc/crictl.yaml', CRICTL_YAML],
    ['etc/cni/net.d/10-containerd-net.conflist', CNI_CONFLIST],
    ['opt/containerd/cluster/version', clusterVersionFile(cd.version)],
  ];
  const deprecated = versionAtLeast(cd.version, '1.6.22');
  if (deprecated) files.push(['cri-containerd.DEPRECATED.txt', CRI_DEPRECATED_TXT]);
  for (const [rel, text] of files) {
    mkdirSync(join(stage, rel, '..'), { recursive: true });
    writeFileSync(join(stage, rel), text, { mode: 0o644 });
    chmodSync(join(stage, rel), 0o644);
  }
  await $`find ${stage} -type d -exec chmod 755 {} +`;
  const name = `cri-containerd-cni-${cd.version}-linux-amd64.tar.gz`;
  const out = join(releaseDir(mirror, 'containerd/containerd', `v${cd.version}`), name);
  await reproducibleTarGz(stage, [...(deprecated ? ['cri-containerd.DEPRECATED.txt'] : []), 'etc', 'opt', 'usr'], out);
  writeFileSync(`${out}.sha256sum`, checksumLine(out));
}

/**
 * runc.amd64 plus, when Debian offers it, runc.arm64 — so runc.sha256sum has several lines like
 * upstream's and a client must pick its own architecture's line.
 */
async function publishRunc(mirror: string, suite: string, runc: Unpacked, suiteWork: string): Promise<void> {
  const dir = releaseDir(mirror, 'opencontainers/runc', `v${runc.version}`);
  install(runcBinary(runc), join(dir, 'runc.amd64'), 0o755);
  let body = checksumLine(join(dir, 'runc.amd64'));
  const arm = await fetchForeign(suite, 'runc', 'arm64', runc.debianVersion, join(suiteWork, 'runc-arm64'));
  if (arm) {
    install(runcBinary(arm), join(dir, 'runc.arm64'), 0o755);
    body += checksumLine(join(dir, 'runc.arm64'));
  }
  writeFileSync(join(dir, 'runc.sha256sum'), clearSigned(body));
}

async function fetchForeign(suite: string, pkg: string, arch: string, debianVersion: string, dir: string): Promise<Unpacked | undefined> {
  const env = aptEnv(suite, { architectures: ['amd64', arch] });
  if (!(await env.run('apt-get', ['update'], { nothrow: true })).ok) return undefined;
  mkdirSync(join(dir, 'debs'), { recursive: true });
  if (!(await env.run('apt-get', ['download', `${pkg}:${arch}=${debianVersion}`], { cwd: join(dir, 'debs'), nothrow: true })).ok) {
    log(`${suite}: ${pkg}:${arch} ${debianVersion} not available; runc.sha256sum lists amd64 only`);
    return undefined;
  }
  const deb = readdirSync(join(dir, 'debs')).find((f) => f.endsWith('.deb'));
  if (!deb) return undefined;
  await $`dpkg-deb -x ${join(dir, 'debs', deb)} ${join(dir, 'root')}`;
  return { version: upstreamVersion(debianVersion), debianVersion, root: join(dir, 'root') };
}

async function publishCni(mirror: string, cni: Unpacked, stageRoot: string): Promise<void> {
  const stage = freshDir(join(stageRoot, `cni-${cni.version}`));
  for (const p of cniPlugins(cni)) install(p, join(stage, basename(p)), 0o755);
  chmodSync(stage, 0o755);
  const name = `cni-plugins-linux-amd64-v${cni.version}.tgz`;
  const dir = releaseDir(mirror, 'containernetworking/plugins', `v${cni.version}`);
  const out = join(dir, name);
  await reproducibleTarGz(stage, ['.'], out);
  writeFileSync(`${out}.sha256`, checksumLine(out));
  writeFileSync(`${out}.sha512`, `${createHash('sha512').update(readFileSync(out)).digest('hex')}  ${name}\n`);
}
