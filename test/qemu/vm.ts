/**
 * One real-kernel VM under QEMU without KVM (TCG), reachable only through a forwarded loopback
 * port: slow (tens of seconds to boot), so it backs a single smoke test, not the suite.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { $ } from 'zx';
import { ensureIdentity } from '../fleet/identity.js';
import { sleep } from '../fleet/sh.js';
import { KERNEL_CMDLINE, ensureVmImage, type VmImage } from './image.js';

$.verbose = false;
$.quiet = true;

export const QEMU_DIR = dirname(fileURLToPath(import.meta.url));
/** Per-run files (overlay disk, console log, pid, inventory); removed by stopVm. */
export const STATE_DIR = process.env.HOIST_QEMU_STATE ?? join(QEMU_DIR, '.state');
const VM_FILE = join(STATE_DIR, 'vm.json');
const VM_NAME = 'vm1';

export interface RunningVm {
  name: string;
  pid: number;
  /** Loopback port forwarded to the guest's sshd. */
  sshPort: number;
  identityPath: string;
  knownHostsPath: string;
  inventoryPath: string;
  consoleLog: string;
  kernelRelease: string;
  bootSeconds: number;
}

export interface VmOptions {
  memoryMiB?: number;
  cpus?: number;
  /** Seconds to wait for sshd and for systemd to finish booting. */
  bootTimeout?: number;
}

