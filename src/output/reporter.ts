import type { RunEvents, HostReport, TaskReport } from '../runner/report.js';
import { formatTaskLine, hostLine, color } from './format.js';
import { terminalText } from '../util/printable.js';
import { HostError } from '../util/errors.js';

export interface Reporter extends RunEvents {
  start(hosts: string[]): void;
  stop(): Promise<void>;
  /** The first SIGINT/SIGTERM: hosts finish their current step and start nothing new. */
  interrupted(signal: string): void;
}

/** From this many hosts on, lines per host give way to counts per task and the failures in full. */
export const COMPACT_FROM_HOSTS = 50;
/** A long download says how far it got this often in a log. */
const PROGRESS_EVERY_MS = 10_000;

/**
 * Plain lines: for pipes, CI logs and --json runs (where they go to stderr). A failure is told once,
 * on its host's line; a download is a line when it starts, when it ends, and every 10 s between.
 */
export class PlainReporter implements Reporter {
  private compact = false;
  private readonly taskCounts = new Map<string, { changed: number; failed: number }>();
  private hostsDone = 0;
  private hostsTotal = 0;
  private lastCompactLine = 0;
  private readonly downloads = new Map<string, { started: number; lastLine: number }>();

  constructor(
    private readonly out: NodeJS.WritableStream = process.stdout,
    private readonly quiet = false,
  ) {}

  private write(text: string): void {
    this.out.write(terminalText(text));
  }

  start(hosts: string[]) {
    this.hostsTotal = hosts.length;
    this.compact = hosts.length >= COMPACT_FROM_HOSTS;
    if (this.compact && !this.quiet) this.write(color.dim(`${hosts.length} hosts: compact output (counts per task; failures in full)`) + '\n');
  }

  async stop() {
    if (this.compact && !this.quiet) this.writeCounts(true);
  }

  hostPhase() {}

  taskDone(host: string, t: TaskReport) {
    if (this.quiet) return;
    if (this.compact) {
      const c = this.taskCounts.get(t.title) ?? { changed: 0, failed: 0 };
      if (t.status === 'changed') c.changed++;
      if (t.status === 'failed') c.failed++;
      this.taskCounts.set(t.title, c);
      return;
    }
    // Failed tasks are told by their host's line; unchanged ones are not news.
    if (t.status === 'failed' || (t.status === 'ok' && t.changes.length === 0)) return;
    this.write(formatTaskLine(host, t) + '\n');
  }

  hostDone(h: HostReport) {
    this.hostsDone++;
    if (this.quiet) return;
    if (!this.compact || h.status === 'failed' || h.status === 'unreachable') this.write(hostLine(h) + '\n');
    if (this.compact && Date.now() - this.lastCompactLine > PROGRESS_EVERY_MS) this.writeCounts(false);
  }

  private writeCounts(final: boolean) {
    this.lastCompactLine = Date.now();
    const per = [...this.taskCounts].map(([title, c]) => `${title}: ${c.changed} changed${c.failed ? `, ${c.failed} failed` : ''}`);
    this.write(color.dim(`${final ? 'done' : 'progress'}: ${this.hostsDone}/${this.hostsTotal} hosts${per.length ? `; ${per.join('; ')}` : ''}`) + '\n');
  }

  progress(label: string, done: number, total: number | undefined) {
    if (this.quiet) return;
    const now = Date.now();
    const d = this.downloads.get(label);
    const size = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
    if (!d) {
      this.downloads.set(label, { started: now, lastLine: now });
      this.write(color.dim(`download ${label}: started${total ? ` (${size(total)})` : ''}`) + '\n');
      if (total !== undefined && done >= total) this.finish(label, done, now);
      return;
    }
    if (total !== undefined && done >= total) return this.finish(label, done, now);
    if (now - d.lastLine >= PROGRESS_EVERY_MS) {
      d.lastLine = now;
      this.write(color.dim(`download ${label}: ${size(done)}${total ? ` of ${size(total)}` : ''}`) + '\n');
    }
  }

  private finish(label: string, bytes: number, now: number) {
    const d = this.downloads.get(label);
    if (!d || d.lastLine < 0) return;
    d.lastLine = -1;
    this.write(color.dim(`download ${label}: done, ${(bytes / 1e6).toFixed(1)} MB in ${((now - d.started) / 1000).toFixed(1)} s`) + '\n');
  }

  interrupted(signal: string) {
    process.stderr.write(`interrupted by ${signal}: each host finishes its current step and starts nothing new (Ctrl-C again to stop at once)\n`);
  }

  message(text: string) {
    this.write(text + '\n');
  }
}

type ListrModule = typeof import('listr2');
interface HostSlot {
  setTitle(t: string): void;
  /** A line that stays under the host's row, in the scrollback too: what a task changed. */
  addLine(line: string): void;
  done(h: HostReport): void;
  /** The run ended without this host's report (bad input found late, a failed download): the row ends. */
  abandon(why: string): void;
}

