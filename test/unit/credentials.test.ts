import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Credentials, type SecretSources } from '../../src/ssh/credentials.js';
import type { Endpoint } from '../../src/ssh/endpoint.js';
import { InputError, NoInputError } from '../../src/util/errors.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'hoist-cred-'));
const key = (name: string, pass = '') => {
  const f = path.join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', pass, '-C', name, '-f', f]);
  return f;
};
const mine = key('mine');
const other = key('other');
const locked = key('locked', 'open sesame');
const agentSock = path.join(dir, 'agent.sock');
const agent = spawn('ssh-agent', ['-D', '-a', agentSock], { stdio: 'ignore' });
after(() => agent.kill());

async function agentReady() {
  for (let i = 0; i < 100 && !existsSync(agentSock); i++) await new Promise((r) => setTimeout(r, 20));
  execFileSync('ssh-add', ['-q', mine, other], { env: { ...process.env, SSH_AUTH_SOCK: agentSock } });
}

const ep = (identityFiles: string[], identitiesOnly: boolean, extra: Partial<Endpoint> = {}): Endpoint => ({
  name: 'h1',
  host: '10.0.0.1',
  port: 22,
  user: 'deploy',
  identityFiles,
  identitiesOnly,
  connectTimeoutMs: 1000,
  commandTimeoutMs: 1000,
  ...extra,
});
const none: SecretSources = { passphrase: async () => undefined, becomePassword: async () => undefined };

test('agent keys: the configured one first, the others unless IdentitiesOnly; an encrypted key the agent lacks needs its passphrase', async () => {
  await agentReady();
  const saved = process.env.SSH_AUTH_SOCK;
  process.env.SSH_AUTH_SOCK = agentSock;
  try {
    const c = await Credentials.prepare([ep([mine], false)], none);
    assert.deepEqual(c.authFor(ep([mine], false)).described, ['2 agent key(s)']);
    assert.deepEqual(c.authFor(ep([mine], true)).described, ['1 agent key(s)'], 'IdentitiesOnly offers only the configured key');

    await assert.rejects(Credentials.prepare([ep([locked], false)], none), /locked is encrypted and not in the ssh-agent/);
    await assert.rejects(
      Credentials.prepare([ep([locked], false)], { ...none, passphrase: async () => ({ value: 'wrong', source: 'HOIST_SSH_PASSPHRASE' }) }),
      /cannot decrypt identity file .*locked with the passphrase from HOIST_SSH_PASSPHRASE: wrong passphrase/,
    );
    const ok = await Credentials.prepare([ep([locked], true)], { ...none, passphrase: async () => ({ value: 'open sesame', source: 't' }) });
    assert.deepEqual(ok.authFor(ep([locked], true)).described, [locked], 'the decrypted file, and no agent key under IdentitiesOnly');
  } finally {
    process.env.SSH_AUTH_SOCK = saved;
  }
});

test('become passwords: from a 0600 file (one read per file), refused when others can read it', async () => {
  const pw = path.join(dir, 'pw');
  writeFileSync(pw, 's3cret\n', { mode: 0o600 });
  const withFile = (f: string) => ep([mine], false, { name: 'h1', become: { user: 'root', passwordFile: f } });
  const c = await Credentials.prepare([withFile(pw), { ...withFile(pw), name: 'h2' }], none);
  assert.deepEqual(c.becomeFor(withFile(pw)), { user: 'root', password: 's3cret', passwordSource: `become_password_file ${pw}` });
  chmodSync(pw, 0o640);
  await assert.rejects(
    Credentials.prepare([withFile(pw), { ...withFile(pw), name: 'h2' }], none),
    /readable by others \(mode 0640\); chmod 600 it \(become_password_file of h1, h2\)/,
  );
});

test('Ctrl-D at the passphrase prompt of a default key (~/.ssh/id_ed25519) stops the run instead of skipping the key', async () => {
  const home = mkdtempSync(path.join(os.tmpdir(), 'hoist-home-'));
  execFileSync('mkdir', ['-m', '700', path.join(home, '.ssh')]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'open sesame', '-f', path.join(home, '.ssh', 'id_ed25519')]);
  const saved = process.env.HOME;
  process.env.HOME = home;
  try {
    await assert.rejects(
      Credentials.prepare([ep([], false)], {
        ...none,
        passphrase: async () => {
          throw new NoInputError();
        },
      }),
      (e: Error) => e instanceof InputError && /identity file .*id_ed25519: no input/.test(e.message),
    );
    // A default key that can't be used for another reason is still skipped, as ssh skips it.
    await Credentials.prepare([ep([], false)], none);
  } finally {
    process.env.HOME = saved;
  }
});
