import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { KnownHosts } from '../../src/ssh/known-hosts.js';

function blob(seed: number): Buffer {
  const type = Buffer.from('ssh-ed25519');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(type.length);
  const klen = Buffer.alloc(4);
  klen.writeUInt32BE(32);
  return Buffer.concat([len, type, klen, Buffer.alloc(32, seed)]);
}
const line = (hosts: string, b: Buffer) => `${hosts} ssh-ed25519 ${b.toString('base64')}`;

async function files(user: string, global?: string): Promise<[string, string]> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'hoist-kh-'));
  const u = path.join(dir, 'known_hosts');
  const g = path.join(dir, 'ssh_known_hosts');
  await writeFile(u, user);
  if (global !== undefined) await writeFile(g, global);
  return [u, g];
}

test('a @revoked key is refused, even when another line lists it as the host key', async () => {
  const good = blob(1);
  const stolen = blob(2);
  const [u] = await files(`${line('h1,10.0.0.1', stolen)}\n${line('h2', good)}\n@revoked * ${stolen.toString('base64').replace(/^/, 'ssh-ed25519 ')}\n`);
  const kh = await KnownHosts.load(u);
  const v = kh.verify('h1', 22, stolen);
  assert.equal(v.status, 'revoked');
  assert.equal(v.status === 'revoked' && v.where, `${u}:3`);
  assert.equal(kh.verify('h2', 22, good).status, 'match');
  // Revoked for a host with no other record: not "unknown" (which --accept-new-host-keys would accept).
  assert.equal(kh.verify('h9', 2222, stolen).status, 'revoked');
  assert.deepEqual(kh.typesFor('h9', 22), []);
});

test('@revoked applies to the hosts its pattern names only', async () => {
  const k = blob(3);
  const [u] = await files(`@revoked h1 ssh-ed25519 ${k.toString('base64')}\n${line('h2', k)}\n`);
  const kh = await KnownHosts.load(u);
  assert.equal(kh.verify('h1', 22, k).status, 'revoked');
  assert.equal(kh.verify('h2', 22, k).status, 'match');
});

test('the global known_hosts is read after the user file; a revocation there counts too', async () => {
  const a = blob(4);
  const b = blob(5);
  const [u, g] = await files(`${line('h1', a)}\n`, `${line('h3', b)}\n@revoked h1 ssh-ed25519 ${a.toString('base64')}\n`);
  const kh = await KnownHosts.load(u, [g, path.join(path.dirname(g), 'absent')]);
  assert.equal(kh.verify('h3', 22, b).status, 'match');
  const v = kh.verify('h1', 22, a);
  assert.deepEqual(v, { status: 'revoked', where: `${g}:2` });
});

test('@cert-authority lines trust nothing and are named in a note', async () => {
  const ca = blob(6);
  const [u] = await files(`# fleet\n@cert-authority *.fleet.test ssh-ed25519 ${ca.toString('base64')}\n`);
  const kh = await KnownHosts.load(u);
  assert.equal(kh.verify('h1.fleet.test', 22, ca).status, 'unknown');
  assert.equal(kh.notes.length, 1);
  assert.match(kh.notes[0], new RegExp(`${u.replace(/[.]/g, '\\.')}:2: @cert-authority lines are not supported`));
});

test('a changed key names the file and line that records the old one', async () => {
  const [u] = await files(`\n${line('h1', blob(7))}\n`);
  const kh = await KnownHosts.load(u);
  const v = kh.verify('h1', 22, blob(8));
  assert.equal(v.status === 'changed' && v.where, `${u}:2`);
});
