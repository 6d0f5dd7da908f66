import { HOIST_STATE_DIR } from '../host-paths.js';
import { quote } from './quote.js';
import { HostError, LockHeldError } from '../util/errors.js';
import { printable } from '../util/printable.js';
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

/** The lock's generation counter and holder record, as the gathering round trip reads them. */
export const LOCK_GENERATION = `${HOIST_STATE_DIR}/lock.gen`;
export const LOCK_HOLDER = `${HOIST_STATE_DIR}/lock.holder`;

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

/** Exit status and stderr marker of a command refused at the commands.lock gate (another run holds the host). */
export const GATE_BUSY_EXIT = 75;
export const GATE_BUSY_MARK = 'hoist-lock-busy';
/** A stderr line the gate writes to be reported as a note (a killed run's command stopped). */
export const GATE_NOTE_MARK = 'hoist-note: ';

/**
 * The start of every privileged command: it holds commands.lock for its whole life, so a command a
 * killed run left running is never worked beside. When commands.lock is taken:
 * - by a command of this connection's own locked run (`holdsHostLock`): wait, it ends soon;
 * - while another live run holds the host lock: refuse at once naming the holder (75), or wait up to
 *   --lock-wait seconds;
 * - by a process no SSH session leads to any more (its run was killed): stop its process group, say
 *   so, and go on;
 * - otherwise (another run's read-only command): wait, it ends soon.
 */
export function commandsGate(opts: { holdsHostLock: boolean; waitSeconds: number }): string {
  const dir = HOIST_STATE_DIR;
  const busy = `{ echo "${GATE_BUSY_MARK} $(cat ${LOCK_HOLDER} 2>/dev/null)" >&2; exit ${GATE_BUSY_EXIT}; }`;
  const whenHeld = opts.waitSeconds > 0 ? `flock -w ${Math.floor(opts.waitSeconds)} 8 || ${busy}` : busy;
  const contended = opts.holdsHostLock
    ? 'flock 8'
    : `if ! flock -n ${dir}/lock true 2>/dev/null; then ${whenHeld}
else
  __o=; __live=; __mg=$(cat /proc/$$/stat); __mg=\${__mg##*) }; read -r _ _ __mg _ <<< "$__mg"
  for __f in $(exec 8>&-; find /proc/[0-9]*/fd -lname ${dir}/commands.lock 2>/dev/null); do
    __q=\${__f#/proc/}; __q=\${__q%%/*}; [ "$__q" = "$$" ] && continue
    __p=$__q; __l=; __gone=
    while [ "$__p" -gt 1 ] 2>/dev/null; do
      __c=$(cat /proc/$__p/comm 2>/dev/null) || { __gone=1; break; }
      case "$__c" in sshd*) __l=1; break;; esac
      __s=$(cat /proc/$__p/stat 2>/dev/null) || { __gone=1; break; }; __s=\${__s##*) }; read -r _ __p _ <<< "$__s"
    done
    [ -n "$__gone" ] && [ "$__p" = "$__q" ] && continue
    if [ -n "$__l" ] || [ -n "$__gone" ]; then __live=1; else __o="$__o $__q"; fi
  done
  if [ -n "$__o" ] && [ -z "$__live" ]; then
    __done=' '
    for __q in $__o; do
      __s=$(cat /proc/$__q/stat 2>/dev/null) || continue; __s=\${__s##*) }; read -r _ _ __g _ <<< "$__s"
      case "$__done" in *" $__g "*) continue;; esac; __done="$__done$__g "
      echo "${GATE_NOTE_MARK}stopped a command a killed hoist run left running (pid $__q: $(tr '\\0' ' ' < /proc/$__q/cmdline 2>/dev/null | head -c 160))" >&2
      if [ "$__g" -gt 1 ] 2>/dev/null && [ "$__g" != "$__mg" ]; then kill -TERM -- -$__g 2>/dev/null; else kill -TERM $__q 2>/dev/null; fi
    done
    flock -w 10 8 || { for __q in $__o; do kill -KILL $__q 2>/dev/null; done; flock 8; }
  else flock 8; fi
fi`;
  return `mkdir -p ${dir} 2>/dev/null; { exec 8>>${dir}/commands.lock; } 2>/dev/null
if ! flock -n 8 2>/dev/null; then ${contended}
fi
unset __done __o __live __mg __f __q __p __l __gone __c __s __g`;
}

/** Another hoist run holds the host's lock: a wrapper may retry later (exit 5). */
export function lockHeldError(host: string, holder: string | undefined, waitSeconds: number): LockHeldError {
  return new LockHeldError(
    `${host} is locked by another hoist run${holder ? ` (${printable(holder)})` : ''}${waitSeconds > 0 ? ` after waiting ${waitSeconds} s` : ''}; use --lock-wait to wait for it`,
    holder,
  );
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
