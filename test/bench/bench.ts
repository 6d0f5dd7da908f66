/**
 * npm run bench -- --hosts N [--repeat R] [--push-floor | --no-push-floor] [--compare-download | --no-compare-download] [--fresh controller,peers] [--no-fresh] [--rtt MS]
 *
 * hoist against the OpenSSH floor on the local fleet (HOIST_FLEET_INSTANCE picks the instance),
 * side by side from one run: a fresh install, no-op reruns, --check --diff, ping; controller CPU,
 * peak RSS and bytes sent; where the time goes, from hoist's own log. Printed, never asserted.
 * The fleet is brought up with N hosts when it isn't already; it is left up.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as fleet from '../fleet/fleet.js';
import { ROOT } from '../support/hoist.js';
import { measure, median, runHoist, type HoistRun } from './measure.js';
import { OpenSshFloor, PUSH_COMMAND, VERIFY_COMMAND, type FloorRun } from './openssh.js';
import { printReport, type Results } from './report.js';
import { startRelays } from './delay-relay.js';
import { directPath, DIRECT_VERIFY_COMMAND } from './direct.js';

const { values: opt } = parseArgs({
  options: {
    hosts: { type: 'string', default: '3' },
    repeat: { type: 'string' },
    'push-floor': { type: 'boolean' },
    'no-push-floor': { type: 'boolean' },
    'compare-download': { type: 'boolean' },
    'no-compare-download': { type: 'boolean' },
    fresh: { type: 'string', default: 'controller,peers' },
    // Measure a fleet that is up and converged as it is: no-op, --check, ping only.
    'no-fresh': { type: 'boolean' },
    // Round-trip time added to every connection of the direct no-op (hoist and floor alike), in ms.
    rtt: { type: 'string', default: '0' },
  },
});
const RTT = Number(opt.rtt);
if (!Number.isFinite(RTT) || RTT < 0) throw new Error(`--rtt must be a number of milliseconds, got ${opt.rtt}`);
const N = Number(opt.hosts);
if (!Number.isInteger(N) || N < 1) throw new Error(`--hosts must be a positive integer, got ${opt.hosts}`);
// Fewer repeats where one costs more; both floors and the pushes cost ~N × 71.5 MB of encryption.
const R = Number(opt.repeat ?? (N > 30 ? 3 : 5));
const pushFloor = opt['no-push-floor'] ? false : opt['push-floor'] || N <= 30;
const compareDownload = opt['no-compare-download'] ? false : opt['compare-download'] || N <= 30;
// Which downloads get a fresh install of their own (the first one listed also converges the fleet for the no-op).
const freshModes = (opt.fresh ?? '').split(',').filter(Boolean);
for (const m of freshModes) if (m !== 'controller' && m !== 'peers') throw new Error(`--fresh takes controller and/or peers, got ${m}`);
if (freshModes.length === 0) throw new Error('--fresh needs controller, peers or both');

const say = (s: string) => process.stderr.write(`[bench] ${s}\n`);
const work = mkdtempSync(path.join(os.tmpdir(), `hoist-bench-${N}-`));
// Kept across runs: "artifact cache warm" means the controller downloaded the release before.
const cache = path.join(os.tmpdir(), 'hoist-bench-cache');

/**
 * A copy of the built package, so a rebuild of dist/ in the shared worktree during a long run
 * doesn't change (or break) the hoist being measured. node_modules is linked, not copied.
 */
function snapshotPackage(): string {
  const pkg = path.join(work, 'pkg');
  for (const d of ['bin', 'dist', 'templates', 'playbooks']) cpSync(path.join(ROOT, d), path.join(pkg, d), { recursive: true });
  cpSync(path.join(ROOT, 'package.json'), path.join(pkg, 'package.json'));
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(pkg, 'node_modules'));
  return pkg;
}
const pkg = snapshotPackage();
// The package's command, as `npm install -g` installs it.
const HOIST = path.join(pkg, 'bin', 'hoist');
const playbook = path.join(pkg, 'playbooks', 'containerd.toml');

