import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { evaluateSshConfig } from '../../src/ssh/ssh-config.js';
import { readSshConfigFile } from '../../src/ssh/ssh-config-file.js';

/**
 * hoist's reading of ssh_config is checked against OpenSSH's own (`ssh -G -F FILE HOST`), on the
 * same files, for the keywords hoist uses.
 */

const dir = mkdtempSync(path.join(os.tmpdir(), 'hoist-sshcfg-'));
const write = (name: string, text: string) => {
  const p = path.join(dir, name);
  mkdirSync(path.dirname(p), { recursive: true });
  writeFileSync(p, text);
  return p;
};

function openssh(file: string, host: string, user?: string): Record<string, string> {
  const r = spawnSync('ssh', ['-G', '-F', file, ...(user ? ['-l', user] : []), host], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out: Record<string, string> = {};
  for (const line of r.stdout.split('\n')) {
    const m = /^(\S+) (.*)$/.exec(line);
    if (m && !(m[1].toLowerCase() in out)) out[m[1].toLowerCase()] = m[2];
  }
  return out;
}

function hoist(file: string, host: string, user?: string) {
  const f = readSshConfigFile(file, 'user');
  assert.ok(f);
  return evaluateSshConfig([f], host, user);
}

function assertSame(file: string, host: string, user?: string) {
  const o = openssh(file, host, user);
  const h = hoist(file, host, user);
  const label = `${host}${user ? ` as ${user}` : ''}`;
  assert.equal(h.hostName ?? host, o.hostname, `${label}: hostname`);
  assert.equal(user ?? h.user ?? os.userInfo().username, o.user, `${label}: user`);
  assert.equal(String(h.port ?? 22), o.port, `${label}: port`);
  assert.equal(h.proxyJump, o.proxyjump, `${label}: proxyjump`);
  assert.equal(h.proxyCommand, o.proxycommand, `${label}: proxycommand`);
}

test('Include with a glob: files in sorted order, the first value obtained wins, as ssh -G', () => {
  write('inc/20-b.conf', 'Host web1\n  User second\n  Port 2002\n');
  write('inc/10-a.conf', 'Host web1\n  User first\nHost db*\n  HostName 10.1.0.%h\n');
  write('inc/.hidden.conf', 'Host web1\n  Port 9999\n');
  const main = write('glob.conf', `Include ${dir}/inc/*.conf\nHost *\n  Port 2200\n  User fallback\n`);
  for (const h of ['web1', 'db7', 'other']) assertSame(main, h);
  assert.equal(hoist(main, 'web1').user, 'first');
  assert.equal(hoist(main, 'web1').port, 2002);
  assert.equal(hoist(main, 'db7').hostName, '10.1.0.db7');
});

test('an Include inside a Host block applies only to that host; a missing include is no error', () => {
  write('only-bastioned.conf', 'ProxyJump jump@gw:2222\nUser ops\n');
  const main = write('scoped.conf', `Host inner*\n  Include ${dir}/only-bastioned.conf\n  Include ${dir}/does-not-exist.conf\nHost *\n  User plain\n`);
  assertSame(main, 'inner3');
  assertSame(main, 'outer');
  assert.equal(hoist(main, 'inner3').proxyJump, 'jump@gw:2222');
  assert.equal(hoist(main, 'outer').proxyJump, undefined);
});

test('Match host sees HostName, originalhost the name given, user the inventory user; ! negates', () => {
  const main = write(
    'match.conf',
    [
      'Host app',
      '  HostName 10.9.0.5',
      'Match host 10.9.0.* !originalhost skip*',
      '  Port 2201',
      'Match originalhost skip*',
      '  Port 2202',
      'Match user admin',
      '  ProxyJump adminjump',
      'Match !user admin host *',
      '  IdentitiesOnly yes',
      'Match all',
      '  User matched',
    ].join('\n'),
  );
  assertSame(main, 'app');
  assertSame(main, 'skipme');
  assertSame(main, 'app', 'admin');
  assert.equal(hoist(main, 'app').port, 2201);
  assert.equal(hoist(main, 'app', 'admin').proxyJump, 'adminjump');
  assert.equal(hoist(main, 'app').identitiesOnly, true);
});

test('Host negation, Key=value, quoted arguments and ProxyCommand/ProxyJump precedence match ssh -G', () => {
  const main = write(
    'syntax.conf',
    [
      'Host * !direct',
      '  ProxyCommand=ssh -W %h:%p "gw host"',
      'Host direct',
      '  ProxyJump none',
      'Host *',
      '  ProxyJump never-used',
      '  User "spaced user"',
      '  Port = 2203',
    ].join('\n'),
  );
  assertSame(main, 'direct');
  assertSame(main, 'any');
  assert.equal(hoist(main, 'any').proxyCommand, 'ssh -W %h:%p "gw host"');
  assert.equal(hoist(main, 'any').user, 'spaced user');
});

test('Match final applies after everything else, and earlier values still win', () => {
  const main = write('final.conf', 'Match final\n  Port 2204\n  User late\nHost f1\n  User early\n');
  assertSame(main, 'f1');
  assertSame(main, 'f2');
  assert.equal(hoist(main, 'f1').user, 'early');
  assert.equal(hoist(main, 'f1').port, 2204);
});

test('relative Include paths resolve in ~/.ssh for a user file', () => {
  const home = mkdtempSync(path.join(os.tmpdir(), 'hoist-home-'));
  mkdirSync(path.join(home, '.ssh', 'config.d'), { recursive: true });
  writeFileSync(path.join(home, '.ssh', 'config.d', 'site'), 'Host rel\n  User relative\n');
  const main = write('relative.conf', 'Include config.d/*\n');
  const saved = process.env.HOME;
  process.env.HOME = home;
  try {
    assert.equal(hoist(main, 'rel').user, 'relative');
  } finally {
    process.env.HOME = saved;
  }
});

test('Match exec is refused with file:line when it would decide, skipped when the line already failed', () => {
  const main = write('exec.conf', 'Host a\n  User x\nMatch host nothing-like-this exec "true"\n  Port 1\nMatch host b exec "true"\n  Port 2\n');
  assert.doesNotThrow(() => hoist(main, 'a'));
  assert.throws(
    () => hoist(main, 'b'),
    (e: Error) => e.message.includes(`${main}:5`) && e.message.includes('Match exec'),
  );
});

test("an Include that includes itself stops at OpenSSH's depth limit with file:line", () => {
  const loop = path.join(dir, 'loop.conf');
  write('loop.conf', `Include ${loop}\n`);
  assert.throws(
    () => hoist(loop, 'x'),
    (e: Error) => e.message.includes(`${loop}:1`) && /nested Include/.test(e.message),
  );
});

test('IdentityFile tokens and ~ are expanded; several are kept in order', () => {
  const main = write('ids.conf', 'Host k*\n  HostName real-%h\n  IdentityFile ~/.ssh/id_%r@%h\n  IdentityFile %d/second\n');
  const e = hoist(main, 'k1', 'deploy');
  assert.deepEqual(e.identityFiles, [path.join(os.homedir(), '.ssh', 'id_deploy@real-k1'), path.join(os.homedir(), 'second')]);
});
