import { closeSync, constants, fstatSync, openSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createRequire, Module } from 'node:module';
import path from 'node:path';
import vm from 'node:vm';
import { cacheHome } from '../util/cache-home.js';
import { sha256 } from '../util/hash.js';
import { alive, makePrivateDir, privateTreeProblem, writePrivateFile } from '../util/private-dir.js';

/**
 * The CLI is one CommonJS bundle (dist/hoist-cli.cjs, scripts/bundle.mjs) that the entry runs through
 * vm.Script with V8's code cache: compiling hoist's 2 MB of JavaScript was a third of a no-op's
 * controller CPU, and Node 20 caches no compiled code of its own (module.enableCompileCache came with
 * Node 22). The cache is written once per build, Node and V8 flags, after a run that worked on hosts:
 * it then holds every function such a run compiles, not only the top level.
 *
 * It lives in $XDG_CACHE_HOME/hoist/code (default ~/.cache/hoist/code), a directory of the user's own
 * that no one else can write: V8 runs what the cache holds, so a cache someone else could write is
 * code someone else chose. A directory or file that isn't private is neither read nor written, and
 * hoist creates its directories only below a directory the user owns (`sudo -E hoist` must not leave
 * root's directories in the invoking user's home). V8 checks little of a cache it is given (the
 * source's length, its own version and flags; a damaged one can crash it), so each file carries the
 * SHA-256 of its payload and is named for the bundle's path, build and file. Nothing here fails a run: a
 * missing, refused or damaged cache costs one compile, as without it.
 */

/** Set by a run that worked on hosts (commands.ts): `--help`, `hoist tasks` or an input error compile too little to be worth keeping. */
const KEEP = Symbol.for('hoist.codeCache.keep');
/** What became of the cache in this process (logged with the command line). */
const STATE = Symbol.for('hoist.codeCache.state');
/** A cache file: MAGIC, the payload's SHA-256 in hex, the payload V8 made. */
const MAGIC = Buffer.from('hoist-v8-cache-2\n');
const HEADER = MAGIC.length + 64;

export function keepCodeCache(): void {
  (globalThis as Record<symbol, unknown>)[KEEP] = true;
}

/** Undefined when hoist didn't start from the bundle (tests, tsx). */
export function codeCacheState(): CacheState | undefined {
  return (globalThis as Record<symbol, CacheState | undefined>)[STATE];
}

export type CacheState = 'off' | 'absent' | 'accepted' | 'rejected' | 'damaged' | 'refused';

export interface CodeCacheRun {
  /** The cache file this build, Node and flags use (undefined when off). */
  file?: string;
  /** What became of it on load: `refused` when its directory or the file isn't private (see `why`). */
  state: CacheState;
  why?: string;
  /** Writes the cache if the run is worth keeping and it wasn't taken; what the entry calls on exit. */
  save(): 'written' | 'kept' | 'skipped' | 'failed';
}

export function codeCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(cacheHome(env), 'hoist', 'code');
}

const short = (text: string) => sha256(text).slice(0, 8);

/** Where a cache's name says it came from: the installation (the bundle's path) and the copy there. */
interface CacheName {
  name: string;
  /** `<path>-`: every cache of this installation starts with it. */
  place: string;
  /** `<path>-<build>-<file>-v8-<version>-<arch>-`: this copy's caches under any flags. */
  copy: string;
}

/**
 * The cache's name: the bundle's path (two installations, or the package and the single executable,
 * keep a cache each), build id and file (size, time, inode: an edited or reinstalled bundle gets a
 * cache of its own), V8's version, the architecture and the flags V8 started with (a cache made under
 * other flags is refused by V8 and would be rewritten on every switch).
 */
function cacheName(buildId: string, bundle: string): CacheName {
  const st = statSync(bundle);
  const place = `${short(path.resolve(bundle))}-`;
  const copy = `${place}${buildId}-${short(`${st.size}:${st.mtimeMs}:${st.ino}`)}-v8-${process.versions.v8}-${process.arch}-`;
  return { name: `${copy}${short(JSON.stringify([process.execArgv, process.env.NODE_OPTIONS ?? '']))}.v8cache`, place, copy };
}

/** A cache no run has written for this long belongs to an installation that is gone, or is written again once. */
const UNUSED_MS = 30 * 24 * 3600 * 1000;

