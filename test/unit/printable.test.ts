import { test } from 'node:test';
import assert from 'node:assert/strict';
import { printable, printableLines } from '../../src/util/printable.js';
import { hostLine } from '../../src/output/format.js';

test('escape sequences and line breaks from outside become visible escapes', () => {
  assert.equal(printable('reg\x1b[2J\x1b[Histry'), 'reg\\x1b[2J\\x1b[Histry');
  assert.equal(printable('a\nb\tc\rd\u0000e\u009bf\u2028g'), 'a\\nb\\tc\\rd\\x00e\\x9bf\\u2028g');
  assert.equal(printable('plain ünïcode ✓'), 'plain ünïcode ✓');
  assert.equal(printableLines('line one\nline\x07 two'), 'line one\nline\\x07 two');
});

test('a host error cannot clear the screen', () => {
  const line = hostLine({ name: 'h1', address: 'x', status: 'failed', tasks: [], notes: [], durationMs: 0, error: 'bad key "\x1b[2J"' });
  assert.ok(!line.includes('\x1b[2J'));
  assert.match(line, /bad key "\\x1b\[2J"/);
});
