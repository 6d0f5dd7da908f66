import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BaseImage } from './base-image.js';
import { BASE_SUITE } from './base-image.js';
import { aptEnv } from './debian.js';
import { CACHE_DIR } from './paths.js';
import { $, log, pruneStale, sha256Hex } from './sh.js';

/** Installed on demand by tests, with whatever they need beyond the base image. */
const INSTALLABLE = ['containerd', 'runc', 'tree'];
/** Already in the base image, but offered so `apt-get install libseccomp2` has a source. */
const ALSO_OFFERED = ['libseccomp2'];
const REPO_VERSION = 1;

/**
 * A flat apt repo (`deb [trusted=yes] http://…/apt ./`) holding the packages above and exactly the
 * dependencies a freshly booted base host lacks (resolved against the base image's dpkg status).
 */
export async function ensureAptRepo(base: BaseImage): Promise<string> {
  const hash = sha256Hex(JSON.stringify({ BASE_SUITE, INSTALLABLE, ALSO_OFFERED, REPO_VERSION, base: base.hash })).slice(0, 16);
  const dir = join(CACHE_DIR, `apt-${hash}`);
  if (existsSync(join(dir, 'Packages'))) return dir;
  const t0 = Date.now();
  log('building flat apt repo…');
  const tmp = `${dir}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(join(tmp, 'partial'), { recursive: true });
  const env = aptEnv(BASE_SUITE);
  await env.run('apt-get', ['update']);
  await env.run('apt-get', [
    '-o',
    `Dir::State::status=${base.statusFile}`,
    '-o',
    `Dir::Cache::archives=${tmp}/`,
    'install',
    '--download-only',
    '--no-install-recommends',
    '-y',
    ...INSTALLABLE,
  ]);
  await env.run('apt-get', ['download', ...ALSO_OFFERED], { cwd: tmp });
  rmSync(join(tmp, 'partial'), { recursive: true, force: true });
  rmSync(join(tmp, 'lock'), { force: true });
  const debs = readdirSync(tmp).filter((f) => f.endsWith('.deb'));
  for (const want of [...INSTALLABLE, ...ALSO_OFFERED]) {
    if (!debs.some((f) => f.startsWith(`${want}_`))) throw new Error(`apt repo: ${want} was not downloaded`);
  }
  await $({ cwd: tmp })`dpkg-scanpackages --multiversion . /dev/null > Packages`;
  await $({ cwd: tmp })`gzip -n -9 -k Packages`;
  writeFileSync(join(tmp, 'Release'), releaseFile(tmp, ['Packages', 'Packages.gz']));
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  pruneStale(CACHE_DIR, 'apt', dir);
  log(`apt repo ready (${debs.length} packages) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return dir;
}

function releaseFile(dir: string, files: string[]): string {
  const sums = (algo: 'md5' | 'sha256') =>
    files.map((f) => {
      const data = readFileSync(join(dir, f));
      return ` ${createHash(algo).update(data).digest('hex')} ${statSync(join(dir, f)).size} ${f}`;
    });
  return ['Origin: hoist-fleet', 'Label: hoist-fleet', `Date: ${new Date().toUTCString()}`, 'MD5Sum:', ...sums('md5'), 'SHA256:', ...sums('sha256'), ''].join(
    '\n',
  );
}