/** The payload of a private, intact cache file; `why` when it can't be used. */
function readPrivate(file: string): { data?: Buffer; why?: string; damaged?: boolean } {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? {} : { why: code === 'ELOOP' ? `${file} is a symbolic link` : `${file}: ${code}` };
  }
  try {
    const st = fstatSync(fd);
    const uid = process.getuid?.();
    if (!st.isFile()) return { why: `${file} is not a regular file` };
    if (uid !== undefined && st.uid !== uid) return { why: `${file} belongs to uid ${st.uid}, not to you (uid ${uid})` };
    if (st.mode & 0o022) return { why: `${file} is writable by others` };
    const all = readFileSync(fd);
    const data = all.subarray(HEADER);
    const intact = all.length > HEADER && all.subarray(0, MAGIC.length).equals(MAGIC) && sha256(data) === all.toString('latin1', MAGIC.length, HEADER);
    return intact ? { data } : { damaged: true };
  } finally {
    closeSync(fd);
  }
}

/**
 * Runs the CommonJS bundle `bundle` (its top level is the CLI) with the code cache of `dir` (default:
 * codeCacheDir()), and returns what became of the cache. `buildId` names the bundle's content
 * (scripts/bundle.mjs).
 */
export function runBundle(bundle: string, buildId: string, dir?: string): CodeCacheRun {
  let state: CacheState = 'absent';
  let why: string | undefined;
  let cachedData: Buffer | undefined;
  let where: { dir: string; file: string; named: CacheName } | undefined;
  if (process.env.HOIST_CODE_CACHE === '0') state = 'off';
  else {
    try {
      const d = dir ?? codeCacheDir();
      const named = cacheName(buildId, bundle);
      where = { dir: d, file: path.join(d, named.name), named };
      why = privateTreeProblem(d) ?? undefined;
      if (!why) {
        const r = readPrivate(where.file);
        ({ data: cachedData, why } = r);
        if (r.damaged) state = 'damaged';
      }
    } catch (e) {
      // No home directory, an unreadable parent: hoist runs, uncached.
      why = `the code cache: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
    }
    if (why) state = 'refused';
  }
  // Module.wrap: the same function CommonJS gives a file, so the bundle sees require, module and __dirname as usual.
  const script = new vm.Script(Module.wrap(readFileSync(bundle, 'utf8')), { filename: bundle, cachedData });
  if (cachedData) state = script.cachedDataRejected ? 'rejected' : 'accepted';
  const run: CodeCacheRun = {
    file: where?.file,
    state,
    why,
    save: () => {
      if ((globalThis as Record<symbol, unknown>)[KEEP] !== true || !where || state === 'off' || state === 'refused') return 'skipped';
      if (state === 'accepted') return 'kept';
      try {
        return write(where.dir, where.file, where.named, script.createCachedData()) ? 'written' : 'failed';
      } catch {
        return 'failed';
      }
    },
  };
  (globalThis as Record<symbol, CacheState | undefined>)[STATE] = state;
  const wrapper = script.runInThisContext() as (exports: unknown, require: NodeJS.Require, module: unknown, filename: string, dirname: string) => void;
  const mod = { exports: {}, filename: bundle, id: bundle, loaded: false };
  wrapper.call(mod.exports, mod.exports, createRequire(bundle), mod, bundle, path.dirname(bundle));
  mod.loaded = true;
  return run;
}

/**
 * Writes the cache atomically (writePrivateFile) into a private directory made only where hoist may
 * (makePrivateDir). Then removes, one by one and best effort, the
 * caches earlier copies of this installation made, other installations' caches unused for 30 days,
 * and what killed writers left.
 */
function write(dir: string, file: string, named: CacheName, data: Buffer): boolean {
  if (makePrivateDir(dir)) return false;
  writePrivateFile(file, [MAGIC, Buffer.from(sha256(data)), data]);
  const now = Date.now();
  for (const other of readdirSync(dir)) {
    const stale = /\.v8cache\.tmp-(\d+)-[0-9a-f]+$/.exec(other);
    let gone = stale !== null && !alive(Number(stale[1]));
    if (/^[0-9a-f]{8}-[0-9a-f]+-[0-9a-f]{8}-v8-.+\.v8cache$/.test(other) && !other.startsWith(named.copy))
      try {
        // This installation's earlier copies go (an upgrade, a reinstall); other installations' only once unused for long.
        gone = other.startsWith(named.place) || now - statSync(path.join(dir, other)).mtimeMs > UNUSED_MS;
      } catch {
        gone = false;
      }
    if (!gone) continue;
    try {
      rmSync(path.join(dir, other));
    } catch {
      // someone else's leftovers (a directory of that name, another owner's file) stay
    }
  }
  return true;
}
