/** The bench's printed tables: timings side by side, controller cost, distribution, phases, targets. */
import os from 'node:os';
import { median, medianRun, pushedPerHost, type HoistRun, type Measured } from './measure.js';
import { OpenSshFloor, type FloorRun } from './openssh.js';
import { PHASES, runPhases, type HostPhases, type RunPhases } from './phases.js';
import { loads, mb, ratio, secs, table } from './table.js';

export interface Results {
  hosts: number;
  repeat: number;
  started: string;
  /** `git describe --always --dirty` of the tree the measured dist was built from. */
  revision: string;
  finished?: string;
  fleet: { what: string; ms: number; load: number }[];
  /** `hoist --version`: node and hoist's modules loading, no inventory, no host. */
  startup?: Measured[];
  fresh?: HoistRun;
  freshProblem?: string;
  freshHost?: HoistRun;
  freshHostProblem?: string;
  freshPeers?: HoistRun;
  freshPeersProblem?: string;
  noop?: HoistRun[];
  noopProblem?: string;
  floorNoop?: FloorRun[];
  floorNoopProblem?: string;
  check?: HoistRun[];
  checkProblem?: string;
  ping?: HoistRun[];
  pingProblem?: string;
  floorPing?: FloorRun[];
  floorPingProblem?: string;
  floorPush?: FloorRun;
  floorPushProblem?: string;
  /** Root straight to each host, hoist and the leanest floor; through the delaying relays when rttMs > 0. */
  direct?: {
    rttMs: number;
    noop: HoistRun[];
    floor: FloorRun[];
    problem?: string;
    /** Round trips per host per run (median over hosts), counted by the relays. */
    hoistRoundTrips: number[];
    floorRoundTrips: number[];
  };
}

const med = (runs: Measured[] | undefined) => (runs?.length ? median(runs.map((r) => r.wallMs)) : NaN);
const load = (runs: (Measured | undefined)[]) => loads(runs.flatMap((r) => (r ? [r.load] : [])));
// A problem is flagged on its row, on one line and short; the whole story is on stderr and in the logs.
const flag = (problem: string | undefined) => (problem ? ` [${problem.replace(/\s+/g, ' ').slice(0, 90)}…]` : '');
const FRESH_TARGET_MS = 0.7 * 78_000;

