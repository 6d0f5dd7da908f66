/**
 * hoist installed like a tool: the package `npm pack` makes, installed with `npm install -g` into
 * a clean prefix, with no build and nothing to download (everything it runs is bundled or inside it),
 * then used against the fleet as an operator would: through the bastion with sudo.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as fleet from '../fleet/fleet.js';
import { ROOT } from '../support/hoist.js';

let info: fleet.FleetInfo;
let dir: string;
let bin: string;
let pkgDir: string;

before(async () => {
  info = await fleet.info();
  dir = mkdtempSync(path.join(os.tmpdir(), 'hoist-install-'));
  // npm test built dist/ already; packing again must not need the build tools.
  const tgz = execFileSync('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8' })
    .trim()
    .split('\n')
    .pop()!;
  const prefix = path.join(dir, 'prefix');
  // --offline: the package must install with nothing to fetch.
  execFileSync('npm', ['install', '-g', '--offline', '--no-audit', '--no-fund', '--prefix', prefix, path.join(dir, tgz)], { cwd: dir, encoding: 'utf8' });
  bin = path.join(prefix, 'bin', 'hoist');
  pkgDir = path.join(prefix, 'lib', 'node_modules', 'hoist');
});

after(() => rmSync(dir, { recursive: true, force: true }));

/** The installed command, from a directory that is not the checkout, with CI-style output. */
function installed(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(bin, args, {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, CI: '1', NO_COLOR: '1', XDG_STATE_HOME: path.join(dir, 'state'), XDG_CACHE_HOME: path.join(dir, 'cache-home'), ...env },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('the package holds the bundle, templates and playbooks, undici, and no sources, tests or other dependencies', () => {
  const files = readdirSync(pkgDir);
  assert.deepEqual(
    files.filter((f) => !['bin', 'dist', 'templates', 'playbooks', 'inventories', 'node_modules', 'package.json', 'README.md', 'LICENSE'].includes(f)),
    [],
  );
  assert.deepEqual(readdirSync(path.join(pkgDir, 'bin')), ['hoist']);
  // Everything is bundled but undici, which travels inside the package (bundleDependencies).
  assert.deepEqual(readdirSync(path.join(pkgDir, 'node_modules')), ['undici']);
  assert.deepEqual(
    readdirSync(path.join(pkgDir, 'dist')).filter((f) => !/^hoist(-cli)?\.cjs$/.test(f)),
    [],
  );
});

test('every command runs from the installed package', () => {
  assert.match(installed(['--version']).out, /^\d+\.\d+\.\d+\n$/);
  // The installed command (a link to bin/hoist) keeps Node from reading NODE_EXTRA_CA_CERTS at start-up:
  // Node itself would warn about a file it cannot load.
  const deferred = installed(['--version'], { NODE_EXTRA_CA_CERTS: path.join(dir, 'no-such-ca.pem') });
  assert.equal(deferred.code, 0);
  assert.doesNotMatch(deferred.err, /extra certs/);
  assert.match(installed(['tasks']).out, /^containerd_install\b/m);
  assert.match(installed(['reference']).out, /^# hoist reference/m);
  assert.match(installed(['inventory', '-i', info.inventoryPath]).out, /h1/);
  const ping = installed(['ping', '-i', info.inventoryPath, '--json']);
  assert.equal(ping.code, 0, ping.err);
  assert.equal((JSON.parse(ping.out) as { hosts: unknown[] }).hosts.length, info.hosts.length);
  // The packaged playbook, with its templates, plans against the fleet (deploy through the bastion, sudo).
  const check = installed([
    'check',
    path.join(pkgDir, 'playbooks', 'containerd.toml'),
    '-i',
    info.inventoryPath,
    '-l',
    'h1',
    '--diff',
    '--cache-dir',
    path.join(dir, 'cache'),
  ]);
  assert.equal(check.code, 0, `${check.out}${check.err}`);
  // Either way the config was rendered from the packaged templates: shown as a diff on a fresh
  // host, or found equal to the one installed.
  assert.match(check.out, /config\.toml|no changes: every host already matches/);
  const facts = installed(['facts', '-i', info.inventoryPath, '-l', 'h1']);
  assert.equal(facts.code, 0, facts.err);
  assert.match(facts.out, /debian/i);
});

test("the installed command keeps its compiled code in the user's cache, and later runs start from it", () => {
  const code = path.join(dir, 'cache-home', 'hoist', 'code');
  // A run that reached its hosts keeps what it compiled (--version or `tasks` alone would not).
  const first = installed(['ping', '-i', info.inventoryPath, '-l', 'h1']);
  assert.equal(first.code, 0, first.err);
  const caches = readdirSync(code).filter((f) => f.endsWith('.v8cache'));
  assert.equal(caches.length, 1, `one cache for this build and Node: ${caches.join(', ')}`);
  assert.equal(statSync(code).mode & 0o777, 0o700);
  assert.equal(statSync(path.join(code, caches[0])).mode & 0o777, 0o600);
  const ping = installed(['ping', '-i', info.inventoryPath, '-l', 'h1']);
  assert.equal(ping.code, 0, ping.err);
  const logs = path.join(dir, 'state', 'hoist', 'logs');
  const last = readdirSync(logs).sort().pop()!;
  assert.match(readFileSync(path.join(logs, last), 'utf8').split('\n')[0], /, code cache accepted\)$/);
});
