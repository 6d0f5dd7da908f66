import { down, hostStatus, info, prepare, registries, resetHost, startHost, stopHost, up } from './fleet.js';

const USAGE =
  'usage: fleet prepare | up N | down | status | registries | stop NAME [--abrupt] | start NAME | reset NAME  (env HOIST_FLEET_INSTANCE=K: a separate fleet)';

async function timed<T>(what: string, f: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  const r = await f();
  process.stderr.write(`${what}: ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  return r;
}

async function main(argv: string[]): Promise<void> {
  const [cmd, arg, ...rest] = argv;
  switch (cmd) {
    case 'prepare':
      await timed('prepare', prepare);
      return;
    case 'up': {
      const n = Number(arg ?? '3');
      const fi = await timed(`up ${n}`, () => up(n));
      process.stdout.write(`${fi.inventoryPath}\n`);
      return;
    }
    case 'down':
      await timed('down', down);
      return;
    case 'status': {
      const fi = await info();
      const st = await hostStatus();
      for (const h of st) {
        const mem = h.memoryBytes === null ? '-' : `${(h.memoryBytes / 2 ** 20).toFixed(0)} MiB`;
        process.stdout.write(`${h.name}\t${h.address}\t${h.running ? 'up' : 'stopped'}\t${h.systemState ?? '-'}\t${mem}\n`);
      }
      const mems = st.flatMap((h) => (h.memoryBytes === null ? [] : [h.memoryBytes]));
      if (mems.length) {
        const mib = (b: number) => (b / 2 ** 20).toFixed(1);
        process.stdout.write(
          `memory: ${mems.length} running, ${mib(mems.reduce((a, b) => a + b, 0))} MiB in all, ${mib(mems.reduce((a, b) => a + b, 0) / mems.length)} MiB per host (max ${mib(Math.max(...mems))})\n`,
        );
      }
      process.stdout.write(`mirror ${fi.mirrorUrl} (hosts: ${fi.mirrorUrlForHosts}); apt ${fi.aptRepoUrl}\n`);
      process.stdout.write(`releases: ${fi.releases.map((r) => `${r.containerd}/${r.kind}`).join(' ')}\n`);
      // The password stays in its file; this prints where it is.
      process.stdout.write(
        `inventory ${fi.inventoryPath} (deploy via ${fi.bastion.name} ${fi.bastion.address}); root: ${fi.rootInventoryPath}\nops sudo password file ${fi.opsPasswordFile}\n`,
      );
      return;
    }
    case 'registries': {
      // Passwords stay in the state dir; this prints where things are, not secrets.
      const r = await timed('registries', registries);
      for (const x of [r.mirror, r.private, r.plain]) process.stdout.write(`${x.kind}\t${x.url}\t${x.images.join(' ')}\taccess log ${x.accessLog}\n`);
      process.stdout.write(`test CA ${r.pki.ca}; client ${r.pki.clientCert} ${r.pki.clientKey}\n`);
      return;
    }
    case 'stop':
      if (!arg) throw new Error(USAGE);
      await timed(`stop ${arg}`, () => stopHost(arg, { abrupt: rest.includes('--abrupt') }));
      return;
    case 'start':
      if (!arg) throw new Error(USAGE);
      await timed(`start ${arg}`, () => startHost(arg));
      return;
    case 'reset':
      if (!arg) throw new Error(USAGE);
      await timed(`reset ${arg}`, () => resetHost(arg));
      return;
    default:
      throw new Error(USAGE);
  }
}

// `fleet status | head` closes the pipe early; that is not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code !== 'EPIPE') throw e;
});

main(process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
