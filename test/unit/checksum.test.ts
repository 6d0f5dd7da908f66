import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ChecksumError, findChecksum, parseChecksumEntries, stripClearSignature, verifyFile } from '../../src/util/checksum.js';
import { hashFile, hashStream, sha256File } from '../../src/util/hash.js';

const H1 = 'a'.repeat(64);
const H2 = '0123456789abcdef'.repeat(4);
const H3 = 'f'.repeat(64);

test('containerd .sha256sum: <hex>  <name>', () => {
  const text = `${H2}  containerd-1.7.34-linux-amd64.tar.gz\n`;
  assert.equal(findChecksum(text, 'containerd-1.7.34-linux-amd64.tar.gz'), H2);
  assert.throws(
    () => findChecksum(text, 'containerd-2.1.9-linux-amd64.tar.gz'),
    (e: unknown) =>
      e instanceof ChecksumError && /containerd-2\.1\.9-linux-amd64\.tar\.gz is not listed/.test(e.message) && e.message.includes('containerd-1.7.34'),
  );
});

test('upper-case hex and CRLF are normalised', () => {
  assert.equal(findChecksum(`${H2.toUpperCase()}  x.tgz\r\n`, 'x.tgz'), H2);
});

test('runc.sha256sum: PGP clear-signed, several entries, dash-escaping', () => {
  const signed = [
    '-----BEGIN PGP SIGNED MESSAGE-----',
    'Hash: SHA256',
    '',
    `${H1}  runc.amd64`,
    `${H2}  runc.arm64`,
    `- ${H3}  runc-1.3.6.tar.xz`,
    '-----BEGIN PGP SIGNATURE-----',
    '',
    'iQIzBAEBCAAdFiEE1234567890abcdefABCDEF==',
    `${'9'.repeat(64)}  runc.amd64`,
    '-----END PGP SIGNATURE-----',
    '',
  ].join('\n');
  assert.equal(findChecksum(signed, 'runc.amd64'), H1);
  assert.equal(findChecksum(signed, 'runc.arm64'), H2);
  assert.equal(findChecksum(signed, 'runc-1.3.6.tar.xz'), H3);
  assert.equal(stripClearSignature(signed), `${H1}  runc.amd64\n${H2}  runc.arm64\n${H3}  runc-1.3.6.tar.xz`);
  assert.throws(() => findChecksum(signed, 'runc.riscv64'), /runc\.riscv64 is not listed/);
});

test('clear-signed file without signature block is rejected as truncated', () => {
  const truncated = `-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n${H1}  runc.amd64\n`;
  assert.throws(() => findChecksum(truncated, 'runc.amd64'), /no signature block/);
});

test('CNI .tgz.sha256 and sha512', () => {
  const name = 'cni-plugins-linux-amd64-v1.9.1.tgz';
  assert.equal(findChecksum(`${H3}  ${name}\n`, name, { source: `${name}.sha256` }), H3);
  const h512 = 'ab'.repeat(64);
  assert.equal(findChecksum(`${h512}  ${name}\n`, name, { algorithm: 'sha512' }), h512);
  assert.throws(() => findChecksum(`${H3}  ${name}\n`, name, { algorithm: 'sha512' }), /malformed sha512/);
});

test('crictl .tar.gz.sha256 holds only the hex', () => {
  assert.equal(findChecksum(`${H1}\n`, 'crictl-v1.36.0-linux-amd64.tar.gz'), H1);
  assert.equal(findChecksum(H1, 'anything'), H1);
  assert.throws(() => findChecksum(`${H1}\n${H2}\n`, 'crictl.tar.gz'), /bare hashes/);
});

test('binary-mode marker, paths and BSD tag format', () => {
  assert.equal(findChecksum(`${H2} *runc.amd64\n`, 'runc.amd64'), H2);
  assert.equal(findChecksum(`${H2}  ./release/runc.amd64\n`, 'runc.amd64'), H2);
  assert.equal(findChecksum(`SHA256 (runc.amd64) = ${H3}\n`, 'runc.amd64'), H3);
  assert.deepEqual(parseChecksumEntries(`# comment\n\n${H1} *a b.bin\n`), [{ hex: H1, name: 'a b.bin', line: 3 }]);
});

test('malformed hex is reported, not returned', () => {
  assert.throws(
    () => findChecksum(`${'g'.repeat(64)}  x.tar.gz\n`, 'x.tar.gz'),
    (e: unknown) => e instanceof ChecksumError && /malformed sha256 for x\.tar\.gz/.test(e.message) && /line 1/.test(e.message),
  );
  assert.throws(() => findChecksum(`${H1.slice(1)}  x.tar.gz\n`, 'x.tar.gz'), /expected 64 hex digits/);
  assert.throws(() => findChecksum('<html>Not Found</html>', 'x.tar.gz'), /holds no checksum lines/);
  assert.throws(() => findChecksum('Not Found', 'x.tar.gz'), /holds no checksum lines/);
  assert.throws(() => findChecksum('NotFound\n', 'crictl.tar.gz'), /malformed sha256 for crictl.tar.gz/);
  assert.throws(() => findChecksum('\n\n', 'x.tar.gz'), /empty/);
  // A malformed line for another asset does not poison the lookup.
  assert.equal(findChecksum(`zz  other\n${H1}  x.tar.gz\n`, 'x.tar.gz'), H1);
  assert.throws(() => findChecksum(`${H1}  x\n${H2}  x\n`, 'x'), /2 different hashes/);
});

test('streaming hashes match node:crypto on multi-chunk input', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hoist-checksum-'));
  try {
    const data = Buffer.alloc(3 * 1024 * 1024 + 17);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
    const file = join(dir, 'blob');
    await writeFile(file, data);
    const want = createHash('sha256').update(data).digest('hex');
    assert.equal(await sha256File(file), want);
    assert.equal(await hashFile(file, 'sha512'), createHash('sha512').update(data).digest('hex'));
    assert.equal(await hashStream(Readable.from([data.subarray(0, 5), data.subarray(5)])), want);
    // Known vector: sha256("abc").
    assert.equal(await hashStream(Readable.from([Buffer.from('abc')])), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    await verifyFile(file, want.toUpperCase());
    await assert.rejects(verifyFile(file, H1), /sha256 mismatch/);
    await assert.rejects(verifyFile(file, 'xyz'), /malformed expected sha256/);
    await assert.rejects(sha256File(join(dir, 'missing')), /ENOENT/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
