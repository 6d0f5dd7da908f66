import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { $ } from 'zx';

// Harness commands are plumbing: show their output only when they fail (zx puts it in the error).
$.verbose = false;
$.quiet = true;

export { $ };

export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function log(msg: string): void {
  if (process.env.HOIST_FLEET_QUIET !== '1') process.stderr.write(`[fleet] ${msg}\n`);
}

/** Poll `check` until it returns a value or `timeoutMs` passes. */
export async function waitFor<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Remove cached builds of `<prefix>-<hash>` other than `keep` (older inputs), unless something is
 * mounted from them (a running fleet's overlay lower dir).
 */
export function pruneStale(cacheDir: string, prefix: string, keep: string): void {
  const mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
  for (const e of readdirSync(cacheDir)) {
    const p = join(cacheDir, e);
    if (!new RegExp(`^${prefix}-[0-9a-f]{16}(\\.tmp|\\.work)?$`).test(e) || p === keep || mountinfo.includes(p)) continue;
    rmSync(p, { recursive: true, force: true });
  }
}
