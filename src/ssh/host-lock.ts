import { HOIST_STATE_DIR } from '../host-paths.js';
import { quote } from './quote.js';
import { HostError } from '../util/errors.js';
import { printable } from '../util/printable.js';
import { lockHeldError } from './commands-gate.js';
import { LOCK_GENERATION, LOCK_HOLDER } from './lock-files.js';
import type { HostSession } from './session.js';

export interface HostLock {
  /** Who held the lock before, when that run was killed before it could clean up. */
  staleHolder?: string;
  /**
   * How many times the lock had been taken before this run took it. A plan made before the lock
   * still stands when this equals what the plan's round trip read and nobody held the lock then.
   */
  generation?: number;
  release(): Promise<void>;
}

/**
 * Read before anything else in the gathering round trip: the generation first, then the holder. The
 * lock script writes the holder before it counts, so a run that took the lock before this read shows
 * up either in the holder or in a generation that changed by the time this run takes the lock.
 */
export const LOCK_STATE_PROBE = `{ g=$(<${LOCK_GENERATION}); } 2>/dev/null; echo "gen \${g:-0}"; if [ -s ${LOCK_HOLDER} ]; then echo held; else echo free; fi`;

export function parseLockState(out: string): { generation: number; held: boolean } | undefined {
  const m = /^gen (\d+)\n(held|free)$/.exec(out.trim());
  return m ? { generation: Number(m[1]), held: m[2] === 'held' } : undefined;
}

/**
 * The lock holder's script. One brace group: bash parses it whole before running it, so `cat` holding
 * the lock reads only what comes after the script (nothing, until release() closes stdin) and not its
 * own last lines.
 */
export function lockScript(holder: string, waitSeconds: number): string {
  const dir = HOIST_STATE_DIR;
  return `{
mkdir -p ${dir} && exec 9>>${dir}/lock || exit 70
if ! flock ${waitSeconds > 0 ? `-w ${Math.floor(waitSeconds)}` : '-n'} 9; then echo "busy $(cat ${LOCK_HOLDER} 2>/dev/null)"; exit 75; fi
if [ -s ${LOCK_HOLDER} ]; then echo "stale $(cat ${LOCK_HOLDER})"; fi
printf '%s\\n' ${quote(holder)} > ${LOCK_HOLDER} || exit 70
{ g=$(<${LOCK_GENERATION}); } 2>/dev/null; g=\${g:-0}; echo "gen $g"; { echo $((g + 1)) > ${LOCK_GENERATION}.new && mv -f ${LOCK_GENERATION}.new ${LOCK_GENERATION}; } || exit 70
echo locked
cat >/dev/null
rm -f ${LOCK_HOLDER}
}
`;
}

export type LockOutput = { state: 'locked'; staleHolder?: string; generation?: number } | { state: 'busy'; holder?: string } | { state: 'pending' };

export function parseLockOutput(out: string): LockOutput {
  const busy = /^busy ?(.*)$/m.exec(out);
  if (busy) return { state: 'busy', holder: busy[1].trim() || undefined };
  if (/^locked$/m.test(out)) {
    const gen = /^gen (\d+)$/m.exec(out)?.[1];
    return { state: 'locked', staleHolder: /^stale (.*)$/m.exec(out)?.[1], generation: gen === undefined ? undefined : Number(gen) };
  }
  return { state: 'pending' };
}

/**
 * Takes hoist's per-host lock: flock(1) held by a command that lives as long as this SSH channel.
 * A killed hoist closes its connection, sshd ends the command and the kernel drops the lock, so a
 * lock can't outlive its run; the holder file left behind only tells who it was.
 */
export async function takeHostLock(s: HostSession, holder: string, waitSeconds: number): Promise<HostLock> {
  let out = '';
  const { ch } = await s.open('bash -s', s.becomes, (d) => (out += d.toString()));
  const taking = new Promise<HostLock>((resolve, reject) => {
    let settled = false;
    ch.on('data', (d: Buffer) => {
      out += d.toString();
      if (settled) return;
      const v = parseLockOutput(out);
      if (v.state !== 'locked') return;
      settled = true;
      s.holdsHostLock = true;
      resolve({
        staleHolder: v.staleHolder,
        generation: v.generation,
        release: () =>
          new Promise<void>((done) => {
            s.holdsHostLock = false;
            if (s.isClosed) return done();
            // Bounded: on a dying link the close may never come, and the lock dies with the session anyway.
            const t = setTimeout(done, 3000);
            ch.once('close', () => {
              clearTimeout(t);
              done();
            });
            ch.end();
          }),
      });
    });
    ch.on('close', (code: number | null) => {
      if (settled) return;
      settled = true;
      const v = parseLockOutput(out);
      if (v.state === 'busy') {
        reject(lockHeldError(s.endpoint.name, v.holder, waitSeconds));
      } else reject(new HostError(`${s.endpoint.name}: cannot take the host lock (exit ${code}): ${printable(out.trim().split('\n').slice(-3).join(' '))}`));
    });
    ch.write(lockScript(holder, waitSeconds));
  });
  return s.guard(taking, 'taking the host lock');
}
