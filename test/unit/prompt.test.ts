import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const tsx = path.resolve(here, '../../node_modules/.bin/tsx');
const fixture = path.join(here, 'fixtures/ask-hidden.ts');

/** Runs the fixture on a real pseudo-terminal (util-linux `script`), answering as soon as the question shows. */
function onTerminal(answer: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn('script', ['-qfec', `${tsx} ${fixture}`, '/dev/null'], { env: { ...process.env, TERM: 'dumb' } });
    let out = '';
    let answered = false;
    const onData = (d: Buffer) => {
      out += d.toString();
      if (!answered && out.includes('secret? ')) {
        answered = true;
        p.stdin.write(`${answer}\r`);
      }
    };
    p.stdout.on('data', onData);
    p.stderr.on('data', onData);
    p.on('error', reject);
    p.on('close', () => resolve(out));
  });
}

test('a hidden question turns echo off before it is shown, so an instant answer is never echoed', async () => {
  const out = await onTerminal('s3cr3t-typed-fast');
  const m = /RESULT (\{.*\})/.exec(out);
  assert.ok(m, out);
  const result = JSON.parse(m[1]) as { rawAtQuestion: boolean[]; length: number; rawAfter: boolean };
  assert.deepEqual(result.rawAtQuestion, [true], 'the terminal was still echoing when the question appeared');
  assert.equal(result.length, 's3cr3t-typed-fast'.length);
  assert.equal(result.rawAfter, false, 'the terminal is given back as it was');
  assert.ok(!out.includes('s3cr3t-typed-fast'), 'the answer was echoed');
});
