import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CACHE_DIR, IDENTITY_PATH, STATE_DIR } from './paths.js';
import { $ } from './sh.js';

const CACHED_KEY = join(CACHE_DIR, 'identity', 'id_ed25519');

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

export async function installIdentity(): Promise<string> {
  const { privatePath } = await ensureIdentity();
  mkdirSync(STATE_DIR, { recursive: true });
  copyFileSync(privatePath, IDENTITY_PATH);
  chmodSync(IDENTITY_PATH, 0o600);
  copyFileSync(`${privatePath}.pub`, `${IDENTITY_PATH}.pub`);
  return IDENTITY_PATH;
}
