import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { logText, SGR, terminalText } from '../../src/util/printable.js';
import { Logger } from '../../src/util/log.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.ts');

const RAW = /[\x00\x1b\r]/;

test("the output boundary escapes ESC, NUL and CR from anywhere and keeps only hoist's own colors", () => {
  const foreign = 'h\x1b[2J\x00x\ry';
  const line = `${SGR}[31mfailed${SGR}[0m: ${foreign}\nnext line`;
  assert.equal(terminalText(line), '\x1b[31mfailed\x1b[0m: h\\x1b[2J\\x00x\\ry\nnext line');
  assert.equal(logText(line), 'failed: h\\x1b[2J\\x00x\\ry\nnext line');
  assert.equal(terminalText('a\tb'), 'a\tb', 'a tab (in a diff) is kept');
  // Idempotent: text escaped on the way in is not escaped twice.
  assert.equal(terminalText(terminalText(foreign)), terminalText(foreign));
});

test('text from a host that spells a color marker gets no escape sequence: the marker is random per process', () => {
  for (const forged of ['\uE01B[8mhidden', `${SGR.slice(0, 1)}[31mred`, '\uE01B\uE100[8mx']) {
    assert.doesNotMatch(terminalText(forged), /\x1b/, JSON.stringify(forged));
  }
  assert.ok(SGR.length > 1 && SGR.startsWith('\uE01B'));
});

test('the log escapes control characters from a host', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hoist-log-'));
  const log = new Logger(path.join(dir, 'run.log'));
  log.log('h1', 'stdout:\nVERSION_ID="12\x1b]0;owned\x07"\x00\r');
  return log.close().then(() => {
    const text = readFileSync(path.join(dir, 'run.log'), 'utf8');
    assert.doesNotMatch(text, RAW);
    assert.match(text, /VERSION_ID="12\\x1b\]0;owned\\x07"\\x00\\r/);
  });
});

test('a host name with ESC, NUL and CR reaches neither the terminal nor the log raw', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hoist-ctl-'));
  const inv = path.join(dir, 'inv.toml');
  writeFileSync(inv, '[defaults]\nuser = "deploy"\n[hosts."a\\u001b[2Jb\\u0000c\\rd"]\naddress = "127.0.0.1"\nport = 1\n');
  const env = { ...process.env, NO_COLOR: '1', CI: '1', XDG_STATE_HOME: path.join(dir, 'state'), SSH_AUTH_SOCK: '' };
  for (const args of [
    ['inventory', '-i', inv],
    ['ping', '-i', inv, '--connect-timeout', '2'],
  ]) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], { encoding: 'utf8', env, timeout: 60_000 });
    assert.match(r.stdout + r.stderr, /a\\x1b\[2Jb\\x00c\\rd/, `${args[0]}: ${r.stdout}${r.stderr}`);
    assert.doesNotMatch(r.stdout + r.stderr, RAW, `${args[0]} printed a control character`);
  }
  const logs = path.join(dir, 'state', 'hoist', 'logs');
  const text = readdirSync(logs)
    .map((f) => readFileSync(path.join(logs, f), 'utf8'))
    .join('');
  assert.match(text, /a\\x1b\[2Jb/);
  assert.doesNotMatch(text, RAW);
});