/** The fleet with N hosts; `pristine` when just booted (nothing installed yet). */
async function ensureFleet(results: Results): Promise<{ info: fleet.FleetInfo; pristine: boolean }> {
  try {
    const info = await fleet.info();
    if (info.hosts.length === N) return { info, pristine: false };
  } catch {
    // not up, or stale: up() cleans whatever is left first
  }
  return { info: await freshFleet(results, `fleet up ${N} + bastion`), pristine: true };
}

/**
 * Pristine hosts for a fresh install: the fleet booted again (what `fleet reset` does per host, for
 * every host at once: `resetHost` rewrites the fleet state file whole, so parallel resets would
 * lose each other's entries, and one at a time costs ≈ 3.6 s per host).
 */
async function freshFleet(results: Results, what: string): Promise<fleet.FleetInfo> {
  say(`${what}…`);
  const load = os.loadavg()[0];
  const t0 = Date.now();
  const info = await fleet.up(N);
  results.fleet.push({ what, ms: Date.now() - t0, load });
  return info;
}

function check(r: HoistRun, what: string, expectNoChange: boolean): string | undefined {
  const problems = [...r.failedHosts];
  if (r.code !== 0) problems.unshift(`exit ${r.code}`);
  if (expectNoChange && r.changed) problems.push(`${r.changed} task(s) changed`);
  if (problems.length) say(`${what}: ${problems.slice(0, 5).join('; ')}`);
  return problems.length ? problems.slice(0, 3).join('; ') : undefined;
}

function floorCheck(r: FloorRun, what: string): string | undefined {
  if (r.failed.length) say(`${what}: ${r.failed.length} failed: ${r.failed.slice(0, 5).join('; ')}`);
  return r.failed.length ? `${r.failed.length} failed` : undefined;
}

/** The cached archive hoist pushes (the largest blob in the cache), for the push floor. */
function cachedArchive(): string {
  const dir = path.join(cache, 'sha256');
  return readdirSync(dir)
    .map((f) => path.join(dir, f))
    .sort((a, b) => statSync(b).size - statSync(a).size)[0];
}

