import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { codeCacheDir } from '../../src/cli/code-cache.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const RUN = path.join(here, 'fixtures', 'code-cache-run.ts');
let work: string;
let dir: string;
let bundle: string;

interface Outcome {
  state: string;
  why?: string;
  saved: string;
  file: string;
  ran: { sum: number; dir: string; file: string; exportsIsThis: boolean };
}

/** One start of hoist in a new process: only a new process shows whether V8 takes the cache on disk. */
function start(buildId: string, opts: { keep?: boolean; env?: NodeJS.ProcessEnv; into?: string; bundleFile?: string } = {}): Outcome {
  const out = execFileSync(
    process.execPath,
    ['--import', 'tsx', RUN, opts.bundleFile ?? bundle, buildId, opts.into ?? dir, opts.keep === false ? '' : 'keep'],
    {
      encoding: 'utf8',
      env: { ...process.env, HOIST_CODE_CACHE: '', ...opts.env },
    },
  );
  return JSON.parse(out) as Outcome;
}

beforeEach(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'hoist-code-cache-'));
  dir = path.join(work, 'cache', 'hoist', 'code');
  bundle = path.join(work, 'cli.cjs');
  // Enough functions that a cache is worth V8's while, and a result that shows the bundle ran.
  const body = Array.from({ length: 200 }, (_, i) => `function f${i}(x) { return x * ${i} + 1; }`).join('\n');
  writeFileSync(
    bundle,
    `${body}\nglobalThis.__codeCacheTest = { sum: f7(2) + f9(1), dir: require('node:path').basename(__dirname), file: __filename, exportsIsThis: this === module.exports };\n`,
  );
});
afterEach(() => rmSync(work, { recursive: true, force: true }));

test('the bundle runs as a CommonJS module: require, __dirname, __filename and this', () => {
  assert.deepEqual(start('aaaa').ran, { sum: 25, dir: path.basename(work), file: bundle, exportsIsThis: true });
});

test('a start that ran a command writes the cache, private; the next start is given it and V8 takes it', () => {
  const help = start('aaaa', { keep: false });
  assert.deepEqual([help.state, help.saved], ['absent', 'skipped'], 'no command ran (--help): too little compiled to keep');
  const first = start('aaaa');
  assert.deepEqual([first.state, first.saved], ['absent', 'written']);
  assert.equal(statSync(first.file).mode & 0o777, 0o600);
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  const again = start('aaaa');
  assert.deepEqual([again.state, again.saved], ['accepted', 'kept']);
  assert.equal(again.ran.sum, 25);
});

test('a damaged cache is never given to V8 (it can crash on one): compiled past and written again', () => {
  const first = start('bbbb');
  const bytes = readFileSync(first.file);
  bytes.fill(0, bytes.length >> 1);
  writeFileSync(first.file, bytes, { mode: 0o600 });
  const damaged = start('bbbb');
  assert.deepEqual([damaged.state, damaged.saved], ['damaged', 'written']);
  assert.equal(damaged.ran.sum, 25, 'the bundle still ran');
  assert.equal(start('bbbb').state, 'accepted');
});

test('an edited bundle under the same build id, of the same length, gets a cache of its own: the old code never runs', () => {
  const first = start('ffff');
  assert.equal(start('ffff').state, 'accepted');
  const source = readFileSync(bundle, 'utf8');
  writeFileSync(bundle, source.replace('f7(2) + f9(1)', 'f7(3) + f9(1)'));
  const edited = start('ffff');
  assert.notEqual(edited.file, first.file);
  assert.deepEqual([edited.state, edited.ran.sum], ['absent', 7 * 3 + 1 + 9 + 1]);
});

test('a cache directory others can write, or a cache file that is a symlink, is neither read nor written', () => {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o777);
  const open = start('cccc');
  assert.deepEqual([open.state, open.saved], ['refused', 'skipped']);
  assert.match(open.why ?? '', /writable by others/);
  assert.deepEqual(readdirSync(dir), []);

  chmodSync(dir, 0o700);
  const planted = path.join(work, 'planted.v8cache');
  writeFileSync(planted, 'x', { mode: 0o600 });
  symlinkSync(planted, path.join(dir, path.basename(open.file)));
  const linked = start('cccc');
  assert.deepEqual([linked.state, linked.saved], ['refused', 'skipped']);
  assert.match(linked.why ?? '', /symbolic link/);
});

test('a code directory that is a symlink is neither read nor written', () => {
  const elsewhere = path.join(work, 'elsewhere');
  mkdirSync(elsewhere, { mode: 0o700 });
  mkdirSync(path.dirname(dir), { recursive: true, mode: 0o700 });
  symlinkSync(elsewhere, dir);
  const r = start('abab');
  assert.deepEqual([r.state, r.saved], ['refused', 'skipped']);
  assert.match(r.why ?? '', /symbolic link/);
  assert.deepEqual(readdirSync(elsewhere), []);
});

