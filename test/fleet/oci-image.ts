import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync, chmodSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CACHE_DIR } from './paths.js';
import { $, log, pruneStale, sha256Hex } from './sh.js';
import { reproducibleTar } from './tarball.js';

export const OCI_IMAGE_NAME = 'docker.io/hoist/busybox:1';
const OCI_REF_NAME = '1';
const BUSYBOX = '/bin/busybox';
const IMAGE_VERSION = 1;

function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * A one-layer OCI image archive holding the static busybox, built offline so hosts without a
 * registry can `ctr image import` it and run a container.
 */
export async function ensureOciImage(): Promise<{ path: string; name: string }> {
  if (!existsSync(BUSYBOX)) throw new Error(`${BUSYBOX} missing: install busybox-static`);
  const bb = readFileSync(BUSYBOX);
  const hash = sha256Hex(JSON.stringify({ IMAGE_VERSION, OCI_IMAGE_NAME, busybox: sha256(bb) })).slice(0, 16);
  const dir = join(CACHE_DIR, `oci-${hash}`);
  const out = join(dir, 'busybox-oci.tar');
  if (existsSync(out)) return { path: out, name: OCI_IMAGE_NAME };
  const ldd = await $`ldd ${BUSYBOX}`.nothrow();
  if (!/not a dynamic executable|statically linked/.test(ldd.stdout + ldd.stderr)) throw new Error(`${BUSYBOX} is not static: install busybox-static`);

  const tmp = `${dir}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  const rootfs = join(tmp, 'rootfs');
  mkdirSync(join(rootfs, 'bin'), { recursive: true });
  for (const d of ['etc', 'tmp', 'proc', 'sys', 'dev']) mkdirSync(join(rootfs, d), { recursive: true });
  copyFileSync(BUSYBOX, join(rootfs, 'bin/busybox'));
  chmodSync(join(rootfs, 'bin/busybox'), 0o755);
  symlinkSync('busybox', join(rootfs, 'bin/sh'));

  const layout = join(tmp, 'layout');
  const blobs = join(layout, 'blobs/sha256');
  mkdirSync(blobs, { recursive: true });
  const layerTar = join(tmp, 'layer.tar');
  await reproducibleTar(rootfs, ['bin', 'dev', 'etc', 'proc', 'sys', 'tmp'], layerTar);
  const diffId = sha256(readFileSync(layerTar));
  const layerGz = join(tmp, 'layer.tar.gz');
  await $`gzip -n -9 -c ${layerTar} > ${layerGz}`;
  const layer = readFileSync(layerGz);
  const layerDigest = sha256(layer);
  writeFileSync(join(blobs, layerDigest), layer);

  const addBlob = (obj: unknown): { digest: string; size: number } => {
    const data = Buffer.from(JSON.stringify(obj));
    const digest = sha256(data);
    writeFileSync(join(blobs, digest), data);
    return { digest: `sha256:${digest}`, size: data.length };
  };
  const config = addBlob({
    created: '1970-01-01T00:00:00Z',
    architecture: 'amd64',
    os: 'linux',
    config: { Env: ['PATH=/bin'], Cmd: ['/bin/sh'] },
    rootfs: { type: 'layers', diff_ids: [`sha256:${diffId}`] },
    history: [{ created: '1970-01-01T00:00:00Z', created_by: 'hoist-fleet: static busybox' }],
  });
  const manifest = addBlob({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${layerDigest}`, size: layer.length }],
  });
  writeFileSync(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(
    join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...manifest,
          platform: { architecture: 'amd64', os: 'linux' },
          annotations: { 'io.containerd.image.name': OCI_IMAGE_NAME, 'org.opencontainers.image.ref.name': OCI_REF_NAME },
        },
      ],
    }),
  );
  mkdirSync(dir, { recursive: true });
  await reproducibleTar(layout, ['oci-layout', 'index.json', 'blobs'], `${out}.tmp`);
  renameSync(`${out}.tmp`, out);
  rmSync(tmp, { recursive: true, force: true });
  pruneStale(CACHE_DIR, 'oci', dir);
  log(`OCI image ${OCI_IMAGE_NAME}: ${out} (${statSync(out).size} bytes)`);
  return { path: out, name: OCI_IMAGE_NAME };
}
