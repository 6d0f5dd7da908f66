import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync, existsSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { RECEIVE_EXIT, receiveScript, serveCommand, type ServeTool } from '../../src/ssh/peer-copy.js';

const have = (tool: string) => spawnSync('bash', ['-c', `command -v ${tool}`]).status === 0;

/** Starts the serve command the way a host runs it; resolves with its port once it listens. */
async function serve(
  file: string,
  token: string,
  tool: ServeTool,
): Promise<{ p: ChildProcess; port: number; out: () => string; done: Promise<number | null> }> {
  const p = spawn('bash', ['-c', serveCommand(file, tool)]);
  let out = '';
  const done = new Promise<number | null>((r) => p.on('close', r));
  // The token comes first, as serveFile sends it: the server reads it before it listens.
  p.stdin!.write(`${token}\n`);
  const port = await new Promise<number>((resolve, reject) => {
    p.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^port (\d+)$/m.exec(out);
      if (m) resolve(Number(m[1]));
    });
    void done.then((c) => reject(new Error(`server exited ${c} before listening`)));
  });
  return { p, port, out: () => out, done };
}

function receive(dest: string, port: number, token: string, want: { size: number; sha256: string }): { code: number | null; stderr: string } {
  const r = spawnSync('bash', ['-c', receiveScript({ address: '127.0.0.1', port }, dest, want, { privileged: false, timeoutS: 30 })], { input: `${token}\n` });
  return { code: r.status, stderr: r.stderr.toString() };
}

function payload(dir: string): { file: string; size: number; sha256: string } {
  const data = randomBytes(3_000_000);
  const file = path.join(dir, 'archive.tar.gz');
  writeFileSync(file, data);
  return { file, size: data.length, sha256: createHash('sha256').update(data).digest('hex') };
}

for (const tool of ['perl', 'python3'] as ServeTool[]) {
  test(
    `a ${tool} server sends the file once to the token's holder, checked and moved into place`,
    { skip: !have(tool) && `${tool} not installed` },
    async () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'hoist-peer-'));
      const src = payload(dir);
      const token = randomBytes(24).toString('hex');
      const srv = await serve(src.file, token, tool);
      // A stranger's connection that sends the wrong token gets nothing and doesn't use up the transfer.
      const stranger = await new Promise<Buffer>((resolve) => {
        const c = net.connect(srv.port, '127.0.0.1', () => c.write('not-the-token\n'));
        const got: Buffer[] = [];
        c.on('data', (d: Buffer) => got.push(d));
        c.on('close', () => resolve(Buffer.concat(got)));
      });
      assert.equal(stranger.length, 0);
      const dest = path.join(dir, 'got', 'archive.tar.gz');
      const r = receive(dest, srv.port, token, src);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(readFileSync(dest).equals(readFileSync(src.file)));
      assert.equal(statSync(dest).mode & 0o777, 0o644);
      assert.equal(await srv.done, 0);
      assert.match(srv.out(), /^sent$/m);
      assert.deepEqual(readdirSync(path.dirname(dest)), ['archive.tar.gz'], 'no temporary file is left');
    },
  );

  test(`${tool}: the server ends when the controller's channel closes, without sending`, { skip: !have(tool) && `${tool} not installed` }, async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hoist-peer-'));
    const src = payload(dir);
    const srv = await serve(src.file, 'x'.repeat(48), tool);
    srv.p.stdin!.end();
    assert.equal(await srv.done, 0);
    assert.doesNotMatch(srv.out(), /sent/);
  });
}

test('a receiver refuses bytes whose sha256 differs, and leaves nothing behind', { skip: !have('perl') && 'perl not installed' }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hoist-peer-'));
  const src = payload(dir);
  const token = randomBytes(24).toString('hex');
  const srv = await serve(src.file, token, 'perl');
  const dest = path.join(dir, 'got', 'archive.tar.gz');
  const r = receive(dest, srv.port, token, { size: src.size, sha256: 'a'.repeat(64) });
  assert.equal(r.code, RECEIVE_EXIT.checksum);
  assert.match(r.stderr, new RegExp(`checksum mismatch for what 127\\.0\\.0\\.1:${srv.port} sent: expected a{64}, got ${src.sha256}`));
  assert.equal(existsSync(dest), false);
  assert.deepEqual(readdirSync(path.dirname(dest)), []);
  await srv.done;
});

test('a receiver that presents the wrong token gets nothing and says the copy came up short', { skip: !have('perl') && 'perl not installed' }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hoist-peer-'));
  const src = payload(dir);
  const srv = await serve(src.file, 'right'.padEnd(48, '0'), 'perl');
  const r = receive(path.join(dir, 'got', 'a'), srv.port, 'wrong'.padEnd(48, '0'), src);
  assert.equal(r.code, RECEIVE_EXIT.short);
  assert.match(r.stderr, new RegExp(`received 0 of ${src.size} bytes from 127\\.0\\.0\\.1:${srv.port}`));
  srv.p.stdin!.end();
  await srv.done;
});

test('a receiver that cannot connect says so quickly, as an unreachable route', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hoist-peer-'));
  // A port that was just free: connection refused at once.
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r));
  const t0 = Date.now();
  const r = receive(path.join(dir, 'a'), port, 't'.repeat(48), { size: 1, sha256: 'b'.repeat(64) });
  assert.equal(r.code, RECEIVE_EXIT.unreachable);
  assert.match(r.stderr, new RegExp(`cannot connect to 127\\.0\\.0\\.1:${port}`));
  assert.ok(Date.now() - t0 < 6000);
});

test('a file the login user cannot read is refused before anything listens', { skip: process.getuid?.() === 0 && 'root reads everything' }, () => {
  const r = spawnSync('bash', ['-c', serveCommand('/etc/shadow')], { input: 'x\n' });
  assert.equal(r.status, 4);
});
