// Wall time of fleet up/down and memory per idle host. Standalone: npx tsx test/bench/fleet-bench.ts
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import { down, hostStatus, info, prepare, up } from '../fleet/fleet.js';

const HOSTS = 3;

export async function benchFleet(): Promise<Record<string, number | string>> {
  let wasUp = false;
  try {
    await info();
    wasUp = true;
  } catch {
    wasUp = false;
  }
  const tPrep = Date.now();
  await prepare(); // cached inputs: measures only the cache check unless something changed
  const prepareMs = Date.now() - tPrep;
  if (wasUp) await down();

  const t0 = Date.now();
  const fleet = await up(HOSTS);
  const upMs = Date.now() - t0;
  await new Promise((r) => setTimeout(r, 2000)); // let boot-time jobs settle before sampling memory
  const status = await hostStatus();
  const mem = status.map((h) => h.memoryBytes ?? 0);
  const states = status.map((h) => `${h.name}:${h.systemState}`).join(' ');

  const t1 = Date.now();
  await down();
  const downMs = Date.now() - t1;
  if (wasUp) await up(HOSTS);

  return {
    hosts: fleet.hosts.length,
    prepare_cached_ms: prepareMs,
    up_ms: upMs,
    down_ms: downMs,
    host_memory_mib_avg: Math.round(mem.reduce((a, b) => a + b, 0) / mem.length / 2 ** 20),
    host_memory_mib_max: Math.round(Math.max(...mem) / 2 ** 20),
    system_state: states,
  };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  benchFleet().then(
    (r) => process.stdout.write(`${JSON.stringify(r, null, 2)}\n`),
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
      process.exit(1);
    },
  );
}