function timings(r: Results): string {
  const n = r.hosts;
  const rows: string[][] = [];
  const noopRatio = med(r.noop) / med(r.floorNoop);
  rows.push([
    `no-op rerun (median of ${r.noop?.length ?? 0})${flag(r.noopProblem ?? r.floorNoopProblem)}`,
    secs(med(r.noop)),
    secs(med(r.floorNoop)),
    ratio(med(r.noop), med(r.floorNoop)),
    n >= 30 ? `≤ 1.20× ${noopRatio <= 1.2 ? 'met' : 'MISSED'}` : '(≤ 1.2× at 30, 100)',
    load([...(r.noop ?? []), ...(r.floorNoop ?? [])]),
  ]);
  rows.push([
    `ping vs ssh true (median of ${r.ping?.length ?? 0})${flag(r.pingProblem ?? r.floorPingProblem)}`,
    secs(med(r.ping)),
    secs(med(r.floorPing)),
    ratio(med(r.ping), med(r.floorPing)),
    '',
    load([...(r.ping ?? []), ...(r.floorPing ?? [])]),
  ]);
  rows.push([
    `--check --diff, converged (median of ${r.check?.length ?? 0}; floor: the no-op's)${flag(r.checkProblem)}`,
    secs(med(r.check)),
    secs(med(r.floorNoop)),
    ratio(med(r.check), med(r.floorNoop)),
    '',
    load(r.check ?? []),
  ]);
  const fresh = r.fresh?.wallMs ?? NaN;
  const push = r.floorPush?.wallMs ?? NaN;
  rows.push([
    `fresh install, download=controller (once; floor: OpenSSH pushing the same archive)${flag(r.freshProblem ?? r.floorPushProblem)}`,
    secs(fresh),
    secs(push),
    ratio(fresh, push),
    n === 30 ? `≤ ${secs(FRESH_TARGET_MS)} ${loud(verdict(fresh, FRESH_TARGET_MS))}` : '(≤ 54.6 s at 30)',
    load([r.fresh, r.floorPush]),
  ]);
  if (r.freshHost) {
    rows.push([`fresh install, download=host (once)${flag(r.freshHostProblem)}`, secs(r.freshHost.wallMs), '', '', '', load([r.freshHost])]);
  }
  if (r.freshPeers) {
    const w = r.freshPeers.wallMs;
    rows.push([
      `fresh install, download=peers (once; floor: OpenSSH pushing the archive)${flag(r.freshPeersProblem)}`,
      secs(w),
      secs(push),
      ratio(w, push),
      n === 30 ? `≤ ${secs(FRESH_TARGET_MS)} ${loud(verdict(w, FRESH_TARGET_MS))}` : '',
      load([r.freshPeers]),
    ]);
  }
  if (r.direct) {
    const d = r.direct;
    const via = d.rttMs ? `${d.rttMs} ms RTT (userspace relay)` : 'no added delay';
    const trips = (xs: number[]) => (xs.length ? ` · ${median(xs)} round trips per host` : '');
    const x = med(d.noop) / med(d.floor);
    rows.push([
      `no-op, root direct, ${via} (median of ${d.noop.length})${flag(d.problem)}${trips(d.hoistRoundTrips)}`,
      secs(med(d.noop)),
      `${secs(med(d.floor))}${trips(d.floorRoundTrips)}`,
      ratio(med(d.noop), med(d.floor)),
      d.rttMs
        ? `≤ 1.10× ${x <= 1.1 ? 'met' : 'MISSED'}`
        : n >= 30
          ? `≤ 1.20× ${x <= 1.2 ? 'met' : 'MISSED'}`
          : n <= 3
            ? `≤ 1.15× ${x <= 1.15 ? 'met' : 'MISSED'}`
            : '',
      load([...d.noop, ...d.floor]),
    ]);
  }
  rows.push([`hoist --version: process start-up alone (median of ${r.startup?.length ?? 0})`, secs(med(r.startup)), '', '', '', load(r.startup ?? [])]);
  for (const f of r.fleet) rows.push([f.what, secs(f.ms), '', '', '', f.load.toFixed(2)]);
  return table(['scenario', 'hoist', 'OpenSSH floor', 'ratio', 'target', 'load 1m'], rows);
}

/** The median run of a scenario, with peaks over all its repeats. */
function costRuns(r: Results): [string, Measured[], boolean][] {
  const list: [string, Measured[] | undefined, boolean][] = [
    ['hoist fresh install (download=controller)', r.fresh && [r.fresh], true],
    ['hoist fresh install (download=host)', r.freshHost && [r.freshHost], true],
    ['hoist fresh install (download=peers)', r.freshPeers && [r.freshPeers], true],
    ['hoist no-op', r.noop, true],
    ['hoist --check --diff', r.check, true],
    ['hoist ping', r.ping, true],
    ['OpenSSH verify floor', r.floorNoop, false],
    ['OpenSSH ssh true', r.floorPing, false],
    ['OpenSSH push floor', r.floorPush && [r.floorPush], false],
  ];
  return list.flatMap(([n, runs, h]) => (runs?.length ? [[n, runs, h] as [string, Measured[], boolean]] : []));
}

