import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
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
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    return new Logger(path.join(base, 'hoist', 'logs', `${stamp}-${process.pid}.log`));
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
