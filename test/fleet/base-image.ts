import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync, chmodSync, chownSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { debianMirror } from './debian.js';
import { ensureIdentity, ensureOpsPassword } from './identity.js';
import { CACHE_DIR } from './paths.js';
import { $, log, pruneStale, sha256Hex } from './sh.js';

export const BASE_SUITE = 'trixie';
export const BASE_PACKAGES = [
  'systemd',
  'systemd-sysv',
  'dbus',
  'openssh-server',
  'iproute2',
  'ca-certificates',
  'curl',
  'tar',
  'gzip',
  'kmod',
  'procps',
  'sudo',
  // As on a Kubernetes node: the CNI bridge plugin's ipMasq and portmap need it, or a pod sandbox
  // fails "failed to locate iptables".
  'iptables',
];
/** Bump when a setup step changes in a way the file texts below do not capture. */
const SETUP_VERSION = 4;

// nspawn mounts the cgroup v1 controllers read-only inside the container; runc needs to create
// cgroups in them, so they are remounted read-write before anything else starts.
const CGROUP_RW_UNIT = `[Unit]
Description=Remount cgroup controllers read-write (hoist test host)
DefaultDependencies=no
ConditionVirtualization=systemd-nspawn
Before=sysinit.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'for d in /sys/fs/cgroup/*/; do mount -o remount,bind,rw "$d" || true; done'

[Install]
WantedBy=sysinit.target
`;

// Host keys are generated per host outside the image; only the ed25519 one exists.
const SSHD_CONF = `HostKey /etc/ssh/ssh_host_ed25519_key
PasswordAuthentication no
`;

export const BASE_ETC_HOSTS = `127.0.0.1 localhost
::1 localhost ip6-localhost ip6-loopback
`;

const SUDOERS_DEPLOY = `deploy ALL=(ALL:ALL) NOPASSWD: ALL
`;

// ops is the operator whose sudo asks for a password, as on machines with a stricter policy.
const SUDOERS_OPS = `ops ALL=(ALL:ALL) ALL
`;

/** deploy: sudo without password; ops: sudo with one; nosudo: no sudo at all. All log in by the fleet key only. */
export const FLEET_USERS = ['deploy', 'ops', 'nosudo'] as const;

export interface BaseImage {
  dir: string; // the root filesystem
  statusFile: string;
  hash: string;
}

async function inputs(): Promise<{ hash: string; publicKey: string; opsPassword: string }> {
  const { publicKey } = await ensureIdentity();
  const { password: opsPassword } = ensureOpsPassword();
  // The password enters the hash only as its digest: a new password file means a new image.
  const hash = sha256Hex(
    JSON.stringify({
      BASE_SUITE,
      BASE_PACKAGES,
      SETUP_VERSION,
      CGROUP_RW_UNIT,
      SSHD_CONF,
      SUDOERS_DEPLOY,
      SUDOERS_OPS,
      FLEET_USERS,
      BASE_ETC_HOSTS,
      publicKey,
      opsPassword: sha256Hex(opsPassword),
    }),
  ).slice(0, 16);
  return { hash, publicKey, opsPassword };
}

export async function baseImage(): Promise<BaseImage> {
  const { hash } = await inputs();
  const dir = join(CACHE_DIR, `base-${hash}`, 'root');
  if (!existsSync(join(CACHE_DIR, `base-${hash}`, 'complete'))) throw new Error(`base image ${hash} not built; run prepare`);
  return { dir, statusFile: join(dir, 'var/lib/dpkg/status'), hash };
}

export async function ensureBaseImage(): Promise<BaseImage> {
  const { hash, publicKey, opsPassword } = await inputs();
  const top = join(CACHE_DIR, `base-${hash}`);
  const root = join(top, 'root');
  if (existsSync(join(top, 'complete'))) return { dir: root, statusFile: join(root, 'var/lib/dpkg/status'), hash };

  const t0 = Date.now();
  const tmp = `${top}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(join(CACHE_DIR, 'debootstrap-debs'), { recursive: true });
  const mirror = debianMirror();
  log(`building base image ${BASE_SUITE} (${hash}) with debootstrap…`);
  await $`debootstrap --variant=minbase --cache-dir=${join(CACHE_DIR, 'debootstrap-debs')} --include=${BASE_PACKAGES.join(',')} ${BASE_SUITE} ${join(tmp, 'root')} ${mirror}`;
  await customize(join(tmp, 'root'), publicKey, opsPassword, mirror);
  writeFileSync(join(tmp, 'complete'), `${new Date().toISOString()}\n`);
  rmSync(top, { recursive: true, force: true });
  renameSync(tmp, top);
  pruneStale(CACHE_DIR, 'base', top);
  log(`base image ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return { dir: root, statusFile: join(root, 'var/lib/dpkg/status'), hash };
}

