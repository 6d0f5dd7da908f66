import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import ssh2, { type AnyAuthMethod, type ParsedKey } from 'ssh2';
import { protocolOf, quickAuth } from '../../src/ssh/quick-auth.js';

const { Client, Server, utils } = ssh2;
const dir = mkdtempSync(path.join(os.tmpdir(), 'hoist-quick-auth-'));
const keygen = (name: string, type = 'ed25519') => {
  const f = path.join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', type, ...(type === 'rsa' ? ['-b', '2048'] : []), '-N', '', '-f', f]);
  return utils.parseKey(readFileSync(f)) as ParsedKey;
};
const hostKey = readFileSync((keygen('host'), path.join(dir, 'host')));
const allowed = keygen('allowed');
const refused = keygen('refused');
const rsa = keygen('rsa', 'rsa');

interface Seen {
  /** Each publickey request: whether it came signed, and for which key. */
  attempts: { signed: boolean; allowed: boolean }[];
}

/** An SSH server that takes `ok` keys only, verifying their signatures, and notes every publickey request. */
async function server(ok: ParsedKey[]): Promise<{ port: number; seen: Seen; close(): void }> {
  const seen: Seen = { attempts: [] };
  const srv = new Server({ hostKeys: [hostKey] }, (client) => {
    client.on('authentication', (ctx) => {
      if (ctx.method !== 'publickey') return ctx.reject(['publickey']);
      const key = ok.find((k) => k.getPublicSSH().equals(ctx.key.data));
      seen.attempts.push({ signed: !!ctx.signature, allowed: !!key });
      if (!key) return ctx.reject(['publickey']);
      if (!ctx.signature) return ctx.accept();
      return key.verify(ctx.blob!, ctx.signature, ctx.hashAlgo) === true ? ctx.accept() : ctx.reject(['publickey']);
    });
    client.on('ready', () => client.end());
    client.on('error', () => undefined);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  return { port: (srv.address() as net.AddressInfo).port, seen, close: () => srv.close() };
}

/**
 * Logs in and returns the round trips the login took after the key exchange: each time the client
 * had to wait for a message before sending its next one (from ssh2's own message log).
 */
async function login(port: number, methods: AnyAuthMethod[], quick: boolean): Promise<{ ok: boolean; waits: number }> {
  const c = new Client();
  const lines: string[] = [];
  const done = new Promise<boolean>((resolve) => {
    c.on('ready', () => resolve(true));
    c.on('error', () => resolve(false));
  });
  c.connect({ host: '127.0.0.1', port, username: 'root', authHandler: methods, debug: (s) => lines.push(s), hostVerifier: () => true });
  if (quick) assert.ok(quickAuth(c, methods), 'ssh2 no longer exposes what quickAuth hooks into');
  const ok = await done;
  c.end();
  const from = lines.findIndex((l) => l.includes('SERVICE_REQUEST'));
  const to = lines.findIndex((l) => l.includes('USERAUTH_SUCCESS'));
  let waits = 0;
  let heard = false;
  for (const l of lines.slice(from, to < 0 ? undefined : to)) {
    if (/^Inbound/.test(l)) heard = true;
    else if (/^Outbound: Sending/.test(l) && heard) {
      waits++;
      heard = false;
    }
  }
  return { ok, waits };
}

const srv = await server([allowed, rsa]);
after(() => srv.close());
const pk = (key: ParsedKey): AnyAuthMethod => ({ type: 'publickey', username: 'root', key: key as unknown as Buffer });

test('ssh2 still has the protocol methods quickAuth replaces', () => {
  const c = new Client();
  c.on('error', () => undefined);
  c.connect({ host: '127.0.0.1', port: srv.port, username: 'root', authHandler: [pk(allowed)], hostVerifier: () => true });
  assert.ok(protocolOf(c));
  c.end();
});

test('a key file logs in with its signature sent behind the service request: no round trip of its own', async () => {
  srv.seen.attempts.length = 0;
  const before = await login(srv.port, [pk(allowed)], false);
  assert.equal(before.ok, true);
  assert.deepEqual(
    srv.seen.attempts,
    [
      { signed: false, allowed: true },
      { signed: true, allowed: true },
    ],
    'ssh2 alone asks first, then signs',
  );
  assert.equal(before.waits, 2, 'ssh2 alone: SERVICE_ACCEPT, then the query answer');
  srv.seen.attempts.length = 0;
  const quick = await login(srv.port, [pk(allowed)], true);
  assert.equal(quick.ok, true);
  assert.deepEqual(srv.seen.attempts, [{ signed: true, allowed: true }]);
  assert.equal(quick.waits, 0, 'the login request goes out with the service request');
});

test('a refused key first: the next key is still tried, signed at once, and logs in', async () => {
  srv.seen.attempts.length = 0;
  const r = await login(srv.port, [pk(refused), pk(allowed)], true);
  assert.equal(r.ok, true);
  assert.deepEqual(srv.seen.attempts, [
    { signed: true, allowed: false },
    { signed: true, allowed: true },
  ]);
  assert.equal(r.waits, 1, 'one answer awaited: the refusal of the first key');
});

test('an RSA key is not sent ahead (its signature algorithm comes from the server) but still signs without a query', async () => {
  srv.seen.attempts.length = 0;
  const r = await login(srv.port, [pk(rsa)], true);
  assert.equal(r.ok, true);
  assert.deepEqual(srv.seen.attempts, [{ signed: true, allowed: true }]);
  assert.equal(r.waits, 1);
});

test('no key the server takes: the login fails as before, after trying each once', async () => {
  srv.seen.attempts.length = 0;
  const r = await login(srv.port, [pk(refused)], true);
  assert.equal(r.ok, false);
  assert.deepEqual(srv.seen.attempts, [{ signed: true, allowed: false }]);
});
