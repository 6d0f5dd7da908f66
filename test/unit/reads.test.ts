import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gather, type Probe } from '../../src/facts/probe.js';
import { fileRead, packagesRead, parseFileBatch, parsePackageBatch } from '../../src/facts/reads.js';
import { installedPackages } from '../../src/tasks/lib/packages.js';
import { parseFileProbe } from '../../src/tasks/lib/files.js';
import { driftProbe } from '../../src/modules/containerd/tasks/install.js';
import { sha256 } from '../../src/util/hash.js';
import type { ExecResult } from '../../src/ssh/connection.js';

/** A connection whose host is this machine: the round trip's script runs in a real bash. */
function localBash(env: NodeJS.ProcessEnv = process.env, as: string[] = []) {
  const scripts: string[] = [];
  return {
    scripts,
    exec(script: string): Promise<ExecResult> {
      scripts.push(script);
      return new Promise((resolve, reject) => {
        const p = as.length
          ? spawn(as[0], [...as.slice(1), '/bin/bash'], { env, stdio: ['pipe', 'pipe', 'pipe'] })
          : spawn('/bin/bash', [], { env, stdio: ['pipe', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        p.on('error', reject);
        p.on('close', (code) => resolve({ stdout, stderr, code: code ?? -1 }));
        p.stdin.end(script);
      });
    },
  };
}

const dir = mkdtempSync(path.join(tmpdir(), 'hoist-reads-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

test('every file of the round trip is read in one batch: hash, mode, owner, mtime and content, by name, whatever the name', async () => {
  const plain = path.join(dir, 'config.toml');
  const odd = path.join(dir, "new\nline and \\back'slash $(x)");
  const binary = path.join(dir, 'blob');
  const record = path.join(dir, 'installed.json');
  writeFileSync(plain, 'version = 3\n');
  writeFileSync(odd, 'odd');
  writeFileSync(binary, Buffer.from([0, 1, 2, 255, 0, 10]));
  writeFileSync(record, '{"version":"1.7.24"}\n\n');
  chmodSync(plain, 0o640);
  utimesSync(plain, 1_700_000_000, 1_700_000_000);
  const conn = localBash();
  const probes = new Map<string, Probe>([
    ['0:plain', fileRead(plain)],
    ['0:odd', fileRead(odd)],
    ['1:missing', fileRead(path.join(dir, 'absent'))],
    ['1:dir', fileRead(dir)],
    ['2:binary', fileRead(binary, 'bytes')],
    ['2:record', fileRead(record, 'text')],
    // The same file twice, once with its content: read once, both answered.
    ['3:plain-again', fileRead(plain, 'text')],
    ['3:script', 'echo still a script'],
  ]);
  const g = await gather(conn, probes);
  const file = (id: string) => parseFileProbe(g.results.get(id)!);
  assert.deepEqual(file('0:plain'), {
    exists: true,
    mode: 0o640,
    owner: 'root',
    group: 'root',
    mtime: 1_700_000_000,
    sha256: sha256(Buffer.from('version = 3\n')),
  });
  assert.equal(file('0:odd').sha256, sha256(Buffer.from('odd')));
  assert.deepEqual(file('1:missing'), { exists: false });
  assert.deepEqual(file('1:dir'), { exists: false }, 'a directory is not a file');
  assert.deepEqual(file('2:binary').content, Buffer.from([0, 1, 2, 255, 0, 10]));
  assert.equal(file('2:record').content?.toString(), '{"version":"1.7.24"}\n\n', 'text is read whole, trailing newlines too');
  assert.equal(file('3:plain-again').content?.toString(), 'version = 3\n');
  assert.equal(g.results.get('3:script')?.out, 'still a script');
  // The batch's section runs beside the others, as a function of the script.
  const n = /begin __files'; __section(\d+);/.exec(conn.scripts[0])?.[1];
  const batch = new RegExp(`^__section${n}\\(\\) \\{\\n\\(\\n([^]*?)\\n\\) </dev/null 2>&1\\n\\}$`, 'm').exec(conn.scripts[0])?.[1] ?? '';
  assert.equal(batch.match(/\bsha256sum\b/g)?.length, 1, 'one sha256sum for every file');
  assert.equal(batch.match(/\bstat\b/g)?.length, 1, 'one stat for every file');
  assert.equal(batch.match(/\bbase64\b/g)?.length, 1, 'a process for content only where it may be binary');
  assert.equal(statSync(plain).mode & 0o777, 0o640);
});

const hasDpkg = spawnSync('bash', ['-c', 'command -v dpkg-query']).status === 0;

test(
  'packages of every task are read with one query; a host without a package database is an error for those who ask',
  { skip: !hasDpkg && 'dpkg-query not installed here' },
  async () => {
    const conn = localBash();
    const g = await gather(
      conn,
      new Map<string, Probe>([
        ['0:pkgs', packagesRead(['bash', 'hoist-no-such-package'])],
        ['1:distro', packagesRead(['coreutils', 'hoist-no-such-package-either'])],
      ]),
    );
    assert.deepEqual([...installedPackages(g.results.get('0:pkgs')!)], ['bash']);
    assert.deepEqual([...installedPackages(g.results.get('1:distro')!)], ['coreutils']);
    assert.equal(conn.scripts[0].match(/dpkg-query/g)?.length, 2, 'one dpkg-query (named twice: the test and the call)');

    const bare = mkdtempSync(path.join(dir, 'empty-path-'));
    const none = await gather(localBash({ PATH: bare }), new Map<string, Probe>([['0:pkgs', packagesRead(['bash'])]]));
    assert.throws(() => installedPackages(none.results.get('0:pkgs')!), /cannot read the package database: no package database/);
  },
);

test('drift of installed files: only a file whose size or mtime changed, or that is gone, is named', async () => {
  const d = path.join(dir, 'installed');
  mkdirSync(d);
  const files = ['ctr', 'containerd', 'with space'].map((f) => path.join(d, f));
  for (const f of files) writeFileSync(f, f);
  const record = () => files.map((f) => `${statSync(f).size} ${Math.floor(statSync(f).mtimeMs / 1000)} ${f}`).join('\n') + '\n';
  const stats = path.join(dir, 'files.stat');
  writeFileSync(stats, record());
  const run = async () => (await localBash().exec(driftProbe(stats))).stdout;
  assert.equal(await run(), '', 'nothing changed: nothing printed');
  writeFileSync(files[2], 'longer content');
  rmSync(files[0]);
  assert.equal(await run(), `drift ${files[0]}\ndrift ${files[2]}\n`);
  rmSync(stats);
  assert.equal(await run(), '', 'no record: nothing to compare');
});

test('an owner or group with a space in its name is read as such, not taken for a missing file', () => {
  const sum = 'a'.repeat(64);
  const out = ['S640', 'root', 'domain users', '1700000000', '/etc/x', '@sha', `${sum}  /etc/x\n`, '\n'].join('\0');
  assert.deepEqual(parseFileBatch(out, [fileRead('/etc/x')]).get('/etc/x'), {
    exists: true,
    mode: 0o640,
    owner: 'root',
    group: 'domain users',
    mtime: 1_700_000_000,
    sha256: sum,
  });
});

const canDropPrivileges = process.getuid?.() === 0 && spawnSync('setpriv', ['--version']).status === 0;

test(
  'a file that exists but cannot be read is an error for whoever reads it, never absent and never its error message as content',
  { skip: !canDropPrivileges && 'needs root and setpriv' },
  async () => {
    const d = mkdtempSync(path.join(tmpdir(), 'hoist-unreadable-'));
    chmodSync(d, 0o755);
    const secret = path.join(d, 'installed.json');
    const open = path.join(d, 'open.json');
    writeFileSync(secret, '{"version":"2.0"}', { mode: 0o600 });
    writeFileSync(open, '{"version":"1.7"}', { mode: 0o644 });
    try {
      const asNobody = localBash(process.env, ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups']);
      const g = await gather(
        asNobody,
        new Map<string, Probe>([
          ['0:open', fileRead(open, 'text')],
          ['0:text', fileRead(secret, 'text')],
          ['1:bytes', fileRead(secret, 'bytes')],
          ['2:hash', fileRead(secret)],
        ]),
      );
      assert.equal(parseFileProbe(g.results.get('0:open')!).content?.toString(), '{"version":"1.7"}');
      for (const id of ['0:text', '1:bytes', '2:hash']) {
        assert.throws(
          () => parseFileProbe(g.results.get(id)!),
          new RegExp(`could not read the host's files: cannot read ${secret.replace(/[.]/g, '\\.')} \\(it exists\\)`),
          id,
        );
      }
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  },
);

test('a package asked for by another name it answers to (with its architecture, its version) counts as installed', async (t) => {
  // dpkg's lines, and rpm's (an installed package, and one that is not).
  const installed = parsePackageBatch(
    'installed libc6 libc6:amd64 libc6:amd64\nnot-installed tree tree tree:amd64\n' +
      'installed glibc glibc.i686 glibc-2.28 glibc-2.28-251.el8 glibc-2.28-251.el8.i686\npackage foo is not installed\n',
  );
  for (const n of ['libc6', 'libc6:amd64', 'glibc', 'glibc.i686', 'glibc-2.28-251.el8']) assert.ok(installed.has(n), n);
  for (const n of ['tree', 'foo', 'package']) assert.ok(!installed.has(n), n);
  if (!hasDpkg) return t.skip('dpkg-query not installed here');
  const arch = spawnSync('dpkg', ['--print-architecture']).stdout.toString().trim();
  const g = await gather(localBash(), new Map<string, Probe>([['0:pkgs', packagesRead([`bash:${arch}`, 'coreutils'])]]));
  assert.deepEqual([...installedPackages(g.results.get('0:pkgs')!)].sort(), [`bash:${arch}`, 'coreutils']);
});