async function main(): Promise<void> {
  mkdirSync(cache, { recursive: true });
  const revision = execFileSync('git', ['describe', '--always', '--dirty'], { cwd: ROOT, encoding: 'utf8' }).trim();
  const results: Results = { hosts: N, repeat: R, revision, fleet: [], started: new Date().toISOString() };
  let { info, pristine } = await ensureFleet(results);
  const apply = (...extra: string[]) => ['apply', playbook, '-i', info.inventoryPath, '--cache-dir', cache, ...extra];
  const warm = async () => {
    const r = await measure([HOIST, 'fetch', playbook, '-i', info.inventoryPath, '--cache-dir', cache], { HOIST_LOG: 'off' });
    if (r.code !== 0) throw new Error(`hoist fetch failed: ${r.stderr}`);
  };

  results.startup = [];
  for (let i = 0; i < R; i++) results.startup.push(await measure([HOIST, '--version']));
  const noFresh = opt['no-fresh'] && !pristine;
  if (!pristine && !noFresh) info = await freshFleet(results, `fleet re-up ${N} for fresh hosts`);
  await warm();
  const fresh = async (mode: string) => {
    say(`fresh install (download = "${mode}")`);
    const r = await runHoist(HOIST, apply('-e', `download=${mode}`), work);
    const problem = check(r, `fresh install (download=${mode})`, false);
    if (mode === 'controller') [results.fresh, results.freshProblem] = [r, problem];
    else [results.freshPeers, results.freshPeersProblem] = [r, problem];
  };
  if (!noFresh) await fresh(freshModes[0]);

  const floor = new OpenSshFloor(info);
  results.noop = [];
  results.floorNoop = [];
  for (let i = 0; i < R; i++) {
    say(`no-op ${i + 1}/${R}, OpenSSH floor ${i + 1}/${R}`);
    const r = await runHoist(HOIST, apply(), work);
    results.noopProblem ??= check(r, 'no-op', true);
    results.noop.push(r);
    const f = await floor.run(VERIFY_COMMAND);
    results.floorNoopProblem ??= floorCheck(f, 'floor');
    results.floorNoop.push(f);
  }
  results.check = [];
  for (let i = 0; i < Math.min(R, 3); i++) {
    say(`--check --diff ${i + 1}`);
    const r = await runHoist(HOIST, apply('--check', '--diff'), work);
    results.checkProblem ??= check(r, '--check --diff', true);
    results.check.push(r);
  }
  results.ping = [];
  results.floorPing = [];
  for (let i = 0; i < R; i++) {
    say(`ping ${i + 1}/${R}, ssh true ${i + 1}/${R}`);
    const r = await runHoist(HOIST, ['ping', '-i', info.inventoryPath], work);
    results.pingProblem ??= check(r, 'ping', true);
    results.ping.push(r);
    const f = await floor.run('true');
    results.floorPingProblem ??= floorCheck(f, 'ssh true');
    results.floorPing.push(f);
  }
  {
    const relay = RTT > 0 ? await startRelays(info.hosts, RTT / 2) : undefined;
    const direct = directPath(info, relay, work);
    const d: NonNullable<Results['direct']> = { rttMs: RTT, noop: [], floor: [], hoistRoundTrips: [], floorRoundTrips: [] };
    const trips = () => {
      const each = [...(relay?.roundTrips.values() ?? [])].map((xs) => xs.reduce((a, b) => a + b, 0));
      relay?.reset();
      return each.length ? median(each) : undefined;
    };
    for (let i = 0; i < R; i++) {
      say(`no-op root direct${RTT ? ` at ${RTT} ms RTT` : ''} ${i + 1}/${R}, direct floor ${i + 1}/${R}`);
      relay?.reset();
      const r = await runHoist(HOIST, ['apply', playbook, '-i', direct.inventory, '--cache-dir', cache], work);
      d.problem ??= check(r, 'no-op root direct', true);
      d.noop.push(r);
      const ht = trips();
      if (ht !== undefined) d.hoistRoundTrips.push(ht);
      const f = await direct.floor(DIRECT_VERIFY_COMMAND);
      d.problem ??= floorCheck(f, 'direct floor');
      d.floor.push(f);
      const ft = trips();
      if (ft !== undefined) d.floorRoundTrips.push(ft);
    }
    results.direct = d;
    await relay?.close();
  }
  if (pushFloor && !noFresh) {
    const archive = cachedArchive();
    say(`OpenSSH push floor: ${(statSync(archive).size / 1e6).toFixed(1)} MB to every host`);
    results.floorPush = await floor.run(PUSH_COMMAND, archive);
    results.floorPushProblem = floorCheck(results.floorPush, 'push floor');
  }
  if (compareDownload && !noFresh) {
    info = await freshFleet(results, `fleet re-up ${N} for fresh hosts`);
    say('fresh install (download = "host", from the fleet mirror)');
    results.freshHost = await runHoist(HOIST, apply('-e', 'download=host'), work);
    results.freshHostProblem = check(results.freshHost, 'fresh install (download=host)', false);
  }
  for (const mode of noFresh ? [] : freshModes.slice(1)) {
    info = await freshFleet(results, `fleet re-up ${N} for fresh hosts`);
    await fresh(mode);
  }
  results.finished = new Date().toISOString();
  printReport(results);
  const file = path.join(work, 'results.json');
  writeFileSync(
    file,
    JSON.stringify(results, (k, v: unknown) => (k === 'stdout' || k === 'report' ? undefined : v), 2),
  );
  process.stdout.write(`\nlogs and results.json: ${work}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