test(
  "no directory is created below someone else's (sudo -E keeps the invoking user's home): no cache, and the run goes on",
  { skip: process.getuid?.() !== 0 && 'needs root to hand a directory to another user' },
  () => {
    const theirs = path.join(work, 'theirs');
    mkdirSync(theirs, { mode: 0o755 });
    chownSync(theirs, 65534, 65534);
    const into = path.join(theirs, '.cache', 'hoist', 'code');
    const r = start('cdcd', { into });
    assert.deepEqual([r.state, r.saved, r.ran.sum], ['absent', 'failed', 25]);
    assert.deepEqual(readdirSync(theirs), []);
  },
);

test('a cache file writable by others is refused', () => {
  const first = start('dddd');
  chmodSync(first.file, 0o666);
  const r = start('dddd');
  assert.equal(r.state, 'refused');
  assert.match(r.why ?? '', /writable by others/);
});

test("an upgrade in place replaces the old build's cache; other installations', live writers' and others' files stay", () => {
  const old = start('1111');
  const dead = `${old.file}.tmp-999999999-abcd`;
  writeFileSync(dead, 'partial');
  const live = `${old.file}.tmp-${process.pid}-abcd`;
  writeFileSync(live, 'being written');
  writeFileSync(path.join(dir, 'notes.txt'), 'mine');
  // Another installation (another bundle path) of the same Node, and a cache of another Node here.
  const elsewhere = path.join(work, 'other-install.cjs');
  writeFileSync(elsewhere, readFileSync(bundle));
  const other = start('9999', { bundleFile: elsewhere });
  const otherNode = path.basename(old.file).replace(/-v8-[^-]+(-node\.\d+)?-/, '-v8-1.2.3.4-');
  writeFileSync(path.join(dir, otherNode), 'x', { mode: 0o600 });
  const current = start('2222');
  assert.equal(current.saved, 'written');
  assert.deepEqual(
    readdirSync(dir).sort(),
    [path.basename(current.file), path.basename(other.file), path.basename(live), 'notes.txt'].sort(),
    "gone: the same installation's earlier build (under any Node) and the dead writer's leftover",
  );
  assert.equal(readFileSync(path.join(dir, 'notes.txt'), 'utf8'), 'mine');
});

test("another installation's cache goes only once no run wrote it for 30 days", () => {
  const elsewhere = path.join(work, 'other-install.cjs');
  writeFileSync(elsewhere, readFileSync(bundle));
  const other = start('9999', { bundleFile: elsewhere });
  const month = new Date(Date.now() - 31 * 24 * 3600 * 1000);
  utimesSync(other.file, month, month);
  start('2222');
  assert.throws(() => statSync(other.file), /ENOENT/);
});

test("a reinstalled copy of the same build replaces the old copy's cache; the same copy's cache under other flags stays", () => {
  const first = start('3333');
  const flagged = start('3333', { env: { NODE_OPTIONS: '--max-old-space-size=512' } });
  assert.notEqual(flagged.file, first.file);
  assert.deepEqual(readdirSync(dir).sort(), [path.basename(first.file), path.basename(flagged.file)].sort());
  // A reinstall: the same build id, a new file.
  const copy = `${bundle}.new`;
  writeFileSync(copy, readFileSync(bundle));
  rmSync(bundle);
  renameSync(copy, bundle);
  const reinstalled = start('3333');
  assert.equal(reinstalled.saved, 'written');
  assert.deepEqual(readdirSync(dir), [path.basename(reinstalled.file)]);
});

test('HOIST_CODE_CACHE=0 turns it off: nothing read, nothing written', () => {
  const r = start('eeee', { env: { HOIST_CODE_CACHE: '0' } });
  assert.deepEqual([r.state, r.saved], ['off', 'skipped']);
  assert.throws(() => statSync(dir), /ENOENT/);
  // A damaged cache where it would be read: off means it isn't even opened.
  const made = start('eeee');
  writeFileSync(made.file, 'damaged', { mode: 0o600 });
  assert.equal(start('eeee', { env: { HOIST_CODE_CACHE: '0' } }).state, 'off');
  assert.equal(start('eeee').state, 'damaged');
});

test("the cache directory follows XDG_CACHE_HOME when it is absolute, else ~/.cache (a relative one would be the current directory's)", () => {
  assert.equal(codeCacheDir({ XDG_CACHE_HOME: '/x/y' }), '/x/y/hoist/code');
  assert.equal(codeCacheDir({}), path.join(os.homedir(), '.cache', 'hoist', 'code'));
  assert.equal(codeCacheDir({ XDG_CACHE_HOME: '.cache' }), path.join(os.homedir(), '.cache', 'hoist', 'code'));
});
