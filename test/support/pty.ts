/**
 * hoist on a real pseudo-terminal, for tests of what a person sees and when.
 *
 * The terminal is util-linux `script` (as test/unit/prompt.test.ts uses): it is on every machine the
 * suite runs on, needs no native addon or prebuilt binary (a pty library would), and passes a byte
 * written to it through the pty's line discipline, so "\x03" is a real Ctrl-C (SIGINT to the
 * foreground process group). Its size is set with stty before hoist starts. tmux would also do, but
 * is one more package a CI image must carry, and its server outlives a crashed test.
 *
 * What is on screen is computed by `Screen`, a small terminal model of the moves listr2's redraws use
 * (cursor up, erase line, carriage return, wrap at the last column): assertions are about the text
 * left on the screen and in the scrollback, not about the byte stream that drew it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const HOIST_BUILT = path.join(root, 'dist', 'hoist.cjs');

/** Lines of a terminal `cols` wide with an unbounded scrollback; colours and other modes are ignored. */
export class Screen {
  readonly lines: string[] = [''];
  private row = 0;
  private col = 0;

  constructor(private readonly cols = 120) {}

  write(data: string): void {
    let i = 0;
    while (i < data.length) {
      const ch = data[i];
      if (ch === '\x1b') {
        const m = /^\x1b\[([?0-9;]*)([A-Za-z])/.exec(data.slice(i)) ?? /^\x1b[()][A-Z0-9]/.exec(data.slice(i));
        if (!m) {
          i++;
          continue;
        }
        if (m.length === 3) this.csi(m[1], m[2]);
        i += m[0].length;
        continue;
      }
      i++;
      if (ch === '\r') this.col = 0;
      else if (ch === '\n') this.down();
      else if (ch === '\b') this.col = Math.max(0, this.col - 1);
      else if (ch >= ' ' || ch === '\t') this.put(ch);
    }
  }

  private csi(args: string, cmd: string): void {
    const n = Number(args.split(';')[0]) || 1;
    const line = () => this.lines[this.row];
    switch (cmd) {
      case 'A':
        this.row = Math.max(0, this.row - n);
        break;
      case 'B':
        for (let k = 0; k < n; k++) this.down();
        break;
      case 'G':
        this.col = (Number(args) || 1) - 1;
        break;
      case 'K':
        if (args === '2') this.lines[this.row] = '';
        else if (args === '1') this.lines[this.row] = ' '.repeat(this.col) + line().slice(this.col);
        else this.lines[this.row] = line().slice(0, this.col);
        break;
      case 'J':
        if (args === '' || args === '0') {
          this.lines.splice(this.row + 1);
          this.lines[this.row] = line().slice(0, this.col);
        }
        break;
      default:
      // Colours (m), cursor visibility (?25l/h) and the rest change nothing a test reads.
    }
  }

  private down(): void {
    this.row++;
    this.col = 0;
    if (this.row >= this.lines.length) this.lines.push('');
  }

  private put(ch: string): void {
    if (this.col >= this.cols) this.down();
    const l = this.lines[this.row].padEnd(this.col);
    this.lines[this.row] = l.slice(0, this.col) + ch + l.slice(this.col + 1);
    this.col++;
  }

  /** Everything on screen and in the scrollback, trailing spaces cut. */
  text(): string {
    return this.lines.map((l) => l.trimEnd()).join('\n');
  }
}

export interface PtyRun {
  child: ChildProcess;
  /** The raw bytes hoist wrote (escape sequences included). */
  raw(): string;
  screen(): string;
  /** Resolves with the ms since start when `re` matches the screen; rejects after `ms` with the screen. */
  waitFor(re: RegExp, ms: number): Promise<number>;
  /** Types into the terminal: "\x03" is Ctrl-C. */
  type(data: string): void;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
}

const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * Starts `node dist/hoist.cjs ARGS` on a pty `cols` wide. The command is exec'd by the shell, so the
 * process `script` waits for is hoist itself, and `script -e` exits with hoist's code. CI is unset
 * (it would turn the live view off) and TERM names a real terminal.
 */
export function onPty(args: string[], opts: { env?: Record<string, string | undefined>; cols?: number; cwd?: string; prefix?: string } = {}): PtyRun {
  const cols = opts.cols ?? 120;
  const env: Record<string, string | undefined> = { ...process.env, TERM: 'xterm-256color', CI: undefined, NO_COLOR: undefined, ...opts.env };
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  const cmd = `stty cols ${cols} rows 40; exec ${opts.prefix ?? ''}${shq(process.execPath)} ${shq(HOIST_BUILT)} ${args.map(shq).join(' ')}`;
  const started = Date.now();
  const child = spawn('script', ['-qfec', cmd, '/dev/null'], { env: env as NodeJS.ProcessEnv, cwd: opts.cwd ?? root, stdio: ['pipe', 'pipe', 'pipe'] });
  let raw = '';
  const screen = new Screen(cols);
  const waiters = new Set<() => void>();
  const onData = (d: Buffer) => {
    const s = d.toString('utf8');
    raw += s;
    screen.write(s);
    for (const w of waiters) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>((resolve) =>
    child.on('close', (code, signal) => {
      for (const w of waiters) w();
      resolve({ code, signal, ms: Date.now() - started });
    }),
  );
  let closed = false;
  void exited.then(() => (closed = true));
  return {
    child,
    raw: () => raw,
    screen: () => screen.text(),
    type: (data) => child.stdin!.write(data),
    exited,
    waitFor: (re, ms) =>
      new Promise((resolve, reject) => {
        const check = () => {
          if (re.test(screen.text())) {
            done();
            resolve(Date.now() - started);
          } else if (closed) {
            done();
            reject(new Error(`${re} never showed; hoist ended. Screen:\n${screen.text()}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`${re} not on screen within ${ms} ms. Screen:\n${screen.text()}`));
        }, ms);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      }),
  };
}

/** Ends a run a test gave up on: script, and hoist under it, by their process ids. */
export function killPty(run: PtyRun): void {
  if (run.child.exitCode !== null || run.child.pid === undefined) return;
  try {
    execPkillChildren(run.child.pid);
  } finally {
    run.child.kill('SIGKILL');
  }
}

function execPkillChildren(pid: number): void {
  // hoist is script's child: SIGKILL it by its parent's pid, then script itself.
  spawn('pkill', ['-KILL', '-P', String(pid)], { stdio: 'ignore' });
}
