import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, rmSync, writeFileSync, readdirSync, copyFileSync, chmodSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { BASE_ETC_HOSTS, FLEET_USERS } from './base-image.js';
import { cgroupPids, createCgroups, hostCgroupDirs, removeCgroups } from './cgroups.js';
import { setHostLink } from './network.js';
import { hostsFileEntries } from './registries.js';
import { HOSTKEYS_DIR, HOSTS_DIR, IDENTITY_PATH, KNOWN_HOSTS_PATH, hostAddress, hostGateway, netnsName } from './paths.js';
import { $, sleep, waitFor } from './sh.js';

export interface FleetHost {
  name: string;
  index: number;
  address: string;
  gateway: string;
}

export interface HostRuntime {
  nspawnPid: number;
  cgroups: string[];
  systemState: string;
}

export function hostPaths(name: string) {
  const dir = join(HOSTS_DIR, name);
  const data = join(dir, 'data');
  return {
    dir,
    /** Writable storage: overlay upper/work and /var/lib/containerd. */
    data,
    dataImage: join(dir, 'data.ext4'),
    upper: join(data, 'upper'),
    work: join(data, 'work'),
    containerd: join(data, 'containerd'),
    root: join(dir, 'root'),
    console: join(dir, 'console.log'),
  };
}

