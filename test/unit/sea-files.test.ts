import assert from 'node:assert/strict';
import { describe, it, before, after } from 'node:test';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { seaPackageRoot, unpack, type SeaManifest } from '../../src/sea-files.js';

const manifest: SeaManifest = { id: '0.1.0-abc', files: ['package.json', 'templates/a/b.njk', 'playbooks/p.toml'] };
const content = (f: string) => new TextEncoder().encode(`content of ${f}\n`);

describe('single executable files', () => {
  let dir: string;
  before(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'hoist-sea-unit-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a package run is not the single executable', () => {
    assert.equal(seaPackageRoot(), undefined);
  });

  it('writes every file under its package path, then finds them there without reading the assets again', () => {
    const root = path.join(dir, 'a', 'sea', manifest.id);
    assert.equal(unpack(root, manifest, content), root);
    for (const f of manifest.files) assert.equal(readFileSync(path.join(root, f), 'utf8'), `content of ${f}\n`);
    assert.deepEqual(readdirSync(path.dirname(root)), [manifest.id], 'nothing left beside it');
    let reads = 0;
    unpack(root, manifest, (f) => (reads++, content(f)));
    assert.equal(reads, 0);
  });

  it('a copy a killed run left half-written is removed and never taken for the root', () => {
    const parent = path.join(dir, 'b');
    const root = path.join(parent, manifest.id);
    // A pid no process has: spawn one and wait for it to end.
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    mkdirSync(path.join(parent, `${manifest.id}.tmp-${gone}`, 'templates'), { recursive: true });
    // Another id's leftovers and unrelated files are not hoist's to remove here.
    mkdirSync(path.join(parent, `other.tmp-${gone}`));
    writeFileSync(path.join(parent, 'notes.txt'), 'x');
    unpack(root, manifest, content);
    assert.deepEqual(readdirSync(parent).sort(), [manifest.id, 'notes.txt', `other.tmp-${gone}`]);
    assert.equal(readFileSync(path.join(root, 'playbooks/p.toml'), 'utf8'), 'content of playbooks/p.toml\n');
  });

  it('refuses an asset path that leaves the root, and leaves no root behind', () => {
    const root = path.join(dir, 'c', manifest.id);
    assert.throws(() => unpack(root, { id: 'x', files: ['templates/ok', '../escape'] }, content), /asset path "\.\.\/escape" leaves the package root/);
    assert.deepEqual(readdirSync(path.dirname(root)), []);
    assert.deepEqual(readdirSync(dir).includes('escape'), false);
  });

  it("refuses a copy it did not make: a symlink, another user's directory, one others can write", () => {
    const planted = path.join(dir, 'planted');
    mkdirSync(path.join(planted, 'node_modules', 'undici'), { recursive: true, mode: 0o700 });
    writeFileSync(path.join(planted, 'node_modules', 'undici', 'index.js'), 'process.exit(66)');
    const link = path.join(dir, 'd', 'sea', manifest.id);
    mkdirSync(path.dirname(link), { recursive: true, mode: 0o700 });
    symlinkSync(planted, link);
    assert.throws(() => unpack(link, manifest, content), /is a symbolic link/);
    const open = path.join(dir, 'e', 'sea', manifest.id);
    mkdirSync(open, { recursive: true, mode: 0o700 });
    chmodSync(open, 0o777);
    assert.throws(() => unpack(open, manifest, content), /is writable by others \(mode 0777\)/);
    const parentOpen = path.join(dir, 'f', 'sea', manifest.id);
    mkdirSync(path.dirname(parentOpen), { recursive: true, mode: 0o700 });
    chmodSync(path.dirname(parentOpen), 0o1777);
    assert.throws(() => unpack(parentOpen, manifest, content), /sea is writable by others/);
    if (process.getuid?.() === 0) {
      const foreign = path.join(dir, 'g', 'sea', manifest.id);
      mkdirSync(foreign, { recursive: true, mode: 0o700 });
      chownSync(foreign, 65534, 65534);
      assert.throws(() => unpack(foreign, manifest, content), /belongs to uid 65534, not to you/);
    }
    assert.equal(readFileSync(path.join(planted, 'node_modules', 'undici', 'index.js'), 'utf8'), 'process.exit(66)', 'nothing written through the link');
  });

  it(
    "creates no directory in another user's files (sudo -E keeps the invoking user's HOME), and says so",
    { skip: process.getuid?.() !== 0 && 'needs root to hand a directory to another user' },
    () => {
      const home = path.join(dir, 'their-home');
      mkdirSync(home, { mode: 0o755 });
      chownSync(home, 65534, 65534);
      const root = path.join(home, '.cache', 'hoist', 'sea', manifest.id);
      assert.throws(
        () => unpack(root, manifest, content),
        /their-home belongs to uid 65534, not to you \(uid 0\): hoist creates no directories in another user's files \(sudo -E/,
      );
      assert.deepEqual(readdirSync(home), [], 'nothing created there');
    },
  );
});
