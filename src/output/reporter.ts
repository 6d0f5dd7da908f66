import type { RunEvents, HostReport, TaskReport } from '../runner/report.js';
import { formatTaskLine, hostLine, color } from './format.js';

export interface Reporter extends RunEvents {
  start(hosts: string[]): void;
  stop(): Promise<void>;
}

/** Plain lines: for pipes, CI logs and --json runs (where they go to stderr). */
export class PlainReporter implements Reporter {
  constructor(private readonly out: NodeJS.WritableStream = process.stdout, private readonly quiet = false) {}
  start() {}
  async stop() {}
  hostPhase() {}
  taskDone(host: string, t: TaskReport) {
    if (this.quiet) return;
    if (t.status === 'ok' && t.changes.length === 0) return;
    this.out.write(formatTaskLine(host, t) + '\n');
  }
  hostDone(h: HostReport) {
    if (!this.quiet) this.out.write(hostLine(h) + '\n');
  }
  private lastPct = new Map<string, number>();
  progress(label: string, done: number, total: number | undefined) {
    if (this.quiet || !total) return;
    const pct = Math.floor((done / total) * 10) * 10;
    if (this.lastPct.get(label) === pct) return;
    this.lastPct.set(label, pct);
    this.out.write(color.dim(`download ${label}: ${pct}%`) + '\n');
  }
  message(text: string) {
    this.out.write(text + '\n');
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
        title: `${name}: waiting`,
        task: (_ctx: unknown, task: { title: string; output: string }) =>
          new Promise<void>((resolve, reject) => {
            const slot: HostSlot = {
              setTitle: (t) => (task.title = `${name}: ${t}`),
              done: (h) => {
                task.title = hostLine(h);
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
    process.stderr.write(text + '\n');
  }
}

export async function makeReporter(json: boolean): Promise<Reporter> {
  if (json) return new PlainReporter(process.stderr);
  // A terminal that reports no width (some pseudo-terminals) would have listr2 wrap every character.
  const tty = process.stdout.isTTY && !process.env.CI && process.env.TERM !== 'dumb' && (process.stdout.columns ?? 0) >= 40;
  return tty ? ListrReporter.create() : new PlainReporter();
}
