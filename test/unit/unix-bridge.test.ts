import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { unixBridgeCommand, type BridgeTool } from '../../src/ssh/unix-bridge.js';

const have = (tool: string) => spawnSync('bash', ['-c', `command -v ${tool}`]).status === 0;

/** A unix-socket server that answers each connection with the sha-like reversal of what it got, after EOF. */
function echoServer(sock: string): Promise<net.Server> {
  return new Promise((resolve) => {
    const srv = net.createServer((c) => {
      const chunks: Buffer[] = [];
      c.on('data', (d) => chunks.push(d));
      c.on('end', () => c.end(Buffer.concat(chunks).reverse()));
    });
    srv.listen(sock, () => resolve(srv));
  });
}

for (const tool of ['perl', 'python3'] as BridgeTool[]) {
  test(`the ${tool} bridge carries binary data both ways and passes on EOF`, { skip: !have(tool) && `${tool} not installed` }, async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hoist-bridge-'));
    const sock = path.join(dir, 's.sock');
    const srv = await echoServer(sock);
    try {
      const payload = Buffer.alloc(300_000);
      for (let i = 0; i < payload.length; i++) payload[i] = (i * 7919) & 0xff;
      const p = spawn('bash', ['-c', unixBridgeCommand(sock, tool)]);
      const out: Buffer[] = [];
      p.stdout.on('data', (d: Buffer) => out.push(d));
      let err = '';
      p.stderr.on('data', (d: Buffer) => (err += d.toString()));
      p.stdin.end(payload);
      const code = await new Promise<number | null>((r) => p.on('close', r));
      assert.equal(code, 0, err);
      assert.ok(Buffer.concat(out).equals(Buffer.from(payload).reverse()));
    } finally {
      srv.close();
    }
  });
}

test('the bridge says which socket is missing instead of hanging', () => {
  const r = spawnSync('bash', ['-c', unixBridgeCommand('/nonexistent/containerd.sock')], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /no socket at \/nonexistent\/containerd.sock/);
});

test('the perl bridge loads no module (each costs CPU on every host of every run)', { skip: !have('perl') && 'perl not installed' }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hoist-bridge-'));
  const sock = path.join(dir, 's.sock');
  // Loaded first through PERL5OPT: any module the bridge then asks for (strict aside) is an error.
  const lib = path.join(dir, 'lib');
  mkdirSync(lib);
  writeFileSync(path.join(lib, 'NoLoad.pm'), `package NoLoad; unshift @INC, sub { return if $_[1] eq 'strict.pm'; die "loaded $_[1]\\n" }; 1;\n`);
  const srv = await echoServer(sock);
  try {
    const p = spawn('bash', ['-c', unixBridgeCommand(sock, 'perl')], { env: { ...process.env, PERL5LIB: lib, PERL5OPT: '-MNoLoad' } });
    const out: Buffer[] = [];
    let err = '';
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.stdin.end(Buffer.from('abc'));
    assert.equal(await new Promise<number | null>((r) => p.on('close', r)), 0, err);
    assert.equal(Buffer.concat(out).toString(), 'cba');
  } finally {
    srv.close();
  }
});
