/**
 * npm run bench: hoist's speed on the local fleet of 3 hosts, printed, never asserted.
 * - a cold `hoist ping`
 * - a fresh install of the containerd playbook (hosts reset, artifact cache warm: downloaded once per controller)
 * - a no-op rerun of the containerd playbook (the floor: one SSH handshake and one round trip per host)
 * - bytes pushed per host
 * - a 3-host rolling upgrade with serial = 1 and serial = 3
 * - fleet up/down time and memory per host
 */
import { spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as fleet from '../fleet/fleet.js';
import { HOIST, ROOT, type JsonReport } from '../support/hoist.js';
import { benchFleet } from './fleet-bench.js';

const REPEAT = Number(process.env.BENCH_REPEAT ?? 5);

function timed(args: string[]): Promise<{ ms: number; code: number; report?: JsonReport }> {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(process.execPath, [HOIST, ...args, '--json'], { cwd: ROOT, env: { ...process.env, CI: '1', HOIST_LOG: 'off' }, stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      let report: JsonReport | undefined;
      try {
        report = JSON.parse(out) as JsonReport;
      } catch {
        report = undefined;
      }
      resolve({ ms, code: code ?? -1, report });
    });
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

async function main() {
  let info: fleet.FleetInfo;
  try {
    info = await fleet.info();
  } catch {
    await fleet.prepare();
    info = await fleet.up(3);
  }
  const cache = path.join(await mkdtemp(path.join(os.tmpdir(), 'hoist-bench-')), 'cache');
  const rel = info.releases.find((r) => r.line === '1.7') ?? info.releases.find((r) => r.kind === 'bundle')!;
  const up = info.releases.find((r) => r.kind === 'components');
  const vargs = (r: typeof rel) => [
    '-e', `containerd_version="${r.containerd}"`,
    ...(r.kind === 'components' ? ['-e', 'crictl_version=false', '-e', `runc_version="${r.runc}"`, '-e', `cni_version="${r.cni}"`] : []),
  ];
  const apply = (pb: string, r: typeof rel, ...extra: string[]) => timed(['apply', path.join(ROOT, 'playbooks', `${pb}.toml`), '-i', info.inventoryPath, '--cache-dir', cache, ...vargs(r), ...extra]);
  const resetAll = () => Promise.all(info.hosts.map((h) => fleet.resetHost(h.name)));
  const rows: [string, string][] = [];

  const ping = await timed(['ping', '-i', info.inventoryPath]);
  rows.push(['hoist ping, 3 hosts (cold process)', fmt(ping.ms)]);

  // The controller downloads each artifact once; later runs hit the cache.
  await resetAll();
  const first = await apply('containerd', rel);
  rows.push([`first install incl. download of ${rel.containerd} (exit ${first.code})`, fmt(first.ms)]);

  const fresh: number[] = [];
  let pushed = 0;
  for (let i = 0; i < Math.min(REPEAT, 3); i++) {
    await resetAll();
    const r = await apply('containerd', rel);
    if (r.code !== 0) throw new Error(`fresh install failed (exit ${r.code})`);
    fresh.push(r.ms);
    pushed = Math.max(...(r.report?.hosts.map((h) => (h as { bytesPushed?: number }).bytesPushed ?? 0) ?? [0]));
  }
  rows.push([`fresh install of containerd ${rel.containerd}, 3 hosts (median of ${fresh.length})`, fmt(median(fresh))]);
  rows.push(['bytes pushed per host (fresh install)', `${(pushed / 1e6).toFixed(1)} MB`]);

  const noop: number[] = [];
  for (let i = 0; i < REPEAT; i++) {
    const r = await apply('containerd', rel);
    const changed = r.report?.hosts.reduce((n, h) => n + h.tasks.filter((t) => t.status === 'changed').length, 0);
    if (r.code !== 0 || changed !== 0) throw new Error(`no-op rerun changed ${changed} (exit ${r.code})`);
    noop.push(r.ms);
  }
  rows.push([`no-op rerun of the containerd playbook, 3 hosts (median of ${REPEAT})`, fmt(median(noop))]);
  const noopPushed = (await apply('containerd', rel)).report?.hosts.map((h) => (h as { bytesPushed?: number }).bytesPushed ?? 0) ?? [];
  rows.push(['bytes pushed per host (no-op rerun)', `${Math.max(...noopPushed)} B`]);

  if (up) {
    // A rolling upgrade from the bundle line to the 2.x components, one host at a time and all at once.
    const dir = path.dirname(cache);
    for (const serial of [1, 3]) {
      const pb = path.join(dir, `upgrade-serial-${serial}.toml`);
      await writeFile(pb, `extends = ${JSON.stringify(path.join(ROOT, 'playbooks', 'upgrade.toml'))}\nserial = ${serial}\n`);
      await resetAll();
      if ((await apply('containerd', rel)).code !== 0) throw new Error('bootstrap before the upgrade failed');
      const r = await timed(['apply', pb, '-i', info.inventoryPath, '--cache-dir', cache, ...vargs(up)]);
      if (r.code !== 0) throw new Error(`upgrade with serial = ${serial} failed (exit ${r.code})`);
      rows.push([`rolling upgrade ${rel.containerd} → ${up.containerd}, 3 hosts, serial = ${serial}`, fmt(r.ms)]);
    }
  }
  for (const [k, v] of rows) process.stdout.write(`${k.padEnd(70)} ${v}\n`);
  const f = await benchFleet();
  for (const [k, v] of Object.entries(f)) process.stdout.write(`fleet ${k.padEnd(64)} ${v}\n`);
}

await main();
