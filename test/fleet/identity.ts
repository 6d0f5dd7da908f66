import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CACHE_DIR, IDENTITY_PATH, OPS_PASSWORD_PATH, STATE_DIR } from './paths.js';
import { $ } from './sh.js';

const CACHED_KEY = join(CACHE_DIR, 'identity', 'id_ed25519');
const CACHED_OPS_PASSWORD = join(CACHE_DIR, 'identity', 'ops-password');

/**
 * The harness login key. It lives in the cache next to the base image that trusts it (the public half
 * is baked into that image), and is copied into the state dir for tools and tests to use.
 */
export async function ensureIdentity(): Promise<{ privatePath: string; publicKey: string }> {
  if (!existsSync(CACHED_KEY)) {
    mkdirSync(join(CACHE_DIR, 'identity'), { recursive: true, mode: 0o700 });
    await $`ssh-keygen -q -t ed25519 -N ${''} -C hoist-fleet -f ${CACHED_KEY}`;
  }
  return { privatePath: CACHED_KEY, publicKey: readFileSync(`${CACHED_KEY}.pub`, 'utf8').trim() };
}

/**
 * The sudo password of `ops`, the user whose sudo asks for one. Made once per cache like the key,
 * because the base image bakes in its hash; random so no fleet shares a guessable password.
 */
export function ensureOpsPassword(): { path: string; password: string } {
  if (!existsSync(CACHED_OPS_PASSWORD)) {
    mkdirSync(join(CACHE_DIR, 'identity'), { recursive: true, mode: 0o700 });
    try {
      writeFileSync(CACHED_OPS_PASSWORD, `${randomBytes(18).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
    } catch (e) {
      // Another fleet process made it first; theirs is the one.
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
  return { path: CACHED_OPS_PASSWORD, password: readFileSync(CACHED_OPS_PASSWORD, 'utf8').trim() };
}

export async function installIdentity(): Promise<string> {
  const { privatePath } = await ensureIdentity();
  mkdirSync(STATE_DIR, { recursive: true });
  copyFileSync(privatePath, IDENTITY_PATH);
  chmodSync(IDENTITY_PATH, 0o600);
  copyFileSync(`${privatePath}.pub`, `${IDENTITY_PATH}.pub`);
  copyFileSync(ensureOpsPassword().path, OPS_PASSWORD_PATH);
  chmodSync(OPS_PASSWORD_PATH, 0o600);
  return IDENTITY_PATH;
}
