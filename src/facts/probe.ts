import { randomBytes } from 'node:crypto';
import type { HostConnection } from '../ssh/connection.js';
import { FACTS_SCRIPT, SYSTEM_STATE, parseFacts, type Facts } from './facts.js';
import { CLOCK_READ, clockReading, parseClock } from './clock.js';
import { LOCK_STATE_PROBE, parseLockState } from '../ssh/host-lock.js';
import { fileBatchScript, packageBatchScript, parseFileBatch, parsePackageBatch, type FileRead, type FileState, type PackageRead } from './reads.js';
import { HostError } from '../util/errors.js';

/** A read-only shell snippet, or a declarative read batched with every other of its kind. */
export type Probe = string | FileRead | PackageRead;

export interface ProbeResult {
  out: string;
  code: number;
  /** For a file read: the file as the host has it. */
  file?: FileState;
  /** For a package read: which of its names are installed. */
  installed?: ReadonlySet<string>;
}

/** Read-only sections for one round trip: `before` in order, then `together` side by side, then `after` in order. */
export interface SectionPlan {
  before?: [string, string][];
  together: Map<string, string>;
  after?: [string, string][];
}

/**
 * How many sections of `together` run at once on the host. The containerd playbook's slow reads are
 * five Go binaries (ctr, containerd, crictl) of ~20-50 ms of CPU each; side by side a host answers
 * in about the time of the slowest instead of their sum. The bound keeps a playbook with many probes
 * from starting them all at once on a small host.
 */
export const SECTIONS_AT_ONCE = 8;

/**
 * Facts and every task's read-only probes go to the host as ONE script, so planning a whole
 * playbook costs one round trip. Each section runs in its own subshell with stderr folded in, and
 * its output is framed by a per-run random marker that no command output can forge.
 *
 * `together` sections run concurrently in groups of SECTIONS_AT_ONCE, each in a process substitution
 * that one cat reads to its end in the given order, so the output is the same as one after another.
 * A section blocked on a full pipe only waits for its turn to be read.
 */
export function sectionsScript(mark: string, plan: SectionPlan, atOnce = SECTIONS_AT_ONCE): string {
  // Every section: a subshell of its own, stdin empty, stderr folded in.
  const subshell = (body: string) => `(\n${body}\n) </dev/null 2>&1`;
  const framed = (id: string, body: string) => `echo '${mark} begin ${id}'\n${subshell(body)}\necho "${mark} end $?"`;
  const lines = (plan.before ?? []).map(([id, body]) => framed(id, body));
  const together = [...plan.together];
  // Each body is a function first: inside <( ) bash scans the text as a command substitution, which
  // older versions get wrong around an unbalanced `case` pattern's `)`; a function body is parsed normally.
  together.forEach(([, body], i) => lines.push(`__section${i}() {\n${subshell(body)}\n}`));
  const piped = (i: number) => `<(echo '${mark} begin ${together[i][0]}'; __section${i}; echo "${mark} end $?")`;
  // One cat reads the pipes to their ends in order, while every section of the group runs; found
  // through the system's default PATH, so a section probing with a bare PATH still gets its answer.
  for (let i = 0; i < together.length; i += atOnce)
    lines.push(
      `command -p cat ${together
        .slice(i, i + atOnce)
        .map((_s, j) => piped(i + j))
        .join(' ')}`,
    );
  lines.push(...(plan.after ?? []).map(([id, body]) => framed(id, body)));
  return lines.join('\n');
}

/** Runs read-only snippets in one round trip, each framed and with its own exit code. */
export async function runSections(conn: Pick<HostConnection, 'exec'>, plan: SectionPlan): Promise<Map<string, ProbeResult>> {
  const mark = `@@hoist-${randomBytes(8).toString('hex')}`;
  const script = sectionsScript(mark, plan);
  if (process.env.HOIST_DUMP_SCRIPT) (await import('node:fs')).writeFileSync(process.env.HOIST_DUMP_SCRIPT, script);
  const r = await conn.exec(script);
  const results = parseSections(r.stdout, mark);
  for (const [id] of [...(plan.before ?? []), ...plan.together, ...(plan.after ?? [])]) if (!results.has(id)) results.set(id, { out: r.stderr, code: 255 });
  return results;
}

