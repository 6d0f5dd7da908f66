/**
 * Images for the pod test on fleet hosts, where no registry serves registry.k8s.io/pause: the
 * fleet's busybox for the container, and the fleet's pause stand-in (busybox sleeping) tagged as
 * the sandbox image containerd is configured with. Imported as root with `ctr -n k8s.io`.
 */
import { execFile, execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FleetInfo } from '../fleet/fleet.js';
import { pauseLayout } from '../fleet/registries.js';

function sshImport(fleet: FleetInfo, host: string, archive: Buffer): Promise<void> {
  const h = fleet.hosts.find((x) => x.name === host)!;
  return new Promise((resolve, reject) => {
    const child = execFile(
      'ssh',
      [
        '-o',
        'BatchMode=yes',
        '-o',
        'StrictHostKeyChecking=yes',
        '-o',
        `UserKnownHostsFile=${fleet.knownHostsPath}`,
        '-i',
        fleet.identityPath,
        `root@${h.address}`,
        'ctr -n k8s.io images import --all-platforms -',
      ],
      { maxBuffer: 16 << 20 },
      (err, stdout, stderr) => (err ? reject(new Error(`ctr import on ${host}: ${stdout}${stderr}`)) : resolve()),
    );
    child.stdin!.end(archive);
  });
}

/** The pause stand-in as an OCI archive that `ctr images import` names `sandboxImage`. */
export async function pauseArchive(ociImagePath: string, sandboxImage: string): Promise<Buffer> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'hoist-pause-'));
  try {
    cpSync(await pauseLayout(ociImagePath), tmp, { recursive: true });
    const indexPath = path.join(tmp, 'index.json');
    const index = JSON.parse(readFileSync(indexPath, 'utf8')) as { manifests: { annotations?: Record<string, string> }[] };
    index.manifests[0].annotations = { 'io.containerd.image.name': sandboxImage };
    writeFileSync(indexPath, JSON.stringify(index));
    return execFileSync('tar', ['-C', tmp, '-cf', '-', '.'], { maxBuffer: 1 << 30 });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Imports the busybox image (fleet.ociImageName) and the pause stand-in as `sandboxImage` on `host`. */
export async function importPodImages(fleet: FleetInfo, host: string, sandboxImage: string): Promise<void> {
  await sshImport(fleet, host, readFileSync(fleet.ociImagePath));
  await sshImport(fleet, host, await pauseArchive(fleet.ociImagePath, sandboxImage));
}
