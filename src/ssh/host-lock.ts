import { HOIST_STATE_DIR } from '../host-paths.js';
import { quote } from './quote.js';

export interface HostLock {
  /** Who held the lock before, when that run was killed before it could clean up. */
  staleHolder?: string;
  release(): Promise<void>;
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
if ! flock ${waitSeconds > 0 ? `-w ${Math.floor(waitSeconds)}` : '-n'} 9; then echo "busy $(cat ${dir}/lock.holder 2>/dev/null)"; exit 75; fi
if [ -s ${dir}/lock.holder ]; then echo "stale $(cat ${dir}/lock.holder)"; fi
printf '%s\\n' ${quote(holder)} > ${dir}/lock.holder
echo locked
cat >/dev/null
rm -f ${dir}/lock.holder
}
`;
}

export type LockOutput = { state: 'locked'; staleHolder?: string } | { state: 'busy'; holder?: string } | { state: 'pending' };

export function parseLockOutput(out: string): LockOutput {
  const busy = /^busy ?(.*)$/m.exec(out);
  if (busy) return { state: 'busy', holder: busy[1].trim() || undefined };
  if (/^locked$/m.test(out)) return { state: 'locked', staleHolder: /^stale (.*)$/m.exec(out)?.[1] };
  return { state: 'pending' };
}
