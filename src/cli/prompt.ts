import { InterruptedError, NoInputError } from '../util/errors.js';
import { terminalText } from '../util/printable.js';

/**
 * Asks for a secret on the terminal without echoing it. Only on a terminal: a run from CI gets its
 * secrets from the environment or from files instead of hanging on a prompt nobody sees.
 */
export function canPrompt(): boolean {
  return !!process.stdin.isTTY && !!process.stderr.isTTY;
}

export function askHidden(question: string): Promise<string> {
  const stdin = process.stdin;
  return new Promise((resolve, reject) => {
    let value = '';
    const wasRaw = stdin.isRaw;
    // Echo goes off before the question is shown: an answer typed or pasted the moment the
    // prompt appears would otherwise be echoed by the terminal before hoist takes it over.
    stdin.setRawMode(true);
    process.stderr.write(terminalText(question));
    stdin.resume();
    const done = (err?: Error) => {
      stdin.removeListener('data', onData);
      stdin.setRawMode(wasRaw);
      stdin.pause();
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (d: Buffer) => {
      for (const ch of d.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        // Ctrl-C in raw mode is a byte, not a signal: it ends the run as SIGINT would (exit 130).
        if (ch === '\u0003') return done(new InterruptedError('SIGINT', 'at the prompt; nothing was started'));
        if (ch === '\u0004' && value === '') return done(new NoInputError());
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    stdin.on('data', onData);
  });
}