function controllerCost(r: Results): string {
  const rows = costRuns(r).map(([name, runs, isHoist]) => {
    const m = medianRun(runs);
    return [
      name,
      `${m.cpuS.toFixed(2)} s`,
      `${((m.cpuS * 1000) / m.wallMs).toFixed(2)}`,
      `${Math.max(...runs.map((x) => x.maxRssMb)).toFixed(0)} MB`,
      `${Math.max(...runs.map((x) => x.fds.controller))}`,
      isHoist ? mb(pushedPerHost(m as HoistRun)) : '',
      mb(m.fleet.toBastion),
    ];
  });
  return table(['controller', 'CPU (user+sys)', 'CPU / wall', 'peak RSS', 'peak fds', 'pushed per host', 'sent to bastion'], rows);
}

function fleetCost(r: Results): string {
  const cores = os.cpus().length;
  const rows = costRuns(r).map(([name, runs]) => {
    const m = medianRun(runs);
    const all = m.cpuS + m.fleet.bastionCpuS + m.fleet.hostsCpuS;
    return [
      name,
      `${m.fleet.bastionCpuS.toFixed(2)} s`,
      `${Math.max(...runs.map((x) => x.fds.bastionSshd))}`,
      `${(m.fleet.hostsCpuS / r.hosts).toFixed(2)} s`,
      mb(m.fleet.toHosts),
      `${(all / cores).toFixed(2)} s`,
      secs(m.wallMs),
    ];
  });
  return table(['fleet side', 'bastion CPU', 'bastion sshd peak fds', 'CPU per host', 'sent on host links', 'all CPU / cores', 'wall'], rows);
}

function distribution(r: Results): string | undefined {
  const runs: [string, HoistRun | undefined][] = [
    ['"controller" (push over SSH)', r.fresh],
    ['"peers" (controller sends the first hosts, hosts copy to hosts)', r.freshPeers],
    ['"host" (each host fetches from the mirror)', r.freshHost],
  ];
  const have = runs.filter((x): x is [string, HoistRun] => !!x[1]);
  if (have.length < 2) return undefined;
  const row = (name: string, x: HoistRun) => [
    name,
    secs(x.wallMs),
    mb(x.fleet.toBastion),
    mb(x.fleet.toBastion / r.hosts),
    mb(x.fleet.toHosts),
    mb(pushedPerHost(x)),
    `${x.cpuS.toFixed(1)} s`,
    `${x.maxRssMb.toFixed(0)} MB`,
  ];
  return table(
    [
      'download =',
      'fresh install',
      'controller → bastion (SSH)',
      'per host',
      'to host links (incl. mirror, host to host)',
      'pushed per host',
      'hoist CPU',
      'hoist peak RSS',
    ],
    have.map(([n, x]) => row(n, x)),
  );
}

function phases(r: Results): string {
  const runs: [string, HoistRun | undefined][] = [
    ['fresh', r.fresh],
    ['fresh/host', r.freshHost],
    ['fresh/peers', r.freshPeers],
    ['no-op', r.noop?.length ? medianRun(r.noop) : undefined],
  ];
  const parsed = runs.flatMap(([name, run]) => {
    if (!run?.logFile) return [];
    return [[name, runPhases(run.logFile, run.startedAt, run.startedAt + run.wallMs)] as [string, RunPhases]];
  });
  const head = ['phase', ...parsed.flatMap(([n]) => [`${n}: slowest host`, `${n}: median host`])];
  const medOf = (hosts: HostPhases[], p: (typeof PHASES)[number]) => median(hosts.map((h) => h.ms[p]));
  const rows = PHASES.map((p) => [p, ...parsed.flatMap(([, ph]) => [secs(ph.slowest?.ms[p] ?? NaN), secs(medOf(ph.hosts, p))])]);
  rows.push(['= host done + exit', ...parsed.flatMap(([, ph]) => [secs((ph.slowest?.endMs ?? NaN) + (ph.slowest?.ms.exit ?? NaN)), ''])]);
  const odd = [...new Set(parsed.flatMap(([, ph]) => ph.unclassified))];
  return table(head, rows) + (odd.length ? `\nunclassified commands (counted as "between commands"): ${odd.join(' · ')}` : '');
}

