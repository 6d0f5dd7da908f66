import { randomBytes } from 'node:crypto';
import type { ClientChannel } from 'ssh2';
import { HostError } from '../util/errors.js';
import { quote } from './quote.js';

/** How commands get root (or `user`) on a host whose login user is someone else. */
export interface BecomeSpec {
  user: string;
  /** The sudo password, when one was given; it is written only in answer to sudo's own prompt. */
  password?: string;
  /** Where the password came from, for messages ("-K", "HOIST_BECOME_PASSWORD", a file). */
  passwordSource?: string;
}

/** A become failure: wrong password, no sudo rights, no password given. The host fails, others go on. */
export class BecomeError extends HostError {}

/**
 * Markers are random per process, so neither a password nor anything a host prints can imitate them.
 * The prompt marker is what sudo prints when (and only when) it wants the password; the ready marker
 * is printed by the elevated shell itself, so everything after it on the channel belongs to the command.
 */
const NONCE = randomBytes(9).toString('hex');
export const SUDO_PROMPT = `[hoist-sudo-prompt-${NONCE}]`;
export const READY = `hoist-become-ready-${NONCE}`;

/** Largest amount of sudo chatter (lecture, warnings) held while waiting for the ready marker. */
const MAX_PREAMBLE = 64 * 1024;

/**
 * The remote command line for `inner` (a shell command line) run through sudo. With a password, sudo
 * reads it from stdin (-S) but only after printing our prompt; without one, -n makes sudo fail at once
 * instead of waiting for a password nobody will type.
 */
export function sudoCommand(inner: string, b: BecomeSpec): string {
  const auth = b.password !== undefined ? `-S -p ${quote(SUDO_PROMPT)}` : '-n';
  const shell = `printf '%s\\n' ${READY} >&2; exec ${inner}`;
  return `sudo ${auth} -H -u ${quote(b.user)} -- /bin/bash -c ${quote(shell)}`;
}

export interface BecomeHandshake {
  /** Resolves when the elevated shell is running; rejects with a BecomeError otherwise. */
  ready: Promise<void>;
  /** Called with stderr that follows the ready marker. */
  onStderr(fn: (d: Buffer) => void): void;
}

/**
 * Watches a channel started with sudoCommand(): answers sudo's prompt once with the password, treats a
 * second prompt as a refused password, and hands stderr on to the caller only after the ready marker.
 * Nothing is written to the channel's stdin before the ready marker except the password, and the
 * password only after the prompt: a sudo that needs none never sees it, and neither does the shell.
 */
export function watchBecome(ch: ClientChannel, b: BecomeSpec, ctx: { host: string; login: string; timeoutMs: number }): BecomeHandshake {
  let preamble = '';
  let prompts = 0;
  let done = false;
  let sink: ((d: Buffer) => void) | undefined;
  const early: Buffer[] = [];
  let resolveReady!: () => void;
  let rejectReady!: (e: Error) => void;
  const ready = new Promise<void>((res, rej) => {
    resolveReady = res;
    rejectReady = rej;
  });
  ready.catch(() => undefined);
  const fail = (e: BecomeError) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    rejectReady(e);
    ch.close();
  };
  const timer = setTimeout(
    () => fail(new BecomeError(`sudo on ${ctx.host} did not start a shell for ${ctx.login} within ${Math.round(ctx.timeoutMs / 1000)} s${lastLine(preamble)}`)),
    ctx.timeoutMs,
  );
  timer.unref();
  const onData = (d: Buffer) => {
    if (done) {
      if (sink) sink(d);
      else early.push(d);
      return;
    }
    preamble += d.toString('utf8');
    const at = preamble.indexOf(`${READY}\n`);
    if (at >= 0) {
      done = true;
      clearTimeout(timer);
      const rest = preamble.slice(at + READY.length + 1);
      if (rest) early.push(Buffer.from(rest));
      resolveReady();
      return;
    }
    const seen = preamble.split(SUDO_PROMPT).length - 1;
    if (seen > prompts) {
      prompts = seen;
      if (prompts > 1 || b.password === undefined) {
        return fail(new BecomeError(`sudo on ${ctx.host} refused the password for ${ctx.login}${b.passwordSource ? ` (from ${b.passwordSource})` : ''}`));
      }
      ch.write(`${b.password}\n`);
    }
    if (preamble.length > MAX_PREAMBLE) fail(new BecomeError(`sudo on ${ctx.host} printed too much before starting a shell${lastLine(preamble)}`));
  };
  ch.stderr.on('data', onData);
  // sudo that gives up exits at once; 'close' would wait for stdout to be read, which nobody does yet.
  ch.on('exit', () => setImmediate(() => fail(explainSudoFailure(preamble, b, ctx))));
  ch.on('close', () => fail(explainSudoFailure(preamble, b, ctx)));
  return {
    ready,
    onStderr(fn) {
      sink = fn;
      for (const d of early.splice(0)) fn(d);
    },
  };
}

/** sudo's own words for why it would not run a command, turned into what the operator should do. */
export function explainSudoFailure(stderr: string, b: BecomeSpec, ctx: { host: string; login: string }): BecomeError {
  const text = stderr.split(SUDO_PROMPT).join('');
  const who = `${ctx.login} on ${ctx.host}`;
  if (/must have a tty|requiretty/i.test(text)) {
    // hoist feeds scripts and files through sudo's stdin: a terminal would mangle them, so it never asks for one.
    return new BecomeError(
      `sudo on ${ctx.host} requires a terminal ("Defaults requiretty" in its sudoers), and hoist runs sudo without one; ` +
        `exempt ${ctx.login} with a line "Defaults:${ctx.login} !requiretty" in a file under /etc/sudoers.d/ (edit with visudo)`,
    );
  }
  if (/a (password|terminal) is required|no tty present|askpass/i.test(text)) {
    return new BecomeError(`sudo asks ${who} for a password; give it with -K (--ask-become-pass), HOIST_BECOME_PASSWORD or become_password_file`);
  }
  if (/not in the sudoers file|is not allowed to (run|execute)|may not run sudo/i.test(text)) {
    return new BecomeError(`${who} has no sudo rights${b.user !== 'root' ? ` to run commands as ${b.user}` : ''}; become needs a user in sudoers`);
  }
  if (/incorrect password|try again/i.test(text)) {
    return new BecomeError(`sudo on ${ctx.host} refused the password for ${ctx.login}${b.passwordSource ? ` (from ${b.passwordSource})` : ''}`);
  }
  if (/sudo: (command )?not found|No such file/i.test(text)) return new BecomeError(`sudo is not installed on ${ctx.host}; become needs it`);
  if (/unknown user/i.test(text)) return new BecomeError(`become_user ${b.user} does not exist on ${ctx.host}`);
  return new BecomeError(`sudo on ${ctx.host} failed for ${ctx.login}${lastLine(text) || ' without saying why'}`);
}

function lastLine(s: string): string {
  const line = s.trim().split('\n').filter(Boolean).pop();
  return line ? `: ${line.slice(0, 300)}` : '';
}