async function customize(root: string, publicKey: string, opsPassword: string, mirror: string): Promise<void> {
  const at = (p: string) => join(root, p);

  writeFileSync(at('etc/systemd/system/hoist-cgroup-rw.service'), CGROUP_RW_UNIT);
  mkdirSync(at('etc/systemd/system/sysinit.target.wants'), { recursive: true });
  symlinkSync('/etc/systemd/system/hoist-cgroup-rw.service', at('etc/systemd/system/sysinit.target.wants/hoist-cgroup-rw.service'));

  // debootstrap copies these from the build machine; hosts get their own name at start.
  rmSync(at('etc/hostname'), { force: true });
  writeFileSync(at('etc/hosts'), BASE_ETC_HOSTS);
  writeFileSync(at('etc/resolv.conf'), '# hoist test host: no name service\n');

  // Empty machine-id: each boot gets its own, as on a freshly imaged machine.
  writeFileSync(at('etc/machine-id'), '');
  rmSync(at('var/lib/dbus/machine-id'), { force: true });

  for (const f of readdirSync(at('etc/ssh'))) if (f.startsWith('ssh_host_')) rmSync(at(`etc/ssh/${f}`));
  mkdirSync(at('etc/ssh/sshd_config.d'), { recursive: true });
  writeFileSync(at('etc/ssh/sshd_config.d/hoist-fleet.conf'), SSHD_CONF);

  writeAuthorizedKeys(root, '/root', 0, 0, publicKey);
  for (const user of FLEET_USERS) {
    await $`chroot ${root} useradd --create-home --shell /bin/bash ${user}`;
    // '*' instead of the default locked '!': no password login, but key login is not refused as "locked".
    await $`chroot ${root} usermod -p ${'*'} ${user}`;
    const ids = await idsOf(root, user);
    writeAuthorizedKeys(root, `/home/${user}`, ids.uid, ids.gid, publicKey);
  }
  // Set after the '*' above: ops needs a real password for sudo; sshd still refuses password logins.
  await $({ input: `ops:${opsPassword}\n` })`chroot ${root} chpasswd`;
  writeFileSync(at('etc/sudoers.d/deploy'), SUDOERS_DEPLOY, { mode: 0o440 });
  writeFileSync(at('etc/sudoers.d/ops'), SUDOERS_OPS, { mode: 0o440 });

  // Hosts see only the harness's own apt repo (written per host at start); drop every trace of
  // the build mirror so its address is not baked into the image.
  rmSync(at('etc/apt/sources.list'), { force: true });
  for (const f of readdirSync(at('etc/apt/sources.list.d'))) rmSync(at(`etc/apt/sources.list.d/${f}`), { force: true });
  for (const f of readdirSync(at('var/lib/apt/lists'))) if (f !== 'partial' && f !== 'lock') rmSync(at(`var/lib/apt/lists/${f}`), { force: true });
  for (const f of readdirSync(at('var/cache/apt'))) if (f.endsWith('.bin')) rmSync(at(`var/cache/apt/${f}`), { force: true });
  await $`find ${at('var/cache/apt/archives')} -name ${'*.deb'} -delete`;
  rmSync(at('var/log/bootstrap.log'), { force: true });
  rmSync(at('debootstrap'), { recursive: true, force: true });

  const host = new URL(mirror).host;
  const leak = await $`grep -rIlF --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev ${host} ${at('etc')} ${at('var')} ${at('root')}`.nothrow();
  if (leak.stdout.trim()) throw new Error(`base image still names the build mirror in: ${leak.stdout.trim()}`);
}

async function idsOf(root: string, user: string): Promise<{ uid: number; gid: number }> {
  const line = readFileSync(join(root, 'etc/passwd'), 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${user}:`));
  if (!line) throw new Error(`user ${user} missing from base image`);
  const f = line.split(':');
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

function writeAuthorizedKeys(root: string, home: string, uid: number, gid: number, publicKey: string): void {
  const sshDir = join(root, home, '.ssh');
  mkdirSync(sshDir, { recursive: true });
  chmodSync(sshDir, 0o700);
  const file = join(sshDir, 'authorized_keys');
  writeFileSync(file, `${publicKey}\n`, { mode: 0o600 });
  chownSync(sshDir, uid, gid);
  chownSync(file, uid, gid);
}