/**
 * A live line per host on a terminal, drawn by listr2, with a line under it per changed task that
 * stays in the scrollback after the run (as Ansible's task lines do).
 */
export class ListrReporter implements Reporter {
  private slots = new Map<string, HostSlot>();
  private pending = new Map<string, HostReport>();
  private lines = new Map<string, string[]>();
  private phase = new Map<string, string>();
  private running?: Promise<unknown>;
  private stopping?: string;
  private downloads = new Map<string, string>();

  constructor(private readonly listr: ListrModule) {}

  static async create(): Promise<ListrReporter> {
    return new ListrReporter(await import('listr2'));
  }

  start(hosts: string[]) {
    if (this.running) return;
    const { Listr } = this.listr;
    const list = new Listr(
      hosts.map((name) => ({
        title: terminalText(`${name}: waiting`),
        rendererOptions: { outputBar: Infinity, persistentOutput: true },
        task: (_ctx: unknown, task: { title: string; output: string; skip(message?: string): void }) =>
          new Promise<void>((resolve, reject) => {
            let settled = false;
            const slot: HostSlot = {
              setTitle: (t) => {
                if (!settled) task.title = terminalText(`${name}: ${t}`);
              },
              addLine: (line) => (task.output = terminalText(line)),
              done: (h) => {
                if (settled) return;
                settled = true;
                task.title = terminalText(hostLine(h));
                if (h.status === 'failed' || h.status === 'unreachable') reject(new HostError(h.error ?? h.status));
                else resolve();
              },
              abandon: (why) => {
                if (settled) return;
                settled = true;
                task.skip(`${name}: ${why}`);
                resolve();
              },
            };
            this.slots.set(name, slot);
            // listr2 starts a row's task after the run may have told its first phase (connecting).
            const phase = this.phase.get(name);
            if (phase) slot.setTitle(phase);
            for (const l of this.lines.get(name) ?? []) slot.addLine(l);
            const early = this.pending.get(name);
            if (early) slot.done(early);
            else if (this.stopping) slot.abandon(this.stopping);
          }),
      })),
      // hoist handles SIGINT itself (listr2's own handler exits 127); the rows settle in stop().
      { concurrent: true, exitOnError: false, registerSignalListeners: false, rendererOptions: { collapseErrors: false, showErrorMessage: false } },
    );
    this.running = list.run().catch(() => undefined);
  }

  /** Ends the view: a row whose host never reported (the run stopped before it) ends as "not run". */
  async stop() {
    if (!this.running) return;
    this.stopping ??= 'not run';
    for (const s of this.slots.values()) s.abandon(this.stopping);
    await this.running;
  }

  hostPhase(host: string, phase: string) {
    this.phase.set(host, phase);
    this.slots.get(host)?.setTitle(phase);
  }

  taskDone(host: string, t: TaskReport) {
    if (!t.changes.length) return;
    this.slots.get(host)?.setTitle(`${t.title}: ${t.status}`);
    const line = formatTaskLine(host, t);
    this.lines.set(host, [...(this.lines.get(host) ?? []), line]);
    this.slots.get(host)?.addLine(line);
  }

  hostDone(h: HostReport) {
    const slot = this.slots.get(h.name);
    if (slot) slot.done(h);
    else this.pending.set(h.name, h);
  }

  progress(label: string, done: number, total: number | undefined) {
    const text = total ? `${label} ${Math.floor((done / total) * 100)}%` : `${label} ${(done / 1e6).toFixed(1)} MB`;
    if (this.downloads.get(label) === text) return;
    this.downloads.set(label, text);
    for (const s of this.slots.values()) s.setTitle(`downloading ${text}`);
  }

  interrupted(signal: string) {
    this.stopping = `not run (interrupted by ${signal})`;
    for (const [host, s] of this.slots)
      s.setTitle(`${this.phase.get(host) ?? 'waiting'} (interrupted by ${signal}: finishing this step, starting nothing new)`);
  }

  message(text: string) {
    process.stderr.write(terminalText(text) + '\n');
  }
}

export async function makeReporter(json: boolean, hostCount = 0, verbose = false): Promise<Reporter> {
  if (json) return new PlainReporter(process.stderr);
  // -v lines arrive as they happen; a live view would hold them back until it ends.
  if (verbose) return new PlainReporter();
  // A terminal that reports no width (some pseudo-terminals) would have listr2 wrap every character;
  // from COMPACT_FROM_HOSTS hosts on, a line per host no longer fits a screen: counts instead.
  const tty = process.stdout.isTTY && !process.env.CI && process.env.TERM !== 'dumb' && (process.stdout.columns ?? 0) >= 40 && hostCount < COMPACT_FROM_HOSTS;
  return tty ? ListrReporter.create() : new PlainReporter();
}