/** A per-host ed25519 host key, kept across stop/start/reset so known_hosts stays valid. */
export async function ensureHostKey(name: string): Promise<string> {
  const dir = join(HOSTKEYS_DIR, name);
  const key = join(dir, 'ssh_host_ed25519_key');
  if (!existsSync(key)) {
    mkdirSync(dir, { recursive: true });
    await $`ssh-keygen -q -t ed25519 -N ${''} -C ${`root@${name}`} -f ${key}`;
  }
  return readFileSync(`${key}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ');
}

async function fsType(dir: string): Promise<string> {
  return (await $`stat -f -c %T ${dir}`).stdout.trim();
}

/**
 * Writable storage of a host: the overlay's upper/work dirs and a non-overlay /var/lib/containerd
 * (containerd's overlayfs snapshotter cannot stack on an overlay root). Neither an overlay upper dir
 * nor that directory may sit on overlayfs, so if the state dir does, they go into a loop-mounted
 * ext4 image per host.
 */
export async function setupHostStorage(name: string): Promise<void> {
  const p = hostPaths(name);
  mkdirSync(p.data, { recursive: true });
  mkdirSync(p.root, { recursive: true });
  if ((await fsType(HOSTS_DIR)) === 'overlayfs' && !(await isMountPoint(p.data))) {
    if (!existsSync(p.dataImage)) {
      await $`truncate -s 8G ${p.dataImage}`;
      await $`mkfs.ext4 -q -F ${p.dataImage}`;
    }
    await $`mount -o loop ${p.dataImage} ${p.data}`;
  }
  for (const d of [p.upper, p.work, p.containerd]) mkdirSync(d, { recursive: true });
}

async function isMountPoint(dir: string): Promise<boolean> {
  return (await $`mountpoint -q ${dir}`.nothrow()).exitCode === 0;
}

/**
 * Who may log in where, as on a fleet behind a bastion: on the hosts the unprivileged users come
 * only from the bastion, root directly (the harness observes hosts as root, and root-direct is the
 * test variant); on the bastion only deploy, from the controller, besides root.
 */
export function sshdAccessConf(host: FleetHost): string {
  if (host.index === 0) return `AllowUsers root deploy@${hostGateway(0)}\n`;
  return `AllowUsers root ${FLEET_USERS.map((u) => `${u}@${hostAddress(0)}`).join(' ')}\n`;
}

/** Files that differ per host, written into the overlay's upper layer before boot. */
export function writeHostFiles(host: FleetHost, port: number): void {
  const p = hostPaths(host.name);
  const sshDir = join(p.upper, 'etc/ssh');
  mkdirSync(sshDir, { recursive: true });
  for (const f of ['ssh_host_ed25519_key', 'ssh_host_ed25519_key.pub']) {
    copyFileSync(join(HOSTKEYS_DIR, host.name, f), join(sshDir, f));
    chmodSync(join(sshDir, f), f.endsWith('.pub') ? 0o644 : 0o600);
  }
  mkdirSync(join(sshDir, 'sshd_config.d'), { recursive: true });
  writeFileSync(join(sshDir, 'sshd_config.d/hoist-access.conf'), sshdAccessConf(host));
  writeFileSync(join(p.upper, 'etc/hostname'), `${host.name}\n`);
  // The fleet's image registries answer on the host's own gateway, under the names their certificates carry.
  writeFileSync(join(p.upper, 'etc/hosts'), `${BASE_ETC_HOSTS}127.0.1.1 ${host.name}\n${hostsFileEntries(host.gateway)}`);
  mkdirSync(join(p.upper, 'etc/apt'), { recursive: true });
  writeFileSync(join(p.upper, 'etc/apt/sources.list'), `deb [trusted=yes] http://${host.gateway}:${port}/apt ./\n`);
}

export async function mountHostRoot(name: string, baseDir: string): Promise<void> {
  const p = hostPaths(name);
  if (await isMountPoint(p.root)) return;
  await $`mount -t overlay overlay -o ${`lowerdir=${baseDir},upperdir=${p.upper},workdir=${p.work}`} ${p.root}`;
}

export async function unmountHost(name: string): Promise<void> {
  const p = hostPaths(name);
  for (const d of [p.root, p.data]) {
    if (!existsSync(d) || !(await isMountPoint(d))) continue;
    if ((await $`umount ${d}`.nothrow()).exitCode !== 0) await $`umount -l ${d}`;
  }
}

// The wrapper moves itself into the host's own cgroup in every hierarchy before exec'ing nspawn:
// with --keep-unit nspawn builds payload/ and supervisor/ inside its caller's cgroup, so two hosts
// sharing one would collide.
const CGROUP_WRAPPER = `IFS='
'
for d in $HOIST_CGROUPS; do echo $$ > "$d/cgroup.procs" || exit 97; done
unset IFS HOIST_CGROUPS
exec "$@"`;

export async function bootHost(host: FleetHost): Promise<{ nspawnPid: number; cgroups: string[] }> {
  const p = hostPaths(host.name);
  const cgroups = hostCgroupDirs(host.name);
  await removeCgroups(cgroups.filter((d) => existsSync(d)));
  createCgroups(cgroups);
  const args = [
    '--boot',
    '--register=no',
    '--keep-unit',
    '-M',
    host.name,
    '-D',
    p.root,
    `--network-namespace-path=/run/netns/${netnsName(host.index)}`,
    '--capability=CAP_NET_ADMIN',
    '--system-call-filter=@keyring bpf',
    `--bind=${p.containerd}:/var/lib/containerd`,
  ];
  const out = openSync(p.console, 'a');
  const child = spawn('/bin/sh', ['-c', CGROUP_WRAPPER, 'hoist-nspawn', 'systemd-nspawn', ...args], {
    detached: true,
    stdio: ['ignore', out, out],
    // nspawn mounts /proc/sys read-only; "network" leaves /proc/sys/net writable, which is the
    // host's own network namespace. The CNI bridge plugin writes there (ip_forward, per-interface
    // settings); without it RunPodSandbox fails "failed to enable forwarding: open
    // /proc/sys/net/ipv6/conf/all/forwarding: read-only file system".
    env: { ...process.env, HOIST_CGROUPS: cgroups.join('\n'), SYSTEMD_NSPAWN_API_VFS_WRITABLE: 'network' },
  });
  closeSync(out);
  child.unref();
  if (child.pid === undefined) throw new Error(`could not spawn systemd-nspawn for ${host.name}`);
  return { nspawnPid: child.pid, cgroups };
}

export function sshBaseArgs(): string[] {
  return [
    '-o',
    'BatchMode=yes',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    `UserKnownHostsFile=${KNOWN_HOSTS_PATH}`,
    '-o',
    'ConnectTimeout=3',
    '-o',
    'LogLevel=ERROR',
    '-i',
    IDENTITY_PATH,
  ];
}

function tcpOpen(address: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: address, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** Wait for sshd, then for systemd to finish booting; returns `running` or `degraded`. */
export async function waitHostReady(host: FleetHost, nspawnPid: number, timeoutMs = 90_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  const consoleLog = hostPaths(host.name).console;
  await waitFor(
    `sshd on ${host.name}`,
    timeoutMs,
    async () => {
      if (processGone(nspawnPid)) throw new Error(`${host.name}: systemd-nspawn exited during boot; see ${consoleLog}`);
      return (await tcpOpen(host.address, 22)) ? true : undefined;
    },
    50,
  );
  for (;;) {
    const r = await $`ssh ${sshBaseArgs()} ${`root@${host.address}`} systemctl is-system-running --wait`.nothrow();
    const state = r.stdout.trim();
    if (state === 'running' || state === 'degraded') {
      if (state === 'degraded') {
        const failed = (await $`ssh ${sshBaseArgs()} ${`root@${host.address}`} systemctl --failed --no-legend --plain`.nothrow()).stdout.trim();
        return `degraded (${failed
          .split('\n')
          .map((l) => l.split(' ')[0])
          .join(', ')})`;
      }
      return state;
    }
    if (Date.now() > deadline) throw new Error(`${host.name} did not finish booting: ${state || r.stderr.trim()}`);
    await sleep(200);
  }
}

export function processGone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

function killAll(pids: number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      /* already gone */
    }
  }
}

