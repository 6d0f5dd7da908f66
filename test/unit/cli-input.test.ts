import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// Bad input is refused before any host is contacted: the hosts here refuse connections (port 1), so
// a run that got as far as connecting would fail with exit 4, not 1.
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = path.join(ROOT, 'src/cli/main.ts');
const PB = path.join(ROOT, 'playbooks/containerd.toml');
const dir = mkdtempSync(path.join(os.tmpdir(), 'hoist-input-'));
const inv = path.join(dir, 'inv.toml');
const kh = path.join(dir, 'known_hosts');
writeFileSync(kh, '');
const hosts = `[hosts.a]\naddress = "127.0.0.1"\nport = 1\n[hosts.b]\naddress = "127.0.0.2"\nport = 1\n`;
writeFileSync(inv, `[defaults]\nuser = "deploy"\nknown_hosts_file = ${JSON.stringify(kh)}\n${hosts}`);
const cacheFile = path.join(dir, 'a-file');
writeFileSync(cacheFile, 'x');

function hoist(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], {
    encoding: 'utf8',
    env: { ...process.env, HOIST_LOG: 'off', NO_COLOR: '1', CI: '1' },
    timeout: 60_000,
  });
  return { code: r.status, err: r.stderr + r.stdout };
}

test('an empty --limit is an input error, not every host', () => {
  for (const l of ['', '  ', ' , ', ':']) {
    const r = hoist('ping', '-i', inv, '-l', l);
    assert.equal(r.code, 1, `-l ${JSON.stringify(l)}: ${r.err}`);
    assert.match(r.err, /the limit is empty/);
  }
  const r = hoist('inventory', '-i', inv, '-l', 'a', '-l', '');
  assert.equal(r.code, 1, r.err);
});

test('a second -i is refused, naming both', () => {
  const r = hoist('ping', '-i', path.join(dir, 'missing.toml'), '-i', inv);
  assert.equal(r.code, 1, r.err);
  assert.match(r.err, /only one inventory per run \(-i .*missing\.toml and -i .*inv\.toml\)/);
});

test('--cache-dir naming a file is an input error before any host is contacted', () => {
  const r = hoist('apply', PB, '-i', inv, '--cache-dir', cacheFile);
  assert.equal(r.code, 1, r.err);
  assert.match(r.err, /--cache-dir .*a-file is not a directory/);
});

test('a known_hosts_file that does not exist is an input error before connecting', () => {
  const inv2 = path.join(dir, 'inv2.toml');
  writeFileSync(inv2, `[defaults]\nuser = "deploy"\nknown_hosts_file = "no-such-known_hosts"\n${hosts}`);
  const r = hoist('ping', '-i', inv2);
  assert.equal(r.code, 1, r.err);
  assert.match(r.err, /known_hosts file .*no-such-known_hosts \(known_hosts_file in .*inv2\.toml\) does not exist/);
});
