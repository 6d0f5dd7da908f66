import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { quote } from '../../src/ssh/quote.js';
import { parseSections } from '../../src/facts/probe.js';
import { parseFacts } from '../../src/facts/facts.js';
import { parseKnownHosts } from '../../src/ssh/known-hosts.js';
import { KnownHosts } from '../../src/ssh/known-hosts.js';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

test('quoted arguments reach bash literally, whatever they hold, quoted as zx quotes them', async () => {
  const { quote: zxQuote } = await import('zx/core');
  const controls = Array.from({ length: 31 }, (_v, i) => String.fromCharCode(i + 1)).join('');
  const hostile = [
    '$(touch /tmp/pwned)',
    "it's",
    '"dq"',
    'a\nb',
    '`id`',
    '; rm -rf /',
    '\\',
    '$HOME',
    '*',
    '',
    "\\'\\n$'x'",
    `tab\tcr\rff\fvt\v`,
    controls,
    'plain/path-1.2@host:22=x',
    'ünïcödé ✓',
    '!event',
    '~root',
    '{a,b}',
  ];
  for (const h of hostile) {
    assert.equal(quote(h), zxQuote(h), JSON.stringify(h));
    const out = execFileSync('bash', ['-c', `printf '%s' ${quote(h)}`]).toString();
    assert.equal(out, h);
  }
  assert.equal(quote(22), '22');
});

test('probe sections are split by their marker and keep exit codes', () => {
  const m = '@@hoist-abc';
  const out = `${m} begin __facts\nos_id=debian\n${m} end 0\n${m} begin 0:x\nline1\n\nline3\n${m} end 3\n`;
  const r = parseSections(out, m);
  assert.deepEqual(r.get('__facts'), { out: 'os_id=debian', code: 0 });
  assert.deepEqual(r.get('0:x'), { out: 'line1\n\nline3', code: 3 });
});

test('facts parse', () => {
  const f = parseFacts('os_id=debian\nos_id_like=\nos_version=13\narch=x86_64\ninit=systemd\npm=apt\ncgroup=1\nuid=0\ntool_tar=1\ntool_sudo=0\ndf_/=12345\n');
  assert.equal(f.osId, 'debian');
  assert.equal(f.packageManager, 'apt');
  assert.equal(f.cgroupVersion, 1);
  assert.equal(f.tools.tar, true);
  assert.equal(f.tools.sudo, false);
  assert.equal(f.diskFreeKb['/'], 12345);
});

test('known_hosts: plain, port-qualified, hashed; changed keys are told apart from unknown ones', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'hoist-kh-'));
  const keyFile = path.join(dir, 'k');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', keyFile]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', keyFile + '2']);
  const pub = (await import('node:fs')).readFileSync(keyFile + '.pub', 'utf8').split(' ');
  const pub2 = (await import('node:fs')).readFileSync(keyFile + '2.pub', 'utf8').split(' ');
  const salt = randomBytes(20);
  const hashed = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update('[10.0.0.9]:2222').digest('base64')}`;
  const kh = path.join(dir, 'known_hosts');
  await writeFile(kh, `# comment\n10.0.0.1,web ${pub[0]} ${pub[1]}\n${hashed} ${pub[0]} ${pub[1]}\n10.0.0.* ${pub2[0]} ${pub2[1]}\n`);
  assert.equal(parseKnownHosts(`garbage\n`).length, 0);
  const k = await KnownHosts.load(kh);
  const blob = Buffer.from(pub[1], 'base64');
  const blob2 = Buffer.from(pub2[1], 'base64');
  assert.equal(k.verify('10.0.0.1', 22, blob).status, 'match');
  assert.equal(k.verify('10.0.0.9', 2222, blob).status, 'match');
  assert.equal(k.verify('10.0.0.9', 22, blob2).status, 'match');
  assert.equal(k.verify('10.0.0.9', 2222, blob2).status, 'changed');
  assert.equal(k.verify('192.168.1.1', 22, blob).status, 'unknown');
  await k.add('192.168.1.1', 22, blob);
  const again = await KnownHosts.load(kh);
  assert.equal(again.verify('192.168.1.1', 22, blob).status, 'match');
});
