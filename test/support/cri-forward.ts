import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CriClient } from '../../src/modules/containerd/cri/client.js';
import type { FleetInfo } from '../fleet/fleet.js';

/**
 * hoist's CRI client over a forward of the test's own, independent of hoist's SSH layer: OpenSSH
 * forwards a local socket to the host's containerd socket as root (strict host-key checking).
 */
export async function withFleetCri<T>(fleet: FleetInfo, host: string, f: (c: CriClient) => Promise<T>): Promise<T> {
  const h = fleet.hosts.find((x) => x.name === host)!;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hoist-cri-'));
  const sock = path.join(dir, 'cri.sock');
  const ssh = spawn(
    'ssh',
    [
      '-N',
      '-o',
      'BatchMode=yes',
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      `UserKnownHostsFile=${fleet.knownHostsPath}`,
      '-o',
      'ExitOnForwardFailure=yes',
      '-i',
      fleet.identityPath,
      '-L',
      `${sock}:/run/containerd/containerd.sock`,
      `root@${h.address}`,
    ],
    { stdio: 'ignore' },
  );
  try {
    for (let i = 0; i < 200 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 25));
    if (!existsSync(sock)) throw new Error('ssh did not forward the containerd socket');
    const c = new CriClient({ dial: async () => connect(sock), timeoutMs: 30_000 });
    try {
      return await f(c);
    } finally {
      await c.close();
    }
  } finally {
    ssh.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}
