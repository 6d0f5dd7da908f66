import { createWriteStream, mkdirSync, readdirSync, rmSync, type WriteStream } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { redact } from './redact.js';
import { logText } from './printable.js';

/** The full record of a run, in the XDG state directory; everything passes through redact(). */
export class Logger {
  private stream?: WriteStream;
  readonly file?: string;

  constructor(file?: string) {
    if (!file) return;
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    this.file = file;
    this.stream = createWriteStream(file, { flags: 'a', mode: 0o600 });
  }

  static forRun(): Logger {
    if (process.env.HOIST_LOG === 'off') return new Logger();
    const base = process.env.XDG_STATE_HOME || path.join(os.homedir(), '.local', 'state');
    const dir = path.join(base, 'hoist', 'logs');
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const logger = new Logger(path.join(dir, `${stamp}-${process.pid}.log`));
    pruneLogs(dir, logKeep(), logger.file);
    return logger;
  }

  log(scope: string, text: string): void {
    if (!this.stream) return;
    const t = new Date().toISOString();
    // Escaped like the terminal: a log read with cat or less must not be driven by a host's output either.
    for (const line of logText(redact(text)).split('\n')) this.stream.write(`${t} [${logText(scope)}] ${line}\n`);
  }

  close(): Promise<void> {
    return new Promise((resolve) => (this.stream ? this.stream.end(resolve) : resolve()));
  }
}

/** Run logs hoist names itself: `2026-12-07T16-05-13-123Z-4242.log`. Nothing else in the folder is touched. */
const RUN_LOG = /^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{3}Z-\d+\.log$/;

/** Runs whose logs are kept: HOIST_LOG_KEEP (a whole number, at least 1), else 200. */
export const DEFAULT_LOG_KEEP = 200;
export function logKeep(value: string | undefined = process.env.HOIST_LOG_KEEP): number {
  const v = value?.trim();
  return v && /^\d+$/.test(v) && Number(v) >= 1 ? Number(v) : DEFAULT_LOG_KEEP;
}

/**
 * Keeps the newest `keep` run logs (this run's included), oldest removed first; names sort by time.
 * Best effort: a log another run is still writing is only an unlinked file to it.
 */
export function pruneLogs(dir: string, keep: number, current?: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir)
      .filter((n) => RUN_LOG.test(n))
      .sort();
  } catch {
    return [];
  }
  // This run's own log counts as one of those kept, whether or not its file exists yet.
  const own = current ? path.basename(current) : undefined;
  const others = names.filter((n) => n !== own);
  const old = others.slice(0, Math.max(0, others.length - (own ? keep - 1 : keep)));
  for (const n of old) rmSync(path.join(dir, n), { force: true });
  return old;
}
