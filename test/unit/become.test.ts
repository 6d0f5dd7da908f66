import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import type { ClientChannel } from 'ssh2';
import { READY, SUDO_PROMPT, explainSudoFailure, sudoCommand, watchBecome, type BecomeSpec } from '../../src/ssh/become.js';

/**
 * A channel that acts like `sudo -S -p PROMPT … bash -c 'printf READY; exec bash -s'`: it prints the
 * prompt when it wants a password, checks the line it gets, and records every byte written to it,
 * so the tests can see exactly what reached sudo and what would have reached the shell.
 */
class SudoLikeChannel extends EventEmitter {
  stderr = new PassThrough();
  written: string[] = [];
  closed = false;
  constructor(private readonly behaviour: { needsPassword: boolean; correct?: string }) {
    super();
    setImmediate(() => {
      this.stderr.write('\nWe trust you have received the usual lecture from the local System Administrator.\n');
      if (behaviour.needsPassword) this.stderr.write(SUDO_PROMPT);
      else this.ready();
    });
  }
  private ready() {
    this.stderr.write(`${READY}\nscript stderr line\n`);
  }
  write(s: string) {
    this.written.push(s);
    if (!this.behaviour.needsPassword) return true;
    if (s === `${this.behaviour.correct}\n`) this.ready();
    else setTimeout(() => this.stderr.write(`Sorry, try again.\n${SUDO_PROMPT}`), 5);
    return true;
  }
  close() {
    this.closed = true;
    this.emit('close');
  }
}

const ctx = { host: 'h1', login: 'ops', timeoutMs: 2000 };
const asChannel = (c: SudoLikeChannel) => c as unknown as ClientChannel;

test('a password is never written when sudo does not ask for one', async () => {
  const ch = new SudoLikeChannel({ needsPassword: false });
  const spec: BecomeSpec = { user: 'root', password: 'touch /tmp/x', passwordSource: 'HOIST_BECOME_PASSWORD' };
  const hs = watchBecome(asChannel(ch), spec, ctx);
  await hs.ready;
  assert.deepEqual(ch.written, []);
  const after: string[] = [];
  hs.onStderr((d) => after.push(d.toString()));
  assert.equal(after.join(''), 'script stderr line\n', "the lecture and the marker are not the command's stderr");
});

test('the password answers the prompt once, and only the prompt', async () => {
  const ch = new SudoLikeChannel({ needsPassword: true, correct: 's3cret' });
  await watchBecome(asChannel(ch), { user: 'root', password: 's3cret' }, ctx).ready;
  assert.deepEqual(ch.written, ['s3cret\n']);
});

test('a refused password fails at the second prompt, naming user, host and source, without retrying', async () => {
  const ch = new SudoLikeChannel({ needsPassword: true, correct: 'right' });
  const t0 = Date.now();
  await assert.rejects(
    watchBecome(asChannel(ch), { user: 'root', password: 'wrong', passwordSource: '-K' }, ctx).ready,
    /sudo on h1 refused the password for ops \(from -K\)/,
  );
  assert.ok(Date.now() - t0 < 1000);
  assert.deepEqual(ch.written, ['wrong\n']);
  assert.ok(ch.closed, 'the channel is closed so sudo cannot be fed again');
});

test('sudo failures before a shell starts become sentences with the fix', () => {
  const b: BecomeSpec = { user: 'root' };
  assert.match(explainSudoFailure('sudo: a password is required\n', b, { host: 'h2', login: 'ops' }).message, /asks ops on h2 for a password; give it with -K/);
  assert.match(explainSudoFailure('nosudo is not in the sudoers file.\n', b, { host: 'h2', login: 'nosudo' }).message, /nosudo on h2 has no sudo rights/);
  assert.match(
    explainSudoFailure('sudo: sorry, you must have a tty to run sudo\n', b, { host: 'h2', login: 'ops' }).message,
    /requires a terminal \("Defaults requiretty" in its sudoers\).*"Defaults:ops !requiretty" in a file under \/etc\/sudoers\.d\//,
  );
  assert.match(explainSudoFailure('bash: line 1: sudo: command not found\n', b, { host: 'h2', login: 'x' }).message, /sudo is not installed on h2/);
});

test('the sudo command line holds neither the password nor anything unquoted', async () => {
  const line = sudoCommand('bash -s', { user: 'root', password: 'pa ss$(id)' });
  assert.ok(!line.includes('pa ss'));
  assert.match(line, /^sudo -S -p /);
  assert.match(sudoCommand('bash -s', { user: 'app' }), /^sudo -n -H -u app -- /);
  // The inner command line runs as given after the marker, in a real bash.
  const inner = /-- \/bin\/bash -c (.*)$/s.exec(sudoCommand(`printf '%s' "$0"`, { user: 'root' }))![1];
  const out = await new Promise<string>((resolve) => {
    const p = spawn('bash', ['-c', `bash -c ${inner} 2>&1`]);
    let s = '';
    p.stdout.on('data', (d: Buffer) => (s += d.toString()));
    p.on('close', () => resolve(s));
  });
  assert.ok(out.startsWith(`${READY}\n`), out);
});
