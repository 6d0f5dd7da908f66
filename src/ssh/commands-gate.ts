import { HOIST_STATE_DIR } from '../host-paths.js';
import { LockHeldError } from '../util/errors.js';
import { printable } from '../util/printable.js';
import { LOCK_HOLDER } from './lock-files.js';

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
