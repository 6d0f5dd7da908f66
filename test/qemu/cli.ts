/**
 * npx tsx test/qemu/cli.ts image | up | status | down
 *
 * Optional and slow: one real-kernel Debian VM under QEMU/TCG (no KVM needed) for a smoke run of
 * hoist. Needs root and `apt-get install qemu-system-x86 qemu-utils` besides the fleet's packages.
 */
import { ensureVmImage } from './image.js';
import { readVm, startVm, stopVm } from './vm.js';

const USAGE = 'usage: qemu image | up [--memory MiB] [--cpus N] | status | down';

function flag(args: string[], name: string): number | undefined {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const v = Number(args[i + 1]);
  if (!Number.isInteger(v) || v <= 0) throw new Error(`${name} needs a positive integer`);
  return v;
}

async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'image': {
      const img = await ensureVmImage();
      process.stdout.write(`${img.dir} (kernel ${img.kernelRelease})\n`);
      return;
    }
    case 'up': {
      const vm = await startVm({ memoryMiB: flag(rest, '--memory'), cpus: flag(rest, '--cpus') });
      process.stderr.write(`VM up in ${vm.bootSeconds.toFixed(1)} s: kernel ${vm.kernelRelease}, ssh on 127.0.0.1:${vm.sshPort}, console ${vm.consoleLog}\n`);
      process.stdout.write(`${vm.inventoryPath}\n`);
      return;
    }
    case 'status': {
      const vm = readVm();
      process.stdout.write(vm ? `up: pid ${vm.pid}, ssh 127.0.0.1:${vm.sshPort}, inventory ${vm.inventoryPath}\n` : 'down\n');
      return;
    }
    case 'down':
      await stopVm();
      return;
    default:
      throw new Error(USAGE);
  }
}

main(process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
