/**
 * A bootable disk for one QEMU VM: the fleet's cached Debian base plus a real Debian kernel and
 * initramfs, as an ext4 image booted with QEMU's direct kernel boot (no boot loader needed).
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { $ } from 'zx';
import { BASE_ETC_HOSTS, ensureBaseImage } from '../fleet/base-image.js';
import { aptEnv, debianMirror } from '../fleet/debian.js';
import { CACHE_DIR } from '../fleet/paths.js';
import { pruneStale, sha256Hex } from '../fleet/sh.js';

$.verbose = false;
$.quiet = true;

function log(msg: string): void {
  process.stderr.write(`[qemu] ${msg}\n`);
}

/** The base is trixie: its glibc runs every runc the release mirror carries. */
const SUITE = 'trixie';
/** udev loads the virtio drivers a VM needs (an nspawn host has no use for it, so the base lacks it). */
const VM_PACKAGES = ['linux-image-amd64', 'initramfs-tools', 'udev'];
const HOSTNAME = 'hoist-vm';
const DISK_HEADROOM_MIB = 2048;
/** Bump when a step below changes in a way the texts hashed into the cache key do not capture. */
const SETUP_VERSION = 3;

// QEMU's user-mode network always puts the guest at 10.0.2.15 with the gateway at .2; with
// net.ifnames=0 on the kernel command line the only NIC is eth0.
const NETWORK_FILE = `[Match]
Name=eth0

[Network]
Address=10.0.2.15/24
Gateway=10.0.2.2
LinkLocalAddressing=no
IPv6AcceptRA=no
`;

const FSTAB = `/dev/vda / ext4 rw,errors=remount-ro 0 1
`;

export const KERNEL_CMDLINE = 'root=/dev/vda rw console=ttyS0 net.ifnames=0 panic=-1';

export interface VmImage {
  dir: string;
  /** Pristine root filesystem; VMs boot from a copy-on-write overlay of it. */
  disk: string;
  kernel: string;
  initrd: string;
  /** `uname -r` of the installed kernel. */
  kernelRelease: string;
  /** `type base64` of the image's ed25519 SSH host key, for known_hosts. */
  hostKey: string;
}

interface Manifest {
  kernelRelease: string;
  hostKey: string;
}

function cacheKey(baseHash: string): string {
  return sha256Hex(JSON.stringify({ baseHash, SUITE, VM_PACKAGES, HOSTNAME, DISK_HEADROOM_MIB, SETUP_VERSION, NETWORK_FILE, FSTAB })).slice(0, 16);
}

function load(top: string): VmImage {
  const m = JSON.parse(readFileSync(join(top, 'manifest.json'), 'utf8')) as Manifest;
  return { dir: top, disk: join(top, 'disk.raw'), kernel: join(top, 'vmlinuz'), initrd: join(top, 'initrd.img'), ...m };
}

export async function ensureVmImage(): Promise<VmImage> {
  const base = await ensureBaseImage();
  const top = join(CACHE_DIR, `qemu-${cacheKey(base.hash)}`);
  if (existsSync(join(top, 'manifest.json'))) return load(top);

  const t0 = Date.now();
  const tmp = `${top}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  const root = join(tmp, 'root');
  mkdirSync(tmp, { recursive: true });
  log(`building QEMU VM image from base ${base.hash}…`);
  await $`cp -a ${base.dir} ${root}`;

  const debs = await downloadPackages(root, join(tmp, 'debs'));
  await installPackages(root, debs);
  rmSync(join(tmp, 'debs'), { recursive: true, force: true });
  const kernelRelease = installedKernel(root);
  const hostKey = await configure(root);

  copyFileSync(join(root, 'boot', `vmlinuz-${kernelRelease}`), join(tmp, 'vmlinuz'));
  copyFileSync(join(root, 'boot', `initrd.img-${kernelRelease}`), join(tmp, 'initrd.img'));
  await assertNoMirrorLeak(root);

  const usedMiB = Number((await $`du -sm ${root}`).stdout.split('\t')[0]);
  const disk = join(tmp, 'disk.raw');
  await $`truncate -s ${`${usedMiB + DISK_HEADROOM_MIB}M`} ${disk}`;
  // -d copies the tree with owners, modes and device nodes: no loop mount, no root-owned mount point.
  await $`mkfs.ext4 -q -F -L hoist-root -d ${root} ${disk}`;
  rmSync(root, { recursive: true, force: true });

  writeFileSync(join(tmp, 'manifest.json'), `${JSON.stringify({ kernelRelease, hostKey } satisfies Manifest, null, 2)}\n`);
  rmSync(top, { recursive: true, force: true });
  renameSync(tmp, top);
  pruneStale(CACHE_DIR, 'qemu', top);
  log(`QEMU VM image ready (kernel ${kernelRelease}, ${usedMiB} MiB used) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return load(top);
}