export interface Gathered {
  facts: Facts;
  results: Map<string, ProbeResult>;
  /** The host lock as the round trip found it before reading anything else (undefined: unreadable). */
  lock?: { generation: number; held: boolean };
}

/** `systemState`: read systemd's overall state too (only `hoist facts` asks; nothing plans from it). */
export async function gather(conn: Pick<HostConnection, 'exec'>, probes: Map<string, Probe>, opts: { systemState?: boolean } = {}): Promise<Gathered> {
  const scripts = new Map<string, string>();
  const files = new Map<string, FileRead>();
  const packages = new Map<string, PackageRead>();
  for (const [id, p] of probes) {
    if (typeof p === 'string') scripts.set(id, p);
    else if (p.read === 'file') files.set(id, p);
    else packages.set(id, p);
  }
  const batches: [string, string][] = [];
  if (files.size) batches.push(['__files', fileBatchScript([...files.values()])]);
  if (packages.size) batches.push(['__packages', packageBatchScript([...packages.values()].flatMap((p) => p.names))]);
  const sent = Date.now();
  // The clock is read first and last, around everything; the lock before anything it guards.
  const results = await runSections(conn, {
    before: [
      ['__clock0', CLOCK_READ],
      ['__lock', LOCK_STATE_PROBE],
    ],
    together: new Map([['__facts', opts.systemState ? `${FACTS_SCRIPT}${SYSTEM_STATE}` : FACTS_SCRIPT], ...batches, ...scripts]),
    after: [['__clock1', CLOCK_READ]],
  });
  const received = Date.now();
  const facts = results.get('__facts')!;
  const first = parseClock(results.get('__clock0')?.out ?? '');
  const last = parseClock(results.get('__clock1')?.out ?? '');
  const clock = first !== undefined && last !== undefined ? clockReading(sent, received, first, last) : undefined;
  if (facts.code === 255 && !facts.out) throw new HostError(`fact gathering produced no output: ${facts.out.trim()}`);
  const lock = parseLockState(results.get('__lock')?.out ?? '');
  if (files.size) {
    const r = results.get('__files')!;
    const found = r.code === 0 ? parseFileBatch(r.out, [...files.values()]) : undefined;
    for (const [id, f] of files) {
      const st = found?.get(f.path);
      results.set(id, !found || !st ? { out: r.out, code: r.code } : 'error' in st ? { out: st.error, code: 1 } : { out: '', code: 0, file: asAsked(st, f) });
    }
  }
  if (packages.size) {
    const r = results.get('__packages')!;
    const installed = r.code === 0 ? parsePackageBatch(r.out) : undefined;
    for (const [id, p] of packages)
      results.set(id, installed ? { out: '', code: 0, installed: new Set(p.names.filter((n) => installed.has(n))) } : { out: r.out, code: r.code });
  }
  for (const internal of ['__clock0', '__clock1', '__lock', '__facts', '__files', '__packages']) results.delete(internal);
  return { facts: { ...parseFacts(facts.out), ...(clock ? { clock } : {}) }, results, lock };
}

/** A file read twice gets one state; each read sees the content only if it asked for it (a secret's stays out of another's diff). */
function asAsked(st: FileState, f: FileRead): FileState {
  const { content, ...rest } = st;
  return f.content !== 'none' && content ? { ...rest, content } : rest;
}

export function parseSections(stdout: string, mark: string): Map<string, ProbeResult> {
  const out = new Map<string, ProbeResult>();
  let current: string | null = null;
  let buf: string[] = [];
  for (const line of stdout.split('\n')) {
    if (line.startsWith(`${mark} begin `)) {
      current = line.slice(mark.length + 7);
      buf = [];
    } else if (current !== null && line.startsWith(`${mark} end `)) {
      out.set(current, { out: buf.join('\n'), code: Number(line.slice(mark.length + 5)) });
      current = null;
    } else if (current !== null) buf.push(line);
  }
  return out;
}
