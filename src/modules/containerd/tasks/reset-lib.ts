import { quote } from '../../../ssh/quote.js';
import { DATA_DIR_RECORD, DRAIN_RECORD, HOIST_STATE_DIR, TEMP_JOURNAL, TEMP_MARK } from '../../../host-paths.js';

/*
 * What a reset reads and does besides removing files: the container tasks that would outlive
 * containerd, and hoist's own bookkeeping in HOIST_STATE_DIR once containerd's records are gone.
 */

export interface Workloads {
  tasks: { ns: string; id: string; status: string }[];
  /** containerd-shim processes on the host (they run a container each, or a pod's). */
  shims: number;
}

const ctrAt = (ctr: string, socket: string) => `${ctr} --address ${quote(socket)}`;

/** Bash: "task NS ID STATUS" for each task of every namespace (when containerd answers), then "shims N". */
export function workloadsProbe(ctr: string, socket: string): string {
  const c = ctrAt(ctr, socket);
  return `if [ -x ${ctr} ] && [ -S ${quote(socket)} ]; then for ns in $(${c} namespaces ls -q 2>/dev/null); do ${c} -n "$ns" tasks ls 2>/dev/null | awk -v ns="$ns" 'NR > 1 && NF >= 3 {print "task", ns, $1, $3}'; done; fi
echo "shims $(pgrep -c containerd-shim 2>/dev/null || true)"`;
}

export function parseWorkloads(out: string): Workloads {
  const tasks: Workloads['tasks'] = [];
  let shims = 0;
  for (const line of out.split('\n')) {
    const t = /^task (\S+) (\S+) (\S+)$/.exec(line.trim());
    if (t) tasks.push({ ns: t[1], id: t[2], status: t[3] });
    const n = /^shims (\d+)$/.exec(line.trim());
    if (n) shims = Number(n[1]);
  }
  return { tasks, shims };
}

/**
 * Bash that kills every task of every namespace, deletes the tasks (their shims exit) and the
 * containers with their snapshots, while containerd still runs: started for it when shims run
 * without it. Fails when a task is left.
 */
export function stopWorkloadsScript(ctr: string, socket: string): string {
  const c = ctrAt(ctr, socket);
  const tasks = (ns: string) => `${c} -n ${ns} tasks ls 2>/dev/null | awk 'NR > 1 {print $1}'`;
  return `set -u
if ! ${c} version >/dev/null 2>&1; then systemctl start containerd.service >/dev/null 2>&1 || true; for i in $(seq 100); do ${c} version >/dev/null 2>&1 && break; sleep 0.2; done; fi
for ns in $(${c} namespaces ls -q); do
  for t in $(${tasks('"$ns"')}); do ${c} -n "$ns" tasks kill -a -s SIGKILL "$t" >/dev/null 2>&1 || true; done
  for t in $(${tasks('"$ns"')}); do for i in $(seq 100); do ${c} -n "$ns" tasks delete -f "$t" >/dev/null 2>&1 && break; sleep 0.1; done; done
  for k in $(${c} -n "$ns" containers ls -q); do ${c} -n "$ns" containers delete "$k" >/dev/null 2>&1 || echo "container $ns/$k could not be removed" >&2; done
done
left=$(for ns in $(${c} namespaces ls -q); do ${tasks('"$ns"')}; done | wc -l)
if [ "$left" != 0 ]; then echo "$left container task(s) are still there after being killed" >&2; exit 1; fi`;
}

/** Entries of HOIST_STATE_DIR that belong to the host lock: they stay while the run holds it. */
const LOCK_ENTRIES = ['lock', 'lock.gen', 'lock.holder', 'commands.lock'];
/** Entries a reset removes (containerd's records, artifacts, staging) or empties. */
const RESET_ENTRIES = ['containerd', 'artifacts', 'staging', 'stamps', 'data-dirs', TEMP_JOURNAL.slice(HOIST_STATE_DIR.length + 1)];

/** Bash: every entry of HOIST_STATE_DIR, then every stamp and data-dir record, for the plan to say what stays. */
export const BOOKKEEPING_PROBE = `if [ -d ${HOIST_STATE_DIR} ]; then ls -A ${HOIST_STATE_DIR} | sed 's/^/entry /'; ls -A ${HOIST_STATE_DIR}/stamps 2>/dev/null | sed 's/^/stamp /'; cut -f3- ${DATA_DIR_RECORD} 2>/dev/null | sed 's/^/data /'; fi; true`;

export interface Bookkeeping {
  /** Other hoist-managed state that stays, each with why. */
  others: string[];
  /** The data directories hoist's records still name. */
  dataDirs: string[];
}

export function parseBookkeeping(out: string): Bookkeeping {
  const others: string[] = [];
  const dataDirs: string[] = [];
  for (const line of out.split('\n')) {
    const [kind, ...rest] = line.split(' ');
    const name = rest.join(' ');
    if (!name) continue;
    if (kind === 'data') dataDirs.push(name);
    else if (kind === 'stamp' && name !== 'containerd.service' && !name.startsWith(TEMP_MARK)) others.push(`stamps/${name} (a service hoist starts)`);
    else if (kind === 'entry' && !LOCK_ENTRIES.includes(name) && !RESET_ENTRIES.includes(name) && !name.startsWith(TEMP_MARK)) {
      others.push(
        name === DRAIN_RECORD.slice(HOIST_STATE_DIR.length + 1)
          ? `${name} (a drain record: after_host hooks are owed)`
          : `${name} (${name.includes('.') ? 'hoist state' : `the ${name} module's records`})`,
      );
    }
  }
  return { others, dataDirs };
}

/**
 * Bash, last in a reset: hoist's bookkeeping goes where it is now empty (stamps, data-dir records,
 * the temporary-file journal). The lock's files stay: this run holds the lock, a run waiting for it
 * holds the file open, and the generation counter is what tells a run that planned before this one
 * that its plan no longer stands.
 */
export function bookkeepingScript(): string {
  const h = HOIST_STATE_DIR;
  return `rmdir ${h}/stamps 2>/dev/null; [ -s ${DATA_DIR_RECORD} ] || rm -f ${DATA_DIR_RECORD}; [ -s ${TEMP_JOURNAL} ] || rm -f ${TEMP_JOURNAL}; true`;
}
