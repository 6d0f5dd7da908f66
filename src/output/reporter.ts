import type { RunEvents, HostReport, TaskReport } from '../runner/report.js';
import { formatTaskLine, hostLine, color } from './format.js';
import { terminalText } from '../util/printable.js';

export interface Reporter extends RunEvents {
  start(hosts: string[]): void;
  stop(): Promise<void>;
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

  constructor(private readonly out: NodeJS.WritableStream = process.stdout, private readonly quiet = false) {}

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

  message(text: string) {
    this.write(text + '\n');
  }
}

type ListrModule = typeof import('listr2');
interface HostSlot {
  setTitle(t: string): void;
  done(h: HostReport): void;
}

/** A live line per host on a terminal, drawn by listr2. */
export class ListrReporter implements Reporter {
  private slots = new Map<string, HostSlot>();
  private pending = new Map<string, HostReport>();
  private running?: Promise<unknown>;
  private downloads = new Map<string, string>();

  constructor(private readonly listr: ListrModule) {}

  static async create(): Promise<ListrReporter> {
    return new ListrReporter(await import('listr2'));
  }

  start(hosts: string[]) {
    const { Listr } = this.listr;
    const list = new Listr(
      hosts.map((name) => ({
        title: terminalText(`${name}: waiting`),
        task: (_ctx: unknown, task: { title: string; output: string }) =>
          new Promise<void>((resolve, reject) => {
            const slot: HostSlot = {
              setTitle: (t) => (task.title = terminalText(`${name}: ${t}`)),
              done: (h) => {
                task.title = terminalText(hostLine(h));
                if (h.status === 'failed' || h.status === 'unreachable') reject(new Error(h.error ?? h.status));
                else resolve();
              },
            };
            this.slots.set(name, slot);
            const early = this.pending.get(name);
            if (early) slot.done(early);
          }),
      })),
      { concurrent: true, exitOnError: false, rendererOptions: { collapseErrors: false, showErrorMessage: false } },
    );
    this.running = list.run().catch(() => undefined);
  }

  async stop() {
    await this.running;
  }

  hostPhase(host: string, phase: string) {
    this.slots.get(host)?.setTitle(phase);
  }

  taskDone(host: string, t: TaskReport) {
    if (t.changes.length) this.slots.get(host)?.setTitle(`${t.title}: ${t.status}`);
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

  message(text: string) {
    process.stderr.write(terminalText(text) + '\n');
  }
}

export async function makeReporter(json: boolean, hostCount = 0): Promise<Reporter> {
  if (json) return new PlainReporter(process.stderr);
  // A terminal that reports no width (some pseudo-terminals) would have listr2 wrap every character;
  // from COMPACT_FROM_HOSTS hosts on, a line per host no longer fits a screen: counts instead.
  const tty = process.stdout.isTTY && !process.env.CI && process.env.TERM !== 'dumb' && (process.stdout.columns ?? 0) >= 40 && hostCount < COMPACT_FROM_HOSTS;
  return tty ? ListrReporter.create() : new PlainReporter();
}
