import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { InputError, InternalError } from './util/errors.js';
import { printable } from './util/printable.js';
import { alive, makePrivateDir, MISSING, notPrivate } from './util/private-dir.js';
import { cacheHome } from './util/cache-home.js';

/**
 * The single executable (`npm run sea`, scripts/sea.mjs) carries package.json, templates/ and
 * playbooks/ as assets of its blob. hoist reads them as files (nunjucks loads templates by path,
 * playbooks are TOML files an operator may open), so the executable writes them once to a
 * directory named for their content, $XDG_CACHE_HOME/hoist/sea/<id> (default ~/.cache/hoist/sea),
 * and that directory is the package root. A second run, or another executable of the same
 * release, finds it complete and writes nothing.
 */

/** The manifest asset: an id for the set of files, and their paths relative to the package root. */
export const SEA_MANIFEST = 'hoist-files.json';
export interface SeaManifest {
  id: string;
  files: string[];
}

/** The part of node:sea hoist uses (node:sea has no types of its own in older @types/node). */
interface SeaApi {
  isSea(): boolean;
  getAsset(key: string, encoding: string): string;
  getAsset(key: string): ArrayBuffer;
}

/** The package root of the running single executable, or undefined when hoist runs as a package. */
export function seaPackageRoot(): string | undefined {
  // getBuiltinModule exists from Node 20.16; every executable is built on a later one, and an older
  // Node running the package has no node:sea to find.
  const sea = (process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule?.('node:sea') as SeaApi | undefined;
  if (!sea?.isSea()) return undefined;
  const manifest = JSON.parse(sea.getAsset(SEA_MANIFEST, 'utf8')) as SeaManifest;
  const fromEnv = Boolean(process.env.XDG_CACHE_HOME && path.isAbsolute(process.env.XDG_CACHE_HOME));
  const dir = path.join(cacheHome(), 'hoist', 'sea', manifest.id);
  try {
    return unpack(dir, manifest, (f) => new Uint8Array(sea.getAsset(f)));
  } catch (e) {
    // Nothing has run yet (no command, no host touched): say where and why, and stop.
    const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    process.stderr.write(
      printable(
        `hoist: can't write its templates and playbooks to ${dir} (${fromEnv ? 'from XDG_CACHE_HOME' : 'the default, ~/.cache'}): ${why}; set XDG_CACHE_HOME to a directory you can write`,
      ) + '\n',
    );
    process.exit(1);
  }
}

/**
 * Writes the files into `dir` unless it is there already. They are written beside it first and the
 * whole directory renamed into place: a run killed half-way leaves no partial root that a later run
 * would trust; two runs at once each write their own and the first rename wins. The directory and
 * the two above it must be the user's own and writable by no one else: hoist loads code from it
 * (undici) and pushes its templates to hosts as root, so a copy someone else made in a shared cache,
 * or a symlink to one, is refused rather than used.
 */
export function unpack(dir: string, manifest: SeaManifest, read: (file: string) => Uint8Array): string {
  const parent = path.dirname(dir);
  const problem = makePrivateDir(parent);
  if (problem) throw new InputError(problem);
  const existing = notPrivate(dir);
  if (existing === null) return dir;
  if (existing !== MISSING) throw new InputError(`${dir} ${existing}`);
  sweepStale(parent, path.basename(dir));
  // An unguessable name, made 0700 by this process: nothing can be planted in it while it fills.
  const tmp = mkdtempSync(`${dir}.tmp-${process.pid}-`);
  try {
    for (const f of manifest.files) {
      const to = path.join(tmp, f);
      if (path.relative(tmp, to).startsWith('..')) throw new InternalError(`single executable: asset path ${JSON.stringify(f)} leaves the package root`);
      mkdirSync(path.dirname(to), { recursive: true });
      writeFileSync(to, read(f));
    }
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  try {
    renameSync(tmp, dir);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    // Another run put the same files there first.
    if (notPrivate(dir) !== null) throw e;
  }
  return dir;
}

/** Partial copies a killed run left (`<id>.tmp-<pid>` whose process is gone); only hoist's own names. */
function sweepStale(parent: string, id: string): void {
  for (const name of readdirSync(parent)) {
    const m = /^(.+)\.tmp-(\d+)(?:-[A-Za-z0-9]+)?$/.exec(name);
    if (!m || m[1] !== id || alive(Number(m[2]))) continue;
    rmSync(path.join(parent, name), { recursive: true, force: true });
  }
}