async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen({ host: '127.0.0.1', port: 0 }, () => {
      const addr = s.address();
      s.close(() => (addr && typeof addr === 'object' ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

function sshArgs(vm: Pick<RunningVm, 'sshPort' | 'identityPath' | 'knownHostsPath'>): string[] {
  return [
    '-o',
    'BatchMode=yes',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    `UserKnownHostsFile=${vm.knownHostsPath}`,
    '-o',
    'ConnectTimeout=5',
    '-o',
    'LogLevel=ERROR',
    '-i',
    vm.identityPath,
    '-p',
    String(vm.sshPort),
    'root@127.0.0.1',
  ];
}

const pexec = promisify(execFile);

/** Runs a command in the VM with OpenSSH and strict host-key checking: an observer independent of hoist. */
export async function onVm(vm: RunningVm, script: string): Promise<{ code: number; out: string }> {
  try {
    const r = await pexec('ssh', [...sshArgs(vm), script], { maxBuffer: 64 << 20 });
    return { code: 0, out: r.stdout };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : 1, out: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

export async function copyToVm(vm: RunningVm, local: string, remote: string): Promise<void> {
  const args = sshArgs(vm);
  // scp spells the port -P and takes the destination separately.
  const opts = args.slice(0, args.indexOf('-p'));
  await pexec('scp', ['-q', ...opts, '-P', String(vm.sshPort), local, `root@127.0.0.1:${remote}`]);
}

function qemuAlive(pid: number): boolean {
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    // A recycled pid must not be mistaken for the VM: it has to be QEMU running our overlay.
    return cmd.includes('qemu-system') && cmd.includes(STATE_DIR);
  } catch {
    return false;
  }
}

export function readVm(): RunningVm | undefined {
  if (!existsSync(VM_FILE)) return undefined;
  const vm = JSON.parse(readFileSync(VM_FILE, 'utf8')) as RunningVm;
  return qemuAlive(vm.pid) ? vm : undefined;
}

function renderInventory(vm: Omit<RunningVm, 'inventoryPath' | 'pid' | 'bootSeconds'>): string {
  return [
    '# Written by test/qemu (npx tsx test/qemu/cli.ts up); one QEMU VM behind a forwarded loopback port.',
    '[defaults]',
    'user = "root"',
    `identity_file = ${JSON.stringify(vm.identityPath)}`,
    `known_hosts_file = ${JSON.stringify(vm.knownHostsPath)}`,
    '',
    '[groups.qemu]',
    `hosts = [${JSON.stringify(vm.name)}]`,
    '',
    `[hosts.${vm.name}]`,
    'address = "127.0.0.1"',
    `port = ${vm.sshPort}`,
    '',
  ].join('\n');
}

/** Boots the VM from a fresh overlay of the cached image and waits until systemd is up. */
export async function startVm(opts: VmOptions = {}): Promise<RunningVm> {
  await stopVm();
  const image: VmImage = await ensureVmImage();
  const { privatePath } = await ensureIdentity();
  mkdirSync(STATE_DIR, { recursive: true });
  const overlay = join(STATE_DIR, 'disk.qcow2');
  const consoleLog = join(STATE_DIR, 'console.log');
  const pidFile = join(STATE_DIR, 'qemu.pid');
  const knownHostsPath = join(STATE_DIR, 'known_hosts');
  rmSync(consoleLog, { force: true });
  await $`qemu-img create -q -f qcow2 -F raw -b ${image.disk} ${overlay}`;

  const sshPort = await freeLoopbackPort();
  writeFileSync(knownHostsPath, `[127.0.0.1]:${sshPort} ${image.hostKey}\n`);
  const t0 = Date.now();
  // restrict=on: the guest reaches nothing outside, only the forwarded port reaches it.
  await $`qemu-system-x86_64 ${[
    '-name',
    `hoist-${VM_NAME}`,
    '-accel',
    'tcg,thread=multi',
    '-cpu',
    'max',
    '-m',
    String(opts.memoryMiB ?? 1024),
    '-smp',
    String(opts.cpus ?? 2),
    '-kernel',
    image.kernel,
    '-initrd',
    image.initrd,
    '-append',
    KERNEL_CMDLINE,
    '-drive',
    `file=${overlay},if=virtio,format=qcow2`,
    '-netdev',
    `user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:${sshPort}-:22`,
    '-device',
    'virtio-net-pci,netdev=n0',
    '-display',
    'none',
    '-monitor',
    'none',
    '-serial',
    `file:${consoleLog}`,
    '-no-reboot',
    '-daemonize',
    '-pidfile',
    pidFile,
  ]}`;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  const base = { name: VM_NAME, sshPort, identityPath: privatePath, knownHostsPath, consoleLog, kernelRelease: image.kernelRelease };
  const inventoryPath = join(STATE_DIR, 'inventory.toml');
  writeFileSync(inventoryPath, renderInventory(base));
  const vm: RunningVm = { ...base, pid, inventoryPath, bootSeconds: 0 };
  writeFileSync(VM_FILE, `${JSON.stringify(vm, null, 2)}\n`);

  try {
    await waitBooted(vm, (opts.bootTimeout ?? 300) * 1000);
  } catch (e) {
    const tail = existsSync(consoleLog) ? readFileSync(consoleLog, 'utf8').split('\n').slice(-25).join('\n') : '';
    await stopVm();
    throw new Error(`${(e as Error).message}\nlast console lines:\n${tail}`);
  }
  vm.bootSeconds = (Date.now() - t0) / 1000;
  writeFileSync(VM_FILE, `${JSON.stringify(vm, null, 2)}\n`);
  return vm;
}

/**
 * QEMU accepts connections on the forwarded port before the guest listens, so readiness is a
 * completed SSH login with the expected host key, then systemd's own verdict.
 */
async function waitBooted(vm: RunningVm, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!qemuAlive(vm.pid)) throw new Error('QEMU exited during boot');
    const r = await onVm(vm, 'systemctl is-system-running --wait');
    const state = r.out.trim().split('\n').pop() ?? '';
    if (state === 'running') return;
    if (state === 'degraded') {
      const failed = await onVm(vm, 'systemctl --failed --no-legend --plain');
      throw new Error(`VM booted degraded: ${failed.out.trim()}`);
    }
    if (Date.now() > deadline) throw new Error(`VM not ready after ${timeoutMs / 1000} s (last: ${r.out.trim() || `ssh exit ${r.code}`})`);
    await sleep(2000);
  }
}

/** Powers the VM off (it is disposable: the overlay goes with it) and removes the run's files. */
export async function stopVm(): Promise<void> {
  if (existsSync(VM_FILE)) {
    const vm = JSON.parse(readFileSync(VM_FILE, 'utf8')) as RunningVm;
    if (qemuAlive(vm.pid)) {
      process.kill(vm.pid, 'SIGTERM');
      for (let i = 0; i < 50 && qemuAlive(vm.pid); i++) await sleep(100);
      if (qemuAlive(vm.pid)) process.kill(vm.pid, 'SIGKILL');
    }
  }
  rmSync(STATE_DIR, { recursive: true, force: true });
}
