/**
 * One measured process: wall time, CPU (user + sys, children included) and peak RSS from GNU time,
 * the 1-minute load average when it started, and what the fleet spent meanwhile (counters.ts).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from '../support/hoist.js';
import { costBetween, counters, type FleetCost } from './counters.js';
import { sampleFds, type FdPeaks } from './fds.js';

export interface Measured {
  wallMs: number;
  cpuS: number;
  /** Largest resident set of the process (GNU time: of the largest single process it waited for). */
  maxRssMb: number;
  code: number;
  /** 1-minute load average just before the start. */
  load: number;
  /** Bytes the controller sent and CPU the bastion and hosts used meanwhile. */
  fleet: FleetCost;
  /** Peak open file descriptors of the controller's processes and of the bastion's busiest sshd. */
  fds: FdPeaks;
  stdout: string;
  stderr: string;
  startedAt: number;
}

/** Runs argv under /usr/bin/time; stdout and stderr are collected. */
export async function measure(argv: string[], env: Record<string, string> = {}, stdin?: string): Promise<Measured> {
  const timeFile = path.join(os.tmpdir(), `hoist-bench-time-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const load = os.loadavg()[0];
  const before = counters();
  const startedAt = Date.now();
  const t0 = process.hrtime.bigint();
  const child = spawn('/usr/bin/time', ['-f', '%U %S %M', '-o', timeFile, ...argv], {
    cwd: ROOT,
    env: { ...process.env, CI: '1', NO_COLOR: '1', ...env },
    stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  if (stdin !== undefined) child.stdin?.end(stdin);
  const fdSampler = sampleFds(child.pid);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? -1)));
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const fleet = costBetween(before, counters());
  const fds = fdSampler.stop();
  // GNU time writes "Command exited with non-zero status N" before its line when the command fails.
  const last = readFileSync(timeFile, 'utf8').trim().split('\n').pop() ?? '';
  rmSync(timeFile, { force: true });
  const [user, sys, rssKb] = last.split(' ').map(Number);
  return { wallMs, cpuS: user + sys, maxRssMb: rssKb / 1024, code, load, fleet, fds, stdout, stderr, startedAt };
}

/** What `hoist --json` reports, as far as the bench reads it. */
export interface HoistReport {
  exitCode: number;
  durationMs: number;
  hosts: {
    name: string;
    status: string;
    error?: string;
    bytesPushed?: number;
    durationMs: number;
    tasks: { title: string; status: string; durationMs: number }[];
  }[];
}

export interface HoistRun extends Measured {
  report?: HoistReport;
  /** The run's log (`$XDG_STATE_HOME/hoist/logs/*.log`), for the phase breakdown. */
  logFile?: string;
  changed: number;
  failedHosts: string[];
}

let runNo = 0;

/** A hoist run (`hoist`: its main.js) with `--json`, its log in a directory of its own under `stateRoot`. */
export async function runHoist(hoist: string, args: string[], stateRoot: string): Promise<HoistRun> {
  const xdg = path.join(stateRoot, `run-${String(++runNo).padStart(3, '0')}-${args[0]}`);
  mkdirSync(xdg, { recursive: true });
  // `hoist` is the package's command (bin/hoist) or an entry to run with node.
  const m = await measure([...(hoist.endsWith('.cjs') ? [process.execPath] : []), hoist, ...args, '--json'], { XDG_STATE_HOME: xdg });
  let report: HoistReport | undefined;
  try {
    report = JSON.parse(m.stdout) as HoistReport;
  } catch {
    report = undefined;
  }
  const logs = path.join(xdg, 'hoist', 'logs');
  let logFile: string | undefined;
  try {
    logFile = readdirSync(logs)
      .filter((f) => f.endsWith('.log'))
      .map((f) => path.join(logs, f))[0];
  } catch {
    logFile = undefined;
  }
  const hosts = report?.hosts ?? [];
  const changed = hosts.reduce((n, h) => n + h.tasks.filter((t) => t.status === 'changed').length, 0);
  const failedHosts = hosts.filter((h) => h.status === 'failed' || h.status === 'unreachable').map((h) => `${h.name}: ${h.error ?? h.status}`);
  if (!report) failedHosts.push(`no JSON report (exit ${m.code}): ${m.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return { ...m, report, logFile, changed, failedHosts };
}

/** Bytes hoist pushed per host: the largest of the hosts' `bytesPushed`. */
export function pushedPerHost(r: HoistRun): number {
  return Math.max(0, ...(r.report?.hosts.map((h) => h.bytesPushed ?? 0) ?? []));
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** The repeat whose wall time is the median (the lower middle one for an even count). */
export function medianRun<T extends { wallMs: number }>(runs: T[]): T {
  const s = [...runs].sort((a, b) => a.wallMs - b.wallMs);
  return s[Math.floor((s.length - 1) / 2)];
}
