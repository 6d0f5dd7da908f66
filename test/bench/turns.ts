/**
 * npm run -s build && tsx test/bench/turns.ts [--rtt MS] [--repeat R] [--no-floor] [--vs OTHER/dist/hoist.cjs]
 *
 * The direct no-op alone (root straight to each host of the fleet, HOIST_FLEET_INSTANCE), through the
 * delaying relays, hoist and the OpenSSH floor in turn: wall time, controller CPU, round trips per
 * host, and the first host's traffic burst by burst (when each began, its direction and bytes), to
 * tell which step of a run each round trip belongs to. With --vs, another build of hoist runs in
 * turn with this one, for a before/after under the same load. Printed, never asserted.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as fleet from '../fleet/fleet.js';
import { BIN, ROOT } from '../support/hoist.js';
import { startRelays, type Burst, type Relay } from './delay-relay.js';
import { directPath, DIRECT_VERIFY_COMMAND } from './direct.js';
import { median, runHoist } from './measure.js';

const { values: opt } = parseArgs({
  options: {
    rtt: { type: 'string', default: '100' },
    repeat: { type: 'string', default: '3' },
    'no-floor': { type: 'boolean' },
    vs: { type: 'string' },
  },
});
const RTT = Number(opt.rtt);
const R = Number(opt.repeat);

function timeline(bursts: Burst[][] | undefined): string {
  return (bursts ?? []).map((conn, i) => `  connection ${i + 1}: ` + conn.map((b) => `${b.atMs}${b.dir === 'up' ? '↑' : '↓'}${b.bytes}`).join(' ')).join('\n');
}

/** The relays count a connection once both its ends closed, which may come a little after the process ended. */
const settle = () => new Promise((resolve) => setTimeout(resolve, RTT + 200));

function trips(relay: Relay): number {
  const each = [...relay.roundTrips.values()].map((xs) => xs.reduce((a, b) => a + b, 0));
  return median(each);
}

async function main(): Promise<void> {
  const info = await fleet.info();
  const relay = await startRelays(info.hosts, RTT / 2);
  const work = mkdtempSync(path.join(os.tmpdir(), 'hoist-turns-'));
  const direct = directPath(info, relay, work);
  const cache = path.join(os.tmpdir(), 'hoist-bench-cache');
  const first = info.hosts[0].name;
  const rows: string[] = [];
  const sums = new Map<string, { wall: number[]; cpu: number[]; trips: number[] }>();
  const note = (who: string, wall: number, cpu: number, t: number) => {
    const e = sums.get(who) ?? { wall: [], cpu: [], trips: [] };
    e.wall.push(wall);
    e.cpu.push(cpu);
    e.trips.push(t);
    sums.set(who, e);
  };
  const builds: [string, string][] = [['hoist', process.env.TURNS_HOIST ?? BIN], ...(opt.vs ? [['vs', opt.vs] as [string, string]] : [])];
  for (let i = 0; i < R; i++) {
    for (const [who, bin] of builds) {
      relay.reset();
      const r = await runHoist(bin, ['apply', path.join(ROOT, 'playbooks/containerd.toml'), '-i', direct.inventory, '--cache-dir', cache], work);
      await settle();
      const problem = r.failedHosts.length || r.changed ? ` PROBLEM: ${r.failedHosts.join('; ')} changed ${r.changed}` : '';
      note(who, r.wallMs / 1000, r.cpuS * 1000, trips(relay));
      rows.push(
        `${who.padEnd(6)} ${(r.wallMs / 1000).toFixed(2)} s  cpu ${(r.cpuS * 1000).toFixed(0)} ms  ${trips(relay)} round trips/host  load ${r.load.toFixed(1)}${problem}  log ${r.logFile}`,
      );
      if (i === 0) rows.push(timeline(relay.bursts.get(first)));
      if (i === 0 && process.env.SSHDBG)
        rows.push(
          r.stderr
            .split('\n')
            .filter((l) => l.includes(` ${first} `))
            .join('\n'),
        );
    }
    if (opt['no-floor']) continue;
    relay.reset();
    const f = await direct.floor(DIRECT_VERIFY_COMMAND);
    await settle();
    note('floor', f.wallMs / 1000, f.cpuS * 1000, trips(relay));
    rows.push(
      `floor  ${(f.wallMs / 1000).toFixed(2)} s  cpu ${(f.cpuS * 1000).toFixed(0)} ms  ${trips(relay)} round trips/host${f.failed.length ? ` FAILED ${f.failed.join('; ')}` : ''}`,
    );
    if (i === 0) rows.push(timeline(relay.bursts.get(first)));
  }
  for (const [who, e] of sums)
    rows.push(`median ${who.padEnd(6)} ${median(e.wall).toFixed(2)} s  cpu ${median(e.cpu).toFixed(0)} ms  ${median(e.trips)} round trips/host`);
  await relay.close();
  process.stdout.write(rows.join('\n') + '\n');
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
