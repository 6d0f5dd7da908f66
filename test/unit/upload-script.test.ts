import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { uploadScript } from '../../src/ssh/upload.js';
import { TEMP_JOURNAL, TEMP_MARK } from '../../src/host-paths.js';

/** Runs the upload script locally with bash, the journal moved into the test's own directory. */
function run(dir: string, target: string, data: Buffer, size: number, opts: Parameters<typeof uploadScript>[2] = { mode: 0o640 }, privileged = true) {
  const journal = path.join(dir, 'journal');
  const script = uploadScript(target, size, opts, { privileged })
    .split(TEMP_JOURNAL)
    .join(journal)
    .replace(/^chown .*$/m, '');
  return spawnSync('bash', ['-c', script], { input: data, encoding: 'utf8' });
}

test('a complete upload lands atomically with its mode; nothing temporary stays', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hoist-up-'));
  const target = path.join(dir, 'etc', 'config.toml');
  const r = run(dir, target, Buffer.from('version = 3\n'), 12);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(readFileSync(target, 'utf8'), 'version = 3\n');
  assert.equal(statSync(target).mode & 0o777, 0o640);
  assert.deepEqual(readdirSync(path.dirname(target)), ['config.toml']);
});

test('a truncated upload (the client died) never replaces the file and leaves no temporary file', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hoist-up-'));
  const target = path.join(dir, 'unit');
  writeFileSync(target, 'old');
  const r = run(dir, target, Buffer.from('half'), 1000);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /arrived incomplete \(4 of 1000 bytes\)/);
  assert.equal(readFileSync(target, 'utf8'), 'old');
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.startsWith(TEMP_MARK)),
    [],
  );
});

test('a refused file keeps the live one; a leftover from a killed run is swept by the next upload', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hoist-up-'));
  const target = path.join(dir, 'conf');
  writeFileSync(target, 'good');
  const refused = run(dir, target, Buffer.from('bad'), 3, { mode: 0o600, validate: (f) => `grep -q good ${f}` });
  assert.equal(refused.status, 3);
  assert.equal(readFileSync(target, 'utf8'), 'good');
  // A run killed with SIGKILL mid-upload: its temporary file stays, listed in the journal.
  const leftover = path.join(dir, `${TEMP_MARK}deadbeef.conf`);
  writeFileSync(leftover, 'partial');
  writeFileSync(path.join(dir, 'journal'), `${leftover}\n${path.join(dir, 'conf')}\n`);
  const next = run(dir, path.join(dir, 'other'), Buffer.from('x'), 1);
  assert.equal(next.status, 0, next.stderr);
  assert.ok(!existsSync(leftover), 'leftover not swept');
  assert.ok(existsSync(target), 'a journal line without the mark must never be deleted');
});

test('an upload with an expected sha256 is refused when the bytes differ, and lands when they match', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hoist-up-'));
  const target = path.join(dir, 'artifacts', 'bundle.tar.gz');
  const data = Buffer.from('release bytes');
  const sha = createHash('sha256').update(data).digest('hex');
  const wrong = run(dir, target, Buffer.from('release bytez'), data.length, { mode: 0o644, sha256: sha });
  assert.equal(wrong.status, 1);
  assert.match(wrong.stderr, new RegExp(`arrived with sha256 [0-9a-f]{64}, not ${sha}`));
  assert.ok(!existsSync(target));
  assert.deepEqual(readdirSync(path.dirname(target)), []);
  const right = run(dir, target, data, data.length, { mode: 0o644, sha256: sha });
  assert.equal(right.status, 0, right.stderr);
  assert.ok(readFileSync(target).equals(data));
});