function targets(r: Results): string {
  const all = [r.fresh, r.freshHost, r.freshPeers, ...(r.noop ?? []), ...(r.check ?? []), ...(r.ping ?? [])].filter((x): x is HoistRun => !!x);
  const peak = Math.max(...all.map((x) => x.maxRssMb));
  const rows = [
    [
      'no-op ≤ 1.2× the OpenSSH floor (30, 100 hosts)',
      ratio(med(r.noop), med(r.floorNoop)),
      r.hosts >= 30 ? (med(r.noop) / med(r.floorNoop) <= 1.2 ? 'met' : 'missed') : 'n/a at this size',
    ],
    [
      'fresh install at 30 hosts ≤ 0.7 × 78 s = 54.6 s (controller)',
      secs(r.fresh?.wallMs ?? NaN),
      r.hosts === 30 ? verdict(r.fresh?.wallMs, FRESH_TARGET_MS) : 'n/a at this size',
    ],
    [
      'fresh install at 30 hosts ≤ 54.6 s (peers)',
      secs(r.freshPeers?.wallMs ?? NaN),
      r.hosts === 30 ? verdict(r.freshPeers?.wallMs, FRESH_TARGET_MS) : 'n/a at this size',
    ],
    ['controller peak RSS ≤ 300 MB at 100 hosts', `${peak.toFixed(0)} MB`, r.hosts >= 100 ? (peak <= 300 ? 'met' : 'missed') : 'n/a at this size'],
  ];
  return table(['target', 'measured', ''], rows);
}

export function printReport(r: Results): void {
  const out = (s: string) => process.stdout.write(`${s}\n`);
  out(`\n## hoist bench: ${r.hosts} hosts, ${os.cpus().length} cores, hoist ${r.revision}, ${r.started} → ${r.finished ?? '?'}\n`);
  out(timings(r));
  out(`\nOpenSSH floor: ${OpenSshFloor.describe()}`);
  if (r.direct) {
    out(
      `direct floor: every host at once, ssh root@host '${'ctr version; ctr plugin ls; containerd config dump'}' (no bastion, no sudo), the same key and known_hosts;`,
    );
    out('hoist with the root inventory. Round trips: turns from client-to-server to server-to-client traffic on each connection, counted by the relay.');
  }
  out('load 1m: 1-minute load average before each measured run (range over the repeats).\n');
  out(controllerCost(r));
  out('');
  out(fleetCost(r));
  out(`\nmedian run of each scenario; peaks over all its repeats. CPU: user+sys of the hoist process (GNU time), of every ssh process for a floor`);
  out("(CPU / wall near 1: hoist's one JavaScript thread is busy all along);");
  out(
    `bastion and hosts: their cgroups' cpuacct.usage. "all CPU / cores" = (controller + bastion + all hosts) / ${os.cpus().length} cores: the least wall time`,
  );
  out("this one machine needs for the run, whatever the tool. fds: peak open descriptors of the controller process(es) and of the bastion's busiest");
  out('sshd, sampled every 100 ms. Bytes: kernel counters of the controller side of the veth pairs; "sent to bastion" is the tool\'s own SSH traffic,');
  out('"sent on host links" what the controller routes from the bastion to the hosts plus what the release mirror serves them.\n');
  const d = distribution(r);
  if (d) out(`${d}\n`);
  out(phases(r));
  out(
    '\nphases: per host from hoist\'s log; "slowest host" is the critical path (start-up … exit adds up to the run\'s wall time), "median host" the median of each phase over the hosts.\n',
  );
  out(targets(r));
}

const loud = (v: string) => (v === 'missed' ? 'MISSED' : v);

/** A run that did not measure a figure (--no-fresh) neither meets nor misses its target. */
function verdict(ms: number | undefined, target: number): 'met' | 'missed' | 'not measured' {
  if (ms === undefined || Number.isNaN(ms)) return 'not measured';
  return ms <= target ? 'met' : 'missed';
}