/**
 * Halt a host. Graceful: SIGTERM to nspawn (it asks the host's systemd to power off), then after a grace
 * period SIGKILL everything in the host's cgroups — killing its init ends the whole PID namespace.
 * Abrupt: SIGKILL at once, the host dies mid-whatever.
 */
export async function haltHost(
  host: FleetHost,
  rt: { nspawnPid: number; cgroups: string[] },
  opts: { abrupt?: boolean; graceMs?: number } = {},
): Promise<void> {
  const everything = () => [...new Set([rt.nspawnPid, ...rt.cgroups.flatMap((d) => (existsSync(d) ? cgroupPids(d) : []))])].filter((p) => !processGone(p));
  // Take the link down first so the address stops answering, like a machine that lost power.
  await setHostLink(host.index, false).catch(() => undefined);
  if (!opts.abrupt && !processGone(rt.nspawnPid)) {
    killAll([rt.nspawnPid], 'SIGTERM');
    const deadline = Date.now() + (opts.graceMs ?? 15_000);
    while (!processGone(rt.nspawnPid) && Date.now() < deadline) await sleep(100);
  }
  const killDeadline = Date.now() + 10_000;
  for (;;) {
    const left = everything();
    if (left.length === 0) break;
    killAll(left, 'SIGKILL');
    if (Date.now() > killDeadline) throw new Error(`${host.name}: processes survive SIGKILL: ${left.join(' ')}`);
    await sleep(50);
  }
  await removeCgroups(rt.cgroups);
  await unmountHost(host.name);
}

/** Pristine base again: empty upper layer and empty /var/lib/containerd. */
export async function wipeHost(name: string): Promise<void> {
  const p = hostPaths(name);
  await setupHostStorage(name); // the data dir may be a loop mount that halting unmounted
  rmSync(p.upper, { recursive: true, force: true });
  rmSync(p.work, { recursive: true, force: true });
  mkdirSync(p.upper, { recursive: true });
  mkdirSync(p.work, { recursive: true });
  if (existsSync(p.containerd)) for (const f of readdirSync(p.containerd)) rmSync(join(p.containerd, f), { recursive: true, force: true });
}