/**
 * The kernel and what it needs, resolved against the image's own dpkg status so only missing
 * packages come down, from the machine's Debian mirror through a private apt configuration.
 */
async function downloadPackages(root: string, dir: string): Promise<string[]> {
  const env = aptEnv(SUITE);
  try {
    await env.run('apt-get', ['update']);
    mkdirSync(join(dir, 'partial'), { recursive: true });
    await env.run('apt-get', [
      'install',
      '--download-only',
      '--no-install-recommends',
      '-y',
      '-o',
      `Dir::State::status=${join(root, 'var/lib/dpkg/status')}`,
      '-o',
      `Dir::Cache::archives=${dir}/`,
      ...VM_PACKAGES,
    ]);
  } finally {
    // Package indexes are large and only needed while building (the fleet drops them too).
    rmSync(env.dir, { recursive: true, force: true });
    try {
      rmdirSync(dirname(env.dir));
    } catch {
      // Another suite's configuration is still there: not ours to remove.
    }
  }
  const files = readdirSync(dir).filter((f) => f.endsWith('.deb'));
  if (!files.some((f) => f.startsWith('linux-image-'))) throw new Error(`no kernel package among the downloads: ${files.join(' ')}`);
  return files.map((f) => join(dir, f));
}

/** Installed inside the image, so maintainer scripts (update-initramfs above all) run as on a real install. */
async function installPackages(root: string, debs: string[]): Promise<void> {
  const inside = join(root, 'tmp/hoist-debs');
  mkdirSync(inside, { recursive: true });
  for (const d of debs) copyFileSync(d, join(inside, d.slice(d.lastIndexOf('/') + 1)));
  const mounts: string[] = [];
  try {
    await $`mount -t proc proc ${join(root, 'proc')}`;
    mounts.push(join(root, 'proc'));
    await $`mount --bind /dev ${join(root, 'dev')}`;
    mounts.push(join(root, 'dev'));
    const names = readdirSync(inside).map((f) => `/tmp/hoist-debs/${f}`);
    // apt orders the local packages (the kernel pre-depends on linux-base); it has no sources in
    // the image and needs none: everything missing is among the files.
    const r = await $({
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C' },
    })`chroot ${root} apt-get install -y --no-install-recommends -o APT::Sandbox::User=root ${names}`.nothrow();
    if (r.exitCode !== 0) throw new Error(`installing the kernel in the VM image failed:\n${(r.stdout + r.stderr).trim().split('\n').slice(-20).join('\n')}`);
  } finally {
    for (const m of mounts.reverse()) await $`umount ${m}`.nothrow();
    rmSync(inside, { recursive: true, force: true });
  }
}

function installedKernel(root: string): string {
  const releases = readdirSync(join(root, 'boot'))
    .filter((f) => f.startsWith('vmlinuz-'))
    .map((f) => f.slice('vmlinuz-'.length));
  if (releases.length !== 1) throw new Error(`expected one kernel in the VM image, found: ${releases.join(', ') || 'none'}`);
  const r = releases[0];
  if (!existsSync(join(root, 'boot', `initrd.img-${r}`))) throw new Error(`kernel ${r} has no initramfs in the VM image`);
  return r;
}

/** What differs from an nspawn host: its own disk, a NIC to configure, a host key of its own. */
async function configure(root: string): Promise<string> {
  const at = (p: string) => join(root, p);
  writeFileSync(at('etc/hostname'), `${HOSTNAME}\n`);
  writeFileSync(at('etc/hosts'), `${BASE_ETC_HOSTS}127.0.1.1 ${HOSTNAME}\n`);
  writeFileSync(at('etc/fstab'), FSTAB);
  mkdirSync(at('etc/systemd/network'), { recursive: true });
  writeFileSync(at('etc/systemd/network/10-hoist-vm.network'), NETWORK_FILE);
  const wants = at('etc/systemd/system/multi-user.target.wants');
  mkdirSync(wants, { recursive: true });
  if (!existsSync(join(wants, 'systemd-networkd.service')))
    symlinkSync('/usr/lib/systemd/system/systemd-networkd.service', join(wants, 'systemd-networkd.service'));

  const key = at('etc/ssh/ssh_host_ed25519_key');
  rmSync(key, { force: true });
  rmSync(`${key}.pub`, { force: true });
  await $`ssh-keygen -q -t ed25519 -N ${''} -C ${`root@${HOSTNAME}`} -f ${key}`;
  chmodSync(key, 0o600);
  return readFileSync(`${key}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ');
}

async function assertNoMirrorLeak(root: string): Promise<void> {
  const host = new URL(debianMirror()).host;
  const leak = await $`grep -rIlF ${host} ${join(root, 'etc')} ${join(root, 'var')} ${join(root, 'root')}`.nothrow();
  if (leak.stdout.trim()) throw new Error(`VM image names the build mirror in: ${leak.stdout.trim()}`);
}
