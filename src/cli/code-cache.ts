import { closeSync, constants, fstatSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire, Module } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import vm from 'node:vm';
import { alive, MISSING, notPrivate } from '../util/private-dir.js';

/**
 * The CLI is one CommonJS bundle (dist/hoist-cli.cjs, scripts/bundle.mjs) that the entry runs through
 * vm.Script with V8's code cache: compiling hoist's 2 MB of JavaScript was a third of a no-op's
 * controller CPU, and Node 20 caches no compiled code of its own (module.enableCompileCache came with
 * Node 22). The cache is written once per build, Node and V8 flags, by the first run of a command,
 * after that command ran: it then holds every function the run compiled, not only the top level.
 *
 * It lives in $XDG_CACHE_HOME/hoist/code (default ~/.cache/hoist/code), a directory of the user's own
 * that no one else can write: V8 runs what the cache holds, so a cache someone else could write is
 * code someone else chose. A directory or file that isn't private is neither read nor written. V8
 * itself refuses a cache made by another V8, other flags or another source; a refused or missing
 * cache costs one compile, as without it. Nothing here ever fails a run.
 */

/** Set by a command that ran (commands.ts): `--help` or a usage error compile too little to be worth caching. */
const KEEP = Symbol.for('hoist.codeCache.keep');

export function keepCodeCache(): void {
  (globalThis as Record<symbol, unknown>)[KEEP] = true;
}

/** What became of the cache in this process (logged with the command line); undefined when hoist didn't start from the bundle. */
const STATE = Symbol.for('hoist.codeCache.state');

export function codeCacheState(): CacheState | undefined {
  return (globalThis as Record<symbol, CacheState | undefined>)[STATE];
}

export type CacheState = 'off' | 'absent' | 'accepted' | 'rejected' | 'refused';

export interface CodeCacheRun {
  /** The cache file this build, Node and flags use. */
  file: string;
  /** What became of it on load: `refused` when its directory or the file isn't private (see `why`). */
  state: CacheState;
  why?: string;
  /** Writes the cache now if the run is worth keeping and it was absent or rejected; what the entry calls on exit. */
  save(): 'written' | 'kept' | 'skipped' | 'failed';
}

export function codeCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'hoist', 'code');
}

/**
 * The cache's name: the bundle's build id, V8's version, the architecture and the flags V8 was
 * started with (a cache made under other flags is refused by V8 and would be rewritten on every switch).
 */
function cacheName(buildId: string): { name: string; node: string } {
  const flags = fnv1a(JSON.stringify([process.execArgv, process.env.NODE_OPTIONS ?? '']));
  const node = `-v8-${process.versions.v8}-${process.arch}-`;
  return { name: `${buildId}${node}${flags}.v8cache`, node };
}

/** A short name for a string (node:crypto would cost the start-up more than the cache saves of it). */
function fnv1a(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}

/** The cache's bytes, or why they can't be used; a file that is a symlink, someone else's or writable by others is refused. */
function readPrivate(file: string): { data?: Buffer; why?: string } {
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
    return { data: readFileSync(fd) };
  } finally {
    closeSync(fd);
  }
}

/** Why the cache directory (or hoist's directory above it) can't hold code, or null; a missing one is fine. */
function dirProblem(dir: string): string | null {
  for (const d of [path.dirname(dir), dir]) {
    const p = notPrivate(d);
    if (p === MISSING) return null;
    if (p !== null) return `${d} ${p}`;
  }
  return null;
}

/**
 * Runs the CommonJS bundle `bundle` (its top level is the CLI) with the code cache of `dir`, and
 * returns what became of the cache. `buildId` names the bundle's content (scripts/bundle.mjs).
 */
export function runBundle(bundle: string, buildId: string, dir: string = codeCacheDir()): CodeCacheRun {
  const { name, node } = cacheName(buildId);
  const file = path.join(dir, name);
  let state: CacheState = 'absent';
  let why: string | undefined;
  let cachedData: Buffer | undefined;
  if (process.env.HOIST_CODE_CACHE === '0') state = 'off';
  else {
    try {
      why = dirProblem(dir) ?? undefined;
      if (!why) ({ data: cachedData, why } = readPrivate(file));
    } catch (e) {
      why = `${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
    }
    if (why) state = 'refused';
  }
  // Module.wrap: the same function CommonJS gives a file, so the bundle sees require, module and __dirname as usual.
  const script = new vm.Script(Module.wrap(readFileSync(bundle, 'utf8')), { filename: bundle, cachedData });
  if (cachedData) state = script.cachedDataRejected ? 'rejected' : 'accepted';
  const run: CodeCacheRun = {
    file,
    state,
    why,
    save: () => {
      if ((globalThis as Record<symbol, unknown>)[KEEP] !== true || state === 'off' || state === 'refused') return 'skipped';
      if (state === 'accepted') return 'kept';
      return write(dir, file, buildId, node, script.createCachedData()) ? 'written' : 'failed';
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
 * Writes the cache atomically (a private temporary file renamed into place: a killed run leaves no
 * half cache, two runs at once each write a whole one) and removes the caches other builds made with
 * the same Node, and what killed writers left. A failure only means the next run compiles again.
 */
function write(dir: string, file: string, buildId: string, node: string, data: Buffer): boolean {
  // Created exclusively (wx): a name someone guessed makes the write fail, never write through their file.
  const tmp = `${file}.tmp-${process.pid}-${Math.floor(Math.random() * 0xffffffff).toString(16)}`;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (dirProblem(dir)) return false;
    writeFileSync(tmp, data, { mode: 0o600, flag: 'wx' });
    renameSync(tmp, file);
    for (const other of readdirSync(dir)) {
      const earlier = other.endsWith('.v8cache') && other.includes(node) && !other.startsWith(`${buildId}-`) && /^[0-9a-f]+-v8-/.test(other);
      const stale = /\.v8cache\.tmp-(\d+)-[0-9a-f]+$/.exec(other);
      if (earlier || (stale && !alive(Number(stale[1])))) rmSync(path.join(dir, other), { force: true });
    }
    return true;
  } catch {
    rmSync(tmp, { force: true });
    return false;
  }
}
