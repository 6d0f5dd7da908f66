import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.ts');

test('a server that sends its banner and hangs up (an sshd out of descriptors) is unreachable, directly and as the jump host', async () => {
  const srv = net.createServer((c) => {
    c.write('SSH-2.0-OpenSSH_9.2\r\n');
    setTimeout(() => c.destroy(), 50);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  try {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hoist-banner-'));
    const key = path.join(dir, 'id');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
    const inv = path.join(dir, 'inv.toml');
    writeFileSync(
      inv,
      `[defaults]\nuser = "root"\nidentity_file = "${key}"\n[hosts.direct]\naddress = "127.0.0.1"\nport = ${port}\n[hosts.behind]\naddress = "10.255.255.1"\njump = "root@127.0.0.1:${port}"\n`,
    );
    // Asynchronous spawn: the server runs in this process and must keep answering.
    const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const p = spawn(process.execPath, ['--import', 'tsx', CLI, 'ping', '-i', inv, '--json'], {
        env: { ...process.env, HOIST_LOG: 'off', SSH_AUTH_SOCK: '' },
      });
      let out = '';
      p.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const t = setTimeout(() => p.kill('SIGKILL'), 30_000);
      p.on('close', (code) => (clearTimeout(t), resolve({ code, out })));
    });
    assert.equal(r.code, 4, r.out);
    const hosts = (JSON.parse(r.out) as { hosts: { name: string; status: string; error: string }[] }).hosts;
    for (const h of hosts) {
      assert.equal(h.status, 'unreachable', h.name);
      assert.match(h.error, /closed the connection during the SSH handshake/);
    }
  } finally {
    srv.close();
  }
});

test('on an idle controller the working-time handshake deadline still fails a silent server on time, and a refused port at once', async () => {
  // Accepts TCP and never says a word: only the deadline can end the handshake.
  const silent = net.createServer(() => undefined);
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
  const port = (silent.address() as net.AddressInfo).port;
  const closed = net.createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
  const refusedPort = (closed.address() as net.AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  try {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hoist-silent-'));
    const key = path.join(dir, 'id');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
    const inv = path.join(dir, 'inv.toml');
    writeFileSync(
      inv,
      `[defaults]\nuser = "root"\nidentity_file = "${key}"\n[hosts.silent]\naddress = "127.0.0.1"\nport = ${port}\n[hosts.refused]\naddress = "127.0.0.1"\nport = ${refusedPort}\n`,
    );
    const t0 = Date.now();
    const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const p = spawn(process.execPath, ['--import', 'tsx', CLI, 'ping', '-i', inv, '--connect-timeout', '2', '--json'], {
        env: { ...process.env, HOIST_LOG: 'off', SSH_AUTH_SOCK: '' },
      });
      let out = '';
      p.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const t = setTimeout(() => p.kill('SIGKILL'), 60_000);
      p.on('close', (code) => (clearTimeout(t), resolve({ code, out })));
    });
    const took = (Date.now() - t0) / 1000;
    assert.equal(r.code, 4, r.out);
    const hosts = (JSON.parse(r.out) as { hosts: { name: string; status: string; error: string }[] }).hosts;
    const by = new Map(hosts.map((h) => [h.name, h]));
    assert.match(by.get('silent')!.error, /no SSH handshake with root@127\.0\.0\.1:\d+ within 2 s/);
    assert.match(by.get('refused')!.error, /TCP connection to 127\.0\.0\.1:\d+ failed \(ECONNREFUSED\)/);
    // Not a timing benchmark: only that the deadline fires at all rather than waiting for the 60 s kill.
    assert.ok(took < 30, `took ${took} s`);
  } finally {
    silent.close();
  }
});
